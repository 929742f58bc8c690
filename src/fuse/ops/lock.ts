// GETLK, SETLK, SETLKW: record locks and flock(2), served only when the session keeps locks on the device
// (Session.deviceLocks: the backend is shared by several guests, or the embedder asked). Otherwise Linux
// was not offered FUSE_POSIX_LOCKS or FUSE_FLOCK_LOCKS and keeps locks itself; a guest sending these
// anyway gets ENOSYS.
import { wait, type Op } from "../../vfs/awaitable.ts";
import { FUSE_LK_FLOCK, encode, fuse_file_lock, fuse_lk_in, fuse_lk_out } from "../abi.ts";
import { Errno } from "../../vfs/errno.ts";
import { F_UNLCK, OFFSET_MAX, type LockRequest } from "../locks.ts";
import type { FuseRequest, Reply, Session } from "../session.ts";
import { handleOf, nodeIno, struct, u32, u64 } from "./common.ts";

/** The lock a request asks about; EINVAL for a type or range no kernel sends. */
function lockArgs(s: Session, r: FuseRequest): LockRequest | Errno {
  const lk = fuse_lk_in.lk;
  const flock = (u32(r, fuse_lk_in.lk_flags) & FUSE_LK_FLOCK) !== 0;
  const type = u32(r, lk + fuse_file_lock.type);
  // flock(2) locks the whole file, whatever range a guest writes.
  const start = flock ? 0n : u64(r, lk + fuse_file_lock.start);
  const end = flock ? OFFSET_MAX : u64(r, lk + fuse_file_lock.end);
  if (type > F_UNLCK || start > end || end > OFFSET_MAX) return Errno.EINVAL;
  return {
    ino: nodeIno(s, r),
    flock,
    owner: u64(r, fuse_lk_in.owner),
    fh: handleOf(s.openFiles, u64(r, fuse_lk_in.fh)),
    type,
    start,
    end,
    pid: u32(r, lk + fuse_file_lock.pid),
  };
}

export function* getlk(s: Session, r: FuseRequest): Op<Reply> {
  if (!s.deviceLocks) return Errno.ENOSYS;
  const req = lockArgs(s, r);
  if (typeof req === "number") return req;
  const held = s.locks.test(s, req) ?? { type: F_UNLCK, start: req.start, end: req.end, pid: 0 };
  const out = struct(fuse_lk_out.SIZE);
  encode(fuse_file_lock, out.view, fuse_lk_out.lk, held);
  return out.bytes;
}

function* setlkCommon(s: Session, r: FuseRequest, block: boolean): Op<Reply> {
  if (!s.deviceLocks) return Errno.ENOSYS;
  const req = lockArgs(s, r);
  if (typeof req === "number") return req;
  // A blocked SETLKW holds only its own descriptor chain: the queue and the other guests go on.
  return yield* wait(s.locks.set(s, req, block));
}

export const setlk = (s: Session, r: FuseRequest): Op<Reply> => setlkCommon(s, r, false);
export const setlkw = (s: Session, r: FuseRequest): Op<Reply> => setlkCommon(s, r, true);
