// Names and inodes: LOOKUP, FORGET, BATCH_FORGET, GETATTR, SETATTR, READLINK, ACCESS, MKNOD, MKDIR,
// SYMLINK, LINK, UNLINK, RMDIR, RENAME, RENAME2.
import { wait, type Op } from "../../vfs/awaitable.ts";
import { S_IFDIR, S_IFMT, S_IFREG } from "../../vfs/linux.ts";
import { FsError, type Ino, type SetAttr, type Timespec } from "../../vfs/filesystem.ts";
import { FATTR_ATIME, FATTR_ATIME_NOW, FATTR_CTIME, FATTR_FH, FATTR_GID, FATTR_KILL_SUIDGID, FATTR_MODE, FATTR_MTIME, FATTR_MTIME_NOW, FATTR_SIZE, FATTR_UID, RENAME_EXCHANGE, RENAME_NOREPLACE, fuse_access_in, fuse_batch_forget_in, fuse_forget_in, fuse_forget_one, fuse_link_in, fuse_mkdir_in, fuse_mknod_in, fuse_rename2_in, fuse_rename_in, fuse_setattr_in } from "../abi.ts";
import { Errno } from "../../vfs/errno.ts";
import { NO_REPLY, type FuseRequest, type Reply, type Session } from "../session.ts";
import { RequestError, attrReply, cred, dropCapabilities, entryReply, fileOf, inoOf, killSuidSgid, nameAt, nameArg, negativeEntryReply, nodeIno, sizeArg, u32, u64, withExisting } from "./common.ts";

/** Linux PATH_MAX: the longest symlink target. */
const PATH_MAX = 4096;

/**
 * A name that is not there is, where names are cached at all, an entry with node id 0 that the guest keeps
 * as a negative dentry for as long as it keeps names: tar, shells and interpreters look a name up before
 * they create it or after they miss it.
 */
export function* lookup(s: Session, r: FuseRequest): Op<Reply> {
  const parent = nodeIno(s, r);
  const name = nameArg(r, 0);
  try {
    return entryReply(s, yield* wait(s.fs.lookup(parent, name)));
  } catch (e) {
    if (e instanceof FsError && e.errno === Errno.ENOENT && s.cache.timeout > 0) return negativeEntryReply(s);
    throw e;
  }
}

function* forgetOne(s: Session, nodeid: bigint, nlookup: bigint): Op<void> {
  const gone = s.nodes.forget(nodeid, nlookup);
  if (!gone || gone.dropped === 0) return;
  // Linux unmaps an inode before it forgets it; a guest that does not loses no stores either.
  if (s.nodes.nodeid(gone.ino) === undefined) {
    yield* wait(s.dax?.mappings.forgotten(gone.ino));
    yield* wait(s.inodeFiles.drop(gone.ino));
  }
  yield* wait(s.fs.forget(gone.ino, gone.dropped));
}

export function* forget(s: Session, r: FuseRequest): Op<Reply> {
  yield* forgetOne(s, r.nodeid, u64(r, fuse_forget_in.nlookup));
  return NO_REPLY;
}

export function* batchForget(s: Session, r: FuseRequest): Op<Reply> {
  // Take only the entries actually present: count is the guest's claim.
  const present = Math.floor((r.args.length - fuse_batch_forget_in.SIZE) / fuse_forget_one.SIZE);
  const n = Math.min(u32(r, fuse_batch_forget_in.count), present);
  for (let i = 0, at = fuse_batch_forget_in.SIZE; i < n; i++, at += fuse_forget_one.SIZE) {
    yield* forgetOne(s, u64(r, at + fuse_forget_one.nodeid), u64(r, at + fuse_forget_one.nlookup));
  }
  return NO_REPLY;
}

// fuse_getattr_in's flags and fh only say which open file asked: attributes are per inode.
export function* getattr(s: Session, r: FuseRequest): Op<Reply> {
  return attrReply(s, yield* wait(s.fs.getattr(nodeIno(s, r))));
}

function time(r: FuseRequest, secAt: number, nsecAt: number): Timespec {
  const nsec = u32(r, nsecAt);
  if (nsec >= 1e9) throw new RequestError(Errno.EINVAL);
  return { sec: Number(BigInt.asIntN(64, u64(r, secAt))), nsec };
}

