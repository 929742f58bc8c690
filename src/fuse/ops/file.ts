// Open files: OPEN, CREATE, TMPFILE, READ, WRITE, FLUSH, RELEASE, FSYNC, FALLOCATE, LSEEK,
// COPY_FILE_RANGE.
import { SEEK_DATA, SEEK_HOLE } from "../../fs/filesystem.ts";
import {
  Errno,
  FUSE_COMPAT_WRITE_IN_SIZE,
  FUSE_FSYNC_FDATASYNC,
  FUSE_RELEASE_FLOCK_UNLOCK,
  fuse_copy_file_range_in,
  fuse_create_in,
  fuse_entry_out,
  fuse_fallocate_in,
  fuse_flush_in,
  fuse_fsync_in,
  fuse_lseek_in,
  fuse_lseek_out,
  fuse_open_in,
  fuse_read_in,
  fuse_release_in,
  fuse_write_in,
  fuse_write_out,
} from "../abi.ts";
import type { FuseRequest, Reply, Session } from "../server.ts";
import { cred, entryReply, handleOf, inoOf, nameArg, nodeIno, openReply, sizeArg, struct, u32, u64 } from "./common.ts";

export async function open(s: Session, r: FuseRequest): Promise<Reply> {
  const fh = await s.fs.open(nodeIno(s, r), u32(r, fuse_open_in.flags));
  s.openFiles.add(fh);
  return openReply(fh, s.cache.openFlags);
}

/** CREATE and TMPFILE: fuse_entry_out then fuse_open_out. */
async function createCommon(s: Session, r: FuseRequest, tmpfile: boolean): Promise<Reply> {
  const parent = nodeIno(s, r);
  const flags = u32(r, fuse_create_in.flags);
  const mode = u32(r, fuse_create_in.mode);
  const { attr, fh } = tmpfile
    ? await s.fs.tmpfile(parent, mode, flags, cred(r))
    : await s.fs.create(parent, nameArg(r, fuse_create_in.SIZE), mode, flags, cred(r));
  s.openFiles.add(fh);
  const entry = entryReply(s, attr);
  const out = new Uint8Array(fuse_entry_out.SIZE + 16);
  out.set(entry);
  out.set(openReply(fh, s.cache.openFlags), fuse_entry_out.SIZE);
  return out;
}

export const create = (s: Session, r: FuseRequest): Promise<Reply> => createCommon(s, r, false);
export const tmpfile = (s: Session, r: FuseRequest): Promise<Reply> => createCommon(s, r, true);

export async function read(s: Session, r: FuseRequest): Promise<Reply> {
  const fh = handleOf(s.openFiles, u64(r, fuse_read_in.fh));
  const size = u32(r, fuse_read_in.size);
  if (size > s.maxWrite) return Errno.EINVAL;
  return s.fs.read(fh, sizeArg(u64(r, fuse_read_in.offset)), size);
}

export async function write(s: Session, r: FuseRequest): Promise<Reply> {
  // Kernels before 7.9 sent a 24-byte fuse_write_in; the data follows whichever it is.
  const header = s.minor < 9 ? FUSE_COMPAT_WRITE_IN_SIZE : fuse_write_in.SIZE;
  if (r.args.length < header) return Errno.EINVAL;
  const fh = handleOf(s.openFiles, u64(r, fuse_write_in.fh));
  const size = u32(r, fuse_write_in.size);
  if (size !== r.args.length - header || size > s.maxWrite) return Errno.EINVAL;
  const n = await s.fs.write(fh, sizeArg(u64(r, fuse_write_in.offset)), r.args.subarray(header));
  const out = struct(fuse_write_out.SIZE);
  out.view.setUint32(fuse_write_out.size, n, true);
  return out.bytes;
}

/** close(2) of one descriptor: its POSIX locks go (as locks_remove_posix), buffered data is made durable. */
export async function flush(s: Session, r: FuseRequest): Promise<Reply> {
  const fh = handleOf(s.openFiles, u64(r, fuse_flush_in.fh));
  s.locks.releaseOwner("posix", nodeIno(s, r), u64(r, fuse_flush_in.lock_owner));
  await s.fs.flush(fh);
  return 0;
}

export async function release(s: Session, r: FuseRequest): Promise<Reply> {
  const fh = handleOf(s.openFiles, u64(r, fuse_release_in.fh));
  if (u32(r, fuse_release_in.release_flags) & FUSE_RELEASE_FLOCK_UNLOCK) {
    const ino = s.nodes.ino(r.nodeid);
    if (ino !== undefined) s.locks.releaseOwner("flock", ino, u64(r, fuse_release_in.lock_owner));
  }
  s.openFiles.delete(fh);
  await s.fs.release(fh);
  return 0;
}

export async function fsync(s: Session, r: FuseRequest): Promise<Reply> {
  const fh = handleOf(s.openFiles, u64(r, fuse_fsync_in.fh));
  await s.fs.fsync(fh, (u32(r, fuse_fsync_in.fsync_flags) & FUSE_FSYNC_FDATASYNC) !== 0);
  return 0;
}

export async function fallocate(s: Session, r: FuseRequest): Promise<Reply> {
  const f = fuse_fallocate_in;
  const fh = handleOf(s.openFiles, u64(r, f.fh));
  await s.fs.fallocate(fh, u32(r, f.mode), sizeArg(u64(r, f.offset)), sizeArg(u64(r, f.length)));
  return 0;
}

export async function lseek(s: Session, r: FuseRequest): Promise<Reply> {
  const fh = handleOf(s.openFiles, u64(r, fuse_lseek_in.fh));
  const whence = u32(r, fuse_lseek_in.whence);
  // The kernel handles SEEK_SET/CUR/END itself; only the questions about holes come here.
  if (whence !== SEEK_DATA && whence !== SEEK_HOLE) return Errno.EINVAL;
  const pos = await s.fs.lseek(fh, sizeArg(u64(r, fuse_lseek_in.offset)), whence);
  const out = struct(fuse_lseek_out.SIZE);
  out.view.setBigUint64(fuse_lseek_out.offset, BigInt(pos), true);
  return out.bytes;
}

export async function copyFileRange(s: Session, r: FuseRequest): Promise<Reply> {
  const f = fuse_copy_file_range_in;
  if (u64(r, f.flags) !== 0n) return Errno.EINVAL; // copy_file_range(2) takes no flags yet
  inoOf(s, u64(r, f.nodeid_out));
  const fhIn = handleOf(s.openFiles, u64(r, f.fh_in));
  const fhOut = handleOf(s.openFiles, u64(r, f.fh_out));
  // The reply's size is 32 bits: copy at most what it can report.
  const len = Math.min(sizeArg(u64(r, f.len)), s.maxWrite);
  const n = await s.fs.copyFileRange(fhIn, sizeArg(u64(r, f.off_in)), fhOut, sizeArg(u64(r, f.off_out)), len);
  const out = struct(fuse_write_out.SIZE);
  out.view.setUint32(fuse_write_out.size, n, true);
  return out.bytes;
}
