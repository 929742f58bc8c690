// Open files: OPEN, CREATE, TMPFILE, READ, WRITE, FLUSH, RELEASE, FSYNC, FALLOCATE, LSEEK,
// COPY_FILE_RANGE.
import { wait, type Awaitable, type Op } from "../../vfs/awaitable.ts";
import { O_ACCMODE, O_EXCL, O_RDWR, O_TRUNC, SEEK_DATA, SEEK_HOLE } from "../../vfs/linux.ts";
import type { Handle } from "../../vfs/filesystem.ts";
import { FUSE_COMPAT_WRITE_IN_SIZE, FUSE_FSYNC_FDATASYNC, FUSE_OPEN_KILL_SUIDGID, FUSE_WRITE_KILL_SUIDGID, fuse_copy_file_range_in, fuse_create_in, fuse_entry_out, fuse_fallocate_in, fuse_flush_in, fuse_fsync_in, fuse_lseek_in, fuse_lseek_out, fuse_open_in, fuse_read_in, fuse_release_in, fuse_write_in, fuse_write_out } from "../abi.ts";
import { Errno } from "../../vfs/errno.ts";
import type { FuseRequest, Reply, Session } from "../session.ts";
import { cred, dropCapabilities, entryReply, fileOf, handleOf, isNodeFh, inoOf, killPriv, nameArg, nodeIno, openReply, outsideWindowNoFlush, sizeArg, struct, u32, u64, withExisting } from "./common.ts";

export function* open(s: Session, r: FuseRequest): Op<Reply> {
  const ino = nodeIno(s, r);
  if (s.zeroOpen) return Errno.ENOSYS; // Linux takes this as success, and sends no OPEN or RELEASE again
  const flags = u32(r, fuse_open_in.flags);
  // Linux leaves truncation to SETATTR (no FUSE_ATOMIC_O_TRUNC); a guest that sends O_TRUNC anyway gets
  // what open(2) does: set-id bits go as KILL_SUIDGID asks.
  if (flags & O_TRUNC && u32(r, fuse_open_in.open_flags) & FUSE_OPEN_KILL_SUIDGID) yield* killPriv(s, ino);
  // Privileges go first, as Linux drops them before it truncates or writes.
  if (flags & O_TRUNC) yield* dropCapabilities(s, ino);
  const fh = yield* wait(s.fs.open(ino, flags));
  s.openFiles.add(fh);
  return openReply(fh, s.cache.openFlags);
}

/** CREATE and TMPFILE: fuse_entry_out then fuse_open_out. */
function* createCommon(s: Session, r: FuseRequest, tmpfile: boolean): Op<Reply> {
  const parent = nodeIno(s, r);
  const flags = u32(r, fuse_create_in.flags);
  const mode = u32(r, fuse_create_in.mode);
  const name = tmpfile ? "" : nameArg(r, fuse_create_in.SIZE);
  // CREATE of a name that exists (the guest's dentry was stale) opens it, truncated with O_TRUNC: a caller
  // without CAP_FSETID then loses its set-id bits, as with open(2). A new file keeps the mode it asked for.
  // (Its file capabilities are not looked for: that would cost every create a lookup for a stale dentry's sake.)
  if (!tmpfile && flags & O_TRUNC && !(flags & O_EXCL) && u32(r, fuse_create_in.open_flags) & FUSE_OPEN_KILL_SUIDGID) {
    yield* withExisting(s, parent, name, (a) => killPriv(s, a.ino));
  }
  const { attr, fh } = yield* wait(tmpfile ? s.fs.tmpfile(parent, mode, flags, cred(r)) : s.fs.create(parent, name, mode, flags, cred(r)));
  let guestFh = fh;
  if (!s.zeroOpen) s.openFiles.add(fh);
  else {
    // The guest uses fh 0: a read-write handle becomes the node's own unless it has one already.
    guestFh = 0;
    if ((flags & O_ACCMODE) !== O_RDWR || !s.inodeFiles.adopt(attr.ino, fh)) {
      yield* wait(s.inodeFiles.get(attr.ino, true)); // first: an O_TMPFILE file lives only while open
      yield* wait(s.fs.release(fh));
    }
  }
  const openFlags = s.cache.openFlags | outsideWindowNoFlush(s, attr);
  const out = new Uint8Array(fuse_entry_out.SIZE + 16);
  out.set(entryReply(s, attr));
  out.set(openReply(guestFh, openFlags), fuse_entry_out.SIZE);
  return out;
}

export const create = (s: Session, r: FuseRequest): Op<Reply> => createCommon(s, r, false);
export const tmpfile = (s: Session, r: FuseRequest): Op<Reply> => createCommon(s, r, true);

export function* read(s: Session, r: FuseRequest): Op<Reply> {
  const fh = yield* wait(fileOf(s, u64(r, fuse_read_in.fh), r.nodeid));
  const size = u32(r, fuse_read_in.size);
  if (size > s.maxWrite) return Errno.EINVAL;
  const offset = sizeArg(u64(r, fuse_read_in.offset));
  return yield* wait(s.fs.read(fh, offset, size));
}