export function* setattr(s: Session, r: FuseRequest): Op<Reply> {
  const ino = nodeIno(s, r);
  const valid = u32(r, fuse_setattr_in.valid);
  const f = fuse_setattr_in;
  const a: SetAttr = {};
  if (valid & FATTR_MODE) a.mode = u32(r, f.mode);
  if (valid & FATTR_UID) a.uid = u32(r, f.uid);
  if (valid & FATTR_GID) a.gid = u32(r, f.gid);
  if (valid & FATTR_SIZE) a.size = sizeArg(u64(r, f.size));
  // UTIME_NOW arrives as *_NOW; UTIME_OMIT as the bit left clear.
  if (valid & FATTR_ATIME) a.atime = valid & FATTR_ATIME_NOW ? "now" : time(r, f.atime, f.atimensec);
  if (valid & FATTR_MTIME) a.mtime = valid & FATTR_MTIME_NOW ? "now" : time(r, f.mtime, f.mtimensec);
  if (valid & FATTR_CTIME) a.ctime = time(r, f.ctime, f.ctimensec);
  // FUSE_HANDLE_KILLPRIV_V2: chown, or truncate by a caller without CAP_FSETID.
  if (valid & FATTR_KILL_SUIDGID) {
    const mode = a.mode ?? (yield* wait(s.fs.getattr(ino))).mode;
    if (killSuidSgid(mode) !== mode) a.mode = killSuidSgid(mode);
  }
  const fh = valid & FATTR_FH ? yield* wait(fileOf(s, u64(r, f.fh), r.nodeid, (valid & FATTR_SIZE) !== 0)) : undefined;
  const attr = yield* wait(s.fs.setattr(ino, a, fh));
  // A truncate or chown drops file capabilities, as a write does (a directory's chown keeps them).
  const kills = a.size !== undefined || ((a.uid !== undefined || a.gid !== undefined) && (attr.mode & S_IFMT) !== S_IFDIR);
  return attrReply(s, kills && (yield* dropCapabilities(s, ino)) ? yield* wait(s.fs.getattr(ino)) : attr);
}

export function* readlink(s: Session, r: FuseRequest): Op<Reply> {
  return new TextEncoder().encode(yield* wait(s.fs.readlink(nodeIno(s, r))));
}

export function* access(s: Session, r: FuseRequest): Op<Reply> {
  yield* wait(s.fs.access(nodeIno(s, r), u32(r, fuse_access_in.mask)));
  return 0;
}

export function* mknod(s: Session, r: FuseRequest): Op<Reply> {
  const parent = nodeIno(s, r);
  const name = nameArg(r, fuse_mknod_in.SIZE);
  return entryReply(s, yield* wait(s.fs.mknod(parent, name, u32(r, fuse_mknod_in.mode), u32(r, fuse_mknod_in.rdev), cred(r))));
}

export function* mkdir(s: Session, r: FuseRequest): Op<Reply> {
  const parent = nodeIno(s, r);
  return entryReply(s, yield* wait(s.fs.mkdir(parent, nameArg(r, fuse_mkdir_in.SIZE), u32(r, fuse_mkdir_in.mode), cred(r))));
}

export function* symlink(s: Session, r: FuseRequest): Op<Reply> {
  const parent = nodeIno(s, r);
  // "name\0target\0": the new entry, then what it points to.
  const name = nameAt(r, 0);
  const target = nameAt(r, name.next, PATH_MAX - 1).name;
  return entryReply(s, yield* wait(s.fs.symlink(parent, name.name, target, cred(r))));
}

export function* link(s: Session, r: FuseRequest): Op<Reply> {
  const newParent = nodeIno(s, r);
  const target = inoOf(s, u64(r, fuse_link_in.oldnodeid));
  return entryReply(s, yield* wait(s.fs.link(target, newParent, nameArg(r, fuse_link_in.SIZE))));
}

export function* unlink(s: Session, r: FuseRequest): Op<Reply> {
  const parent = nodeIno(s, r);
  const name = nameArg(r, 0);
  yield* keepOpenable(s, parent, name);
  yield* wait(s.fs.unlink(parent, name));
  return 0;
}

/**
 * Zero-message open: the guest may have `name` open without the server knowing, and an unlinked file
 * lives only while a handle is open on it. So a file the guest holds gets its node handle before its
 * name can go (UNLINK, or RENAME over it); FORGET gives it back.
 */
function* keepOpenable(s: Session, parent: Ino, name: string): Op<void> {
  if (!s.zeroOpen) return;
  yield* withExisting(s, parent, name, function* (attr) {
    if ((attr.mode & S_IFMT) === S_IFREG && s.nodes.nodeid(attr.ino) !== undefined) yield* wait(s.inodeFiles.get(attr.ino, false));
  });
}

export function* rmdir(s: Session, r: FuseRequest): Op<Reply> {
  yield* wait(s.fs.rmdir(nodeIno(s, r), nameArg(r, 0)));
  return 0;
}

function* renameCommon(s: Session, r: FuseRequest, argsSize: number, flags: number): Op<Reply> {
  if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE) || flags === (RENAME_NOREPLACE | RENAME_EXCHANGE)) return Errno.EINVAL;
  const parent = nodeIno(s, r);
  const newParent = inoOf(s, u64(r, fuse_rename_in.newdir));
  // "oldname\0newname\0"
  const from = nameAt(r, argsSize);
  const to = nameAt(r, from.next).name;
  if (!(flags & RENAME_EXCHANGE)) yield* keepOpenable(s, newParent, to);
  yield* wait(s.fs.rename(parent, from.name, newParent, to, flags));
  return 0;
}

export const rename = (s: Session, r: FuseRequest): Op<Reply> => renameCommon(s, r, fuse_rename_in.SIZE, 0);
export const rename2 = (s: Session, r: FuseRequest): Op<Reply> => renameCommon(s, r, fuse_rename2_in.SIZE, u32(r, fuse_rename2_in.flags));
