// Byte-range and flock locks: GETLK, SETLK, SETLKW. The device arbitrates them (src/fuse/locks.ts).
import { Errno, FUSE_LK_FLOCK, fuse_file_lock, fuse_lk_in, fuse_lk_out } from "../abi.ts";
import { F_RDLCK, F_UNLCK, F_WRLCK, LockError, OFFSET_MAX, type LockKind } from "../locks.ts";
import type { FuseRequest, Reply, Session } from "../server.ts";
import { handleOf, isNodeFh, nodeIno, struct, u32, u64 } from "./common.ts";

function lockArgs(s: Session, r: FuseRequest) {
  const fh = u64(r, fuse_lk_in.fh);
  if (!isNodeFh(s, fh)) handleOf(s.openFiles, fh); // the node's own needs no backend handle to lock
  const lk = fuse_lk_in.lk;
  const kind: LockKind = u32(r, fuse_lk_in.lk_flags) & FUSE_LK_FLOCK ? "flock" : "posix";
  const start = u64(r, lk + fuse_file_lock.start);
  const end = u64(r, lk + fuse_file_lock.end);
  return {
    ino: nodeIno(s, r),
    kind,
    lock: {
      type: u32(r, lk + fuse_file_lock.type),
      // flock locks cover the whole file whatever the range says.
      start: kind === "flock" ? 0n : start,
      end: kind === "flock" ? OFFSET_MAX : end,
      owner: u64(r, fuse_lk_in.owner),
      pid: u32(r, lk + fuse_file_lock.pid),
    },
  };
}

export async function getlk(s: Session, r: FuseRequest): Promise<Reply> {
  const { ino, kind, lock } = lockArgs(s, r);
  const type = lock.type;
  if ((type !== F_RDLCK && type !== F_WRLCK) || lock.start > lock.end || lock.end > OFFSET_MAX) return Errno.EINVAL;
  const held = s.locks.test(kind, ino, { ...lock, type });
  const out = struct(fuse_lk_out.SIZE);
  const at = fuse_lk_out.lk;
  out.view.setUint32(at + fuse_file_lock.type, held ? held.type : F_UNLCK, true);
  if (held) {
    out.view.setBigUint64(at + fuse_file_lock.start, held.start, true);
    out.view.setBigUint64(at + fuse_file_lock.end, held.end, true);
    out.view.setUint32(at + fuse_file_lock.pid, held.pid, true);
  }
  return out.bytes;
}

async function setlkCommon(s: Session, r: FuseRequest, wait: boolean): Promise<Reply> {
  const { ino, kind, lock } = lockArgs(s, r);
  if (lock.end > OFFSET_MAX) return Errno.EINVAL;
  try {
    await s.locks.set(kind, ino, lock, wait, r.unique);
  } catch (e) {
    if (e instanceof LockError) return e.errno;
    throw e;
  }
  return 0;
}

export const setlk = (s: Session, r: FuseRequest): Promise<Reply> => setlkCommon(s, r, false);
export const setlkw = (s: Session, r: FuseRequest): Promise<Reply> => setlkCommon(s, r, true);
