// Directories: OPENDIR, READDIR, READDIRPLUS, RELEASEDIR, FSYNCDIR.
import { wait, type Op } from "../../vfs/awaitable.ts";
import type { DirEntry, FileAttr } from "../../vfs/filesystem.ts";
import { FUSE_FSYNC_FDATASYNC, direntSize, direntplusSize, fuse_dirent, fuse_direntplus, fuse_fsync_in, fuse_read_in, fuse_release_in } from "../abi.ts";
import type { FuseRequest, Reply, Session } from "../session.ts";
import { handleOf, nodeIno, openReply, putEntry, sizeArg, struct, u32, u64 } from "./common.ts";

const encoder = new TextEncoder();

// fuse_open_in's flags do not matter for a directory.
export function* opendir(s: Session, r: FuseRequest): Op<Reply> {
  const dh = yield* wait(s.fs.opendir(nodeIno(s, r)));
  s.openDirs.add(dh);
  return openReply(dh, s.cache.dirOpenFlags);
}

export function* releasedir(s: Session, r: FuseRequest): Op<Reply> {
  const dh = handleOf(s.openDirs, u64(r, fuse_release_in.fh));
  s.openDirs.delete(dh);
  yield* wait(s.fs.releasedir(dh));
  return 0;
}

export function* fsyncdir(s: Session, r: FuseRequest): Op<Reply> {
  const dh = handleOf(s.openDirs, u64(r, fuse_fsync_in.fh));
  yield* wait(s.fs.fsyncdir(dh, (u32(r, fuse_fsync_in.fsync_flags) & FUSE_FSYNC_FDATASYNC) !== 0));
  return 0;
}

const isDot = (name: string): boolean => name === "." || name === "..";
const ZERO_TIME = { sec: 0, nsec: 0 };
const DOT_ATTR: FileAttr = { ino: 0, mode: 0, nlink: 0, uid: 0, gid: 0, rdev: 0, size: 0, blocks: 0, blksize: 0, atime: ZERO_TIME, mtime: ZERO_TIME, ctime: ZERO_TIME };

/** READDIR and READDIRPLUS: as many entries after the cookie as fit in the guest's buffer. */
function* readdirCommon(s: Session, r: FuseRequest, plus: boolean): Op<Reply> {
  const dh = handleOf(s.openDirs, u64(r, fuse_read_in.fh));
  const cookie = sizeArg(u64(r, fuse_read_in.offset));
  // Entries that would not fit the chain must not be looked up: their references would never reach the guest.
  const size = Math.max(0, Math.min(u32(r, fuse_read_in.size), s.maxWrite, r.room));
  const recordMin = plus ? direntplusSize(1) : direntSize(1);
  const entries: DirEntry[] = yield* wait(s.fs.readdir(dh, cookie, Math.max(1, Math.floor(size / recordMin))));
  const dirIno = plus ? nodeIno(s, r) : 0;
  const out = struct(size);
  let used = 0;
  for (const e of entries) {
    const name = encoder.encode(e.name);
    const rec = plus ? direntplusSize(name.length) : direntSize(name.length);
    if (used + rec > size) break;
    let at = used;
    if (plus) {
      if (isDot(e.name)) {
        // The kernel skips "." and ".." in READDIRPLUS and never forgets them: no lookup is counted.
        putEntry(s, out.view, at, { ...DOT_ATTR, ino: e.ino, mode: e.type }, 0);
      } else {
        let attr: FileAttr;
        try {
          attr = yield* wait(s.fs.lookup(dirIno, e.name));
        } catch {
          continue; // removed since the listing was taken
        }
        putEntry(s, out.view, at, attr, s.nodes.ref(attr.ino));
      }
      at += fuse_direntplus.dirent;
    }
    out.view.setBigUint64(at + fuse_dirent.ino, BigInt(e.ino), true);
    out.view.setBigUint64(at + fuse_dirent.off, BigInt(e.off), true);
    out.view.setUint32(at + fuse_dirent.namelen, name.length, true);
    out.view.setUint32(at + fuse_dirent.type, e.type >>> 12, true);
    out.bytes.set(name, at + fuse_dirent.name);
    used += rec;
  }
  return out.bytes.subarray(0, used);
}

export const readdir = (s: Session, r: FuseRequest): Op<Reply> => readdirCommon(s, r, false);
export const readdirplus = (s: Session, r: FuseRequest): Op<Reply> => readdirCommon(s, r, true);