export function* write(s: Session, r: FuseRequest): Op<Reply> {
  // Kernels before 7.9 sent a 24-byte fuse_write_in; the data follows whichever it is.
  const header = s.minor < 9 ? FUSE_COMPAT_WRITE_IN_SIZE : fuse_write_in.SIZE;
  if (r.args.length < header) return Errno.EINVAL;
  const fh = yield* wait(fileOf(s, u64(r, fuse_write_in.fh), r.nodeid, true));
  const size = u32(r, fuse_write_in.size);
  if (size !== r.args.length - header || size > s.maxWrite) return Errno.EINVAL;
  const offset = sizeArg(u64(r, fuse_write_in.offset));
  // FUSE_HANDLE_KILLPRIV_V2: a writer without CAP_FSETID; write_flags is inside even the 24-byte form.
  if (u32(r, fuse_write_in.write_flags) & FUSE_WRITE_KILL_SUIDGID) yield* killPriv(s, nodeIno(s, r));
  if (size > 0) yield* dropCapabilities(s, nodeIno(s, r));
  const n = yield* wait(s.fs.write(fh, offset, r.args.subarray(header)));
  const out = struct(fuse_write_out.SIZE);
  out.view.setUint32(fuse_write_out.size, n, true);
  return out.bytes;
}

/** FLUSH: fh 0 in zero-message open is the node's handle if it has one, else none. */
function guestFileOf(s: Session, r: FuseRequest, fh: bigint): Awaitable<Handle> | undefined {
  return isNodeFh(s, fh) ? s.inodeFiles.peek(nodeIno(s, r)) : handleOf(s.openFiles, fh);
}

/**
 * close(2) of one descriptor: what the backend buffers (and, with a DAX window, the stores in it) is made
 * durable. A backend with nothing to do on close has no flush: ENOSYS, and Linux sends no FLUSH again
 * (fc->no_flush), which saves a round trip on every close, unless the device keeps locks: close(2) drops
 * the closing process's record locks on the file, and FLUSH is how the device learns of it.
 */
export function* flush(s: Session, r: FuseRequest): Op<Reply> {
  if (s.deviceLocks) s.locks.releaseOwner(s, nodeIno(s, r), u64(r, fuse_flush_in.lock_owner));
  if (!s.fs.flush) return s.deviceLocks ? 0 : Errno.ENOSYS;
  const fh = yield* wait(guestFileOf(s, r, u64(r, fuse_flush_in.fh)));
  if (fh !== undefined) yield* wait(s.fs.flush(fh)); // fh 0 of a file never read, written or mapped: nothing buffered
  return 0;
}

export function* release(s: Session, r: FuseRequest): Op<Reply> {
  const guestFh = u64(r, fuse_release_in.fh);
  // Before the first OPEN met ENOSYS, Linux still releases what CREATE opened: fh 0, the node's own.
  const fh = isNodeFh(s, guestFh) ? undefined : handleOf(s.openFiles, guestFh);
  if (fh === undefined) return 0;
  s.openFiles.delete(fh);
  s.locks.releaseHandle(s, fh);
  yield* wait(s.fs.release(fh));
  return 0;
}

export function* fsync(s: Session, r: FuseRequest): Op<Reply> {
  // fh 0 of a file never read or written opens the node's handle: fsync must reach the backend.
  const fh = yield* wait(fileOf(s, u64(r, fuse_fsync_in.fh), r.nodeid));
  yield* wait(s.fs.fsync(fh, (u32(r, fuse_fsync_in.fsync_flags) & FUSE_FSYNC_FDATASYNC) !== 0));
  return 0;
}

export function* fallocate(s: Session, r: FuseRequest): Op<Reply> {
  const f = fuse_fallocate_in;
  const fh = yield* wait(fileOf(s, u64(r, f.fh), r.nodeid, true));
  const offset = sizeArg(u64(r, f.offset));
  const length = sizeArg(u64(r, f.length));
  yield* dropCapabilities(s, nodeIno(s, r));
  yield* wait(s.fs.fallocate(fh, u32(r, f.mode), offset, length));
  return 0;
}

export function* lseek(s: Session, r: FuseRequest): Op<Reply> {
  const fh = yield* wait(fileOf(s, u64(r, fuse_lseek_in.fh), r.nodeid));
  const whence = u32(r, fuse_lseek_in.whence);
  // The kernel handles SEEK_SET/CUR/END itself; only the questions about holes come here.
  if (whence !== SEEK_DATA && whence !== SEEK_HOLE) return Errno.EINVAL;
  const offset = sizeArg(u64(r, fuse_lseek_in.offset));
  const pos = yield* wait(s.fs.lseek(fh, offset, whence));
  const out = struct(fuse_lseek_out.SIZE);
  out.view.setBigUint64(fuse_lseek_out.offset, BigInt(pos), true);
  return out.bytes;
}

export function* copyFileRange(s: Session, r: FuseRequest): Op<Reply> {
  const f = fuse_copy_file_range_in;
  if (u64(r, f.flags) !== 0n) return Errno.EINVAL; // copy_file_range(2) takes no flags yet
  const nodeOut = u64(r, f.nodeid_out);
  inoOf(s, nodeOut);
  const fhIn = yield* wait(fileOf(s, u64(r, f.fh_in), r.nodeid));
  const fhOut = yield* wait(fileOf(s, u64(r, f.fh_out), nodeOut, true));
  // The reply's size is 32 bits: copy at most what it can report.
  const len = Math.min(sizeArg(u64(r, f.len)), s.maxWrite);
  const offIn = sizeArg(u64(r, f.off_in));
  const offOut = sizeArg(u64(r, f.off_out));
  if (len > 0) yield* dropCapabilities(s, inoOf(s, nodeOut));
  const n = yield* wait(s.fs.copyFileRange(fhIn, offIn, fhOut, offOut, len));
  const out = struct(fuse_write_out.SIZE);
  out.view.setUint32(fuse_write_out.size, n, true);
  return out.bytes;
}
