// The DAX window: SETUPMAPPING, REMOVEMAPPING (fs/fuse/dax.c maps 2 MiB of a file at a time, by node id).
// Without a window (the device has none) both are ENOSYS, as for any opcode the server does not serve.
import { wait, type Op } from "../../vfs/awaitable.ts";
import { O_ACCMODE, O_RDONLY, O_WRONLY } from "../../vfs/linux.ts";
import { FUSE_REMOVEMAPPING_MAX_ENTRY, FUSE_SETUPMAPPING_FLAG_READ, FUSE_SETUPMAPPING_FLAG_WRITE, fuse_removemapping_in, fuse_removemapping_one, fuse_setupmapping_in } from "../abi.ts";
import { Errno } from "../../vfs/errno.ts";
import { PAGE_SIZE, type WindowSpan } from "../dax-window.ts";
import type { FuseRequest, Reply, Session } from "../session.ts";
import { RequestError, handleOf, nodeIno, u32, u64 } from "./common.ts";

/** fuse_setupmapping_in.fh from Linux: (u64)-1, "no open file, map by node id". */
const FH_NONE = 0xffff_ffff_ffff_ffffn;
const PAGE = BigInt(PAGE_SIZE);
const MAX_FILE_OFFSET = BigInt(Number.MAX_SAFE_INTEGER);

/** A non-empty, page-aligned range inside a window of `size` bytes; EINVAL otherwise (u64 sums cannot wrap). */
function windowSpan(size: number, moffset: bigint, len: bigint): WindowSpan {
  if (len === 0n || moffset % PAGE !== 0n || len % PAGE !== 0n || moffset + len > BigInt(size)) throw new RequestError(Errno.EINVAL);
  return { offset: Number(moffset), length: Number(len) };
}

export function* setupmapping(s: Session, r: FuseRequest): Op<Reply> {
  if (!s.dax) return Errno.ENOSYS;
  if (r.args.length < fuse_setupmapping_in.SIZE) return Errno.EINVAL;
  const f = fuse_setupmapping_in;
  const flags = u64(r, f.flags);
  if (flags & ~(FUSE_SETUPMAPPING_FLAG_READ | FUSE_SETUPMAPPING_FLAG_WRITE)) return Errno.EINVAL;
  const writable = (flags & FUSE_SETUPMAPPING_FLAG_WRITE) !== 0n;
  const { offset, length } = windowSpan(s.dax.mappings.window.size, u64(r, f.moffset), u64(r, f.len));
  const foffset = u64(r, f.foffset);
  if (foffset % PAGE !== 0n || foffset + BigInt(length) > MAX_FILE_OFFSET) return Errno.EINVAL;
  const ino = nodeIno(s, r);
  const fh = u64(r, f.fh);
  if (fh !== FH_NONE) {
    // A handle must be the guest's, open on this node, and allow what the mapping allows (as mmap(2)).
    const file = s.dax.file(handleOf(s.openFiles, fh));
    if (file?.ino !== ino) return Errno.EBADF;
    const mode = file.flags & O_ACCMODE;
    if (mode === O_WRONLY || (writable && mode === O_RDONLY)) return Errno.EACCES;
  }
  if (writable && s.fs.capabilities.readOnly) return Errno.EROFS;
  // Zero-message open: FLUSH of fh 0 reaches the window's stores through the node's handle, so a mapped
  // file needs one even if the guest never read or wrote it.
  if (s.zeroOpen) yield* wait(s.inodeFiles.get(ino, false));
  yield* wait(s.dax.mappings.setup(ino, { offset, length, fileOffset: Number(foffset), writable }));
  return 0;
}

/** fuse_removemapping_in, then exactly `count` fuse_removemapping_one. The node id plays no part: ranges are the window's. */
export function* removemapping(s: Session, r: FuseRequest): Op<Reply> {
  if (!s.dax) return Errno.ENOSYS;
  if (r.args.length < fuse_removemapping_in.SIZE) return Errno.EINVAL;
  const count = u32(r, fuse_removemapping_in.count);
  const one = fuse_removemapping_one;
  if (count === 0 || count > FUSE_REMOVEMAPPING_MAX_ENTRY || r.args.length !== fuse_removemapping_in.SIZE + count * one.SIZE) return Errno.EINVAL;
  const spans: WindowSpan[] = [];
  for (let i = 0, at = fuse_removemapping_in.SIZE; i < count; i++, at += one.SIZE) {
    spans.push(windowSpan(s.dax.mappings.window.size, u64(r, at + one.moffset), u64(r, at + one.len)));
  }
  yield* wait(s.dax.mappings.remove(spans));
  return 0;
}
