// The checks and POSIX rules every backend applies the same way (argument checks, open modes, owner
// inheritance, xattr maps, the type rules of setattr, mknod, unlink, rmdir and rename), so that the backends
// differ only in how they store things. Pure functions: each backend passes what it knows and acts on the
// answer.

import { E2BIG, EBADF, EEXIST, EFBIG, EILSEQ, EINVAL, EISDIR, ELOOP, ENAMETOOLONG, ENODATA, ENOENT, ENOTDIR, ENOTEMPTY, ENXIO, EOPNOTSUPP, ERANGE, EROFS } from "../vfs/errno.ts";
import { FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, MAX_IO_SIZE, NAME_MAX, O_ACCMODE, O_APPEND, O_RDONLY, O_TRUNC, O_WRONLY, PATH_MAX, RENAME_EXCHANGE, RENAME_NOREPLACE, SEEK_DATA, SEEK_HOLE, S_IALLUGO, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK, S_ISGID, W_OK, XATTR_CREATE, XATTR_NAME_MAX, XATTR_REPLACE, XATTR_SIZE_MAX } from "../vfs/linux.ts";
import { type Cred, type FileAttr, type FsCapabilities, FsError, type Handle, type Ino, type SetAttr, type Timespec } from "../vfs/filesystem.ts";

const LONE_SURROGATE = /\p{Cs}/u;

/** Throws unless `name` is one valid path component (see `FileSystem`). */
export function checkName(name: string): void {
  if (name === "" || name === "." || name === ".." || name.includes("/") || name.includes("\0")) {
    throw new FsError(EINVAL, `bad name ${JSON.stringify(name)}`);
  }
  if (LONE_SURROGATE.test(name)) throw new FsError(EILSEQ, "name is not valid UTF-8");
  if (utf8Length(name) > NAME_MAX) throw new FsError(ENAMETOOLONG, `name of ${utf8Length(name)} bytes`);
}

/** UTF-8 length of a string without lone surrogates (each half of a pair counts 2 of its 4 bytes). */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    n += c < 0x80 ? 1 : c < 0x800 || (c >= 0xd800 && c < 0xe000) ? 2 : 3;
  }
  return n;
}

/** Throws unless (offset, length) is a read or write range a backend may serve. */
export function checkRange(offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0 || length > MAX_IO_SIZE) {
    throw new FsError(EINVAL, `bad range ${offset}+${length}`);
  }
}

/** `open` serves regular files only (see `FileSystem.open`); `type` is the inode's S_IFMT bits. */
export function checkOpenType(type: number, ino: Ino): void {
  if (type === S_IFREG) return;
  if (type === S_IFDIR) throw new FsError(EISDIR, `open of directory inode ${ino}`);
  if (type === S_IFLNK) throw new FsError(ELOOP, `open of symlink inode ${ino}`);
  throw new FsError(ENXIO, `open of special inode ${ino}`);
}

/** For read-only backends: only O_RDONLY opens without O_TRUNC are allowed. */
export function checkReadOnlyOpen(flags: number): void {
  if ((flags & O_ACCMODE) !== O_RDONLY || (flags & O_TRUNC) !== 0) throw new FsError(EROFS, "read-only filesystem");
}

/** For read-only backends' `access`. */
export function checkReadOnlyAccess(mask: number): void {
  if ((mask & W_OK) !== 0) throw new FsError(EROFS, "read-only filesystem");
}

/** The first check of every method that changes the tree. */
export function checkWritable(capabilities: FsCapabilities): void {
  if (capabilities.readOnly) throw new FsError(EROFS, "read-only filesystem");
}

/** What a file handle may do, from its open(2) flags. */
export interface OpenMode {
  read: boolean;
  write: boolean;
  /** Every write goes to the end of the file. */
  append: boolean;
}

/** EINVAL for access mode 3 (Linux's "ioctl only", which no file server serves). */
export function openMode(flags: number): OpenMode {
  const access = flags & O_ACCMODE;
  if (access === O_ACCMODE) throw new FsError(EINVAL, "open with access mode 3");
  return { read: access !== O_WRONLY, write: access !== O_RDONLY, append: (flags & O_APPEND) !== 0 };
}

export function checkCanRead(how: OpenMode, fh: Handle): void {
  if (!how.read) throw new FsError(EBADF, `handle ${fh} is not open for reading`);
}

export function checkCanWrite(how: OpenMode, fh: Handle): void {
  if (!how.write) throw new FsError(EBADF, `handle ${fh} is not open for writing`);
}

/** Throws unless `length` bytes may be written at `offset`: EINVAL as `checkRange`, EFBIG past MAX_SAFE_INTEGER. */
export function checkWriteRange(offset: number, length: number): void {
  checkRange(offset, length);
  if (offset + length > Number.MAX_SAFE_INTEGER) throw new FsError(EFBIG, `write up to ${offset + length}`);
}

/** fallocate(2)'s argument checks, in Linux's order (the handle's EBADF is the backend's). */
export function checkFallocate(mode: number, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length <= 0) {
    throw new FsError(EINVAL, `bad range ${offset}+${length}`);
  }
  if (mode !== 0 && mode !== FALLOC_FL_KEEP_SIZE && mode !== (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)) {
    throw new FsError(EOPNOTSUPP, `fallocate mode ${mode}`);
  }
  if (offset + length > Number.MAX_SAFE_INTEGER) throw new FsError(EFBIG, `fallocate up to ${offset + length}`);
}

/** lseek(2)'s checks for SEEK_DATA and SEEK_HOLE in a file of `size` bytes. */
export function checkSeek(offset: number, whence: number, size: number): void {
  if ((whence !== SEEK_DATA && whence !== SEEK_HOLE) || !Number.isSafeInteger(offset)) {
    throw new FsError(EINVAL, `lseek ${offset} whence ${whence}`);
  }
  if (offset < 0 || offset >= size) throw new FsError(ENXIO, `lseek ${offset} in ${size} bytes`);
}

/**
 * How many bytes copy_file_range(2) copies, after its checks: the handles' modes (EBADF), the offsets
 * (EINVAL), short at the source's end, no overlap within one file (EINVAL).
 */
export function copyLength(
  from: { how: OpenMode; size: number; offset: number },
  to: { how: OpenMode; offset: number },
  length: number,
  sameFile: boolean,
): number {
  if (!from.how.read || !to.how.write || to.how.append) throw new FsError(EBADF, "copy between handles of the wrong modes");
  if (![from.offset, to.offset, length].every((n) => Number.isSafeInteger(n) && n >= 0)) {
    throw new FsError(EINVAL, `bad copy ${from.offset} -> ${to.offset} + ${length}`);
  }
  const n = Math.max(0, Math.min(length, from.size - from.offset));
  if (sameFile && to.offset + n > from.offset && to.offset < from.offset + n) throw new FsError(EINVAL, "overlapping copy within one file");
  if (to.offset + n > Number.MAX_SAFE_INTEGER) throw new FsError(EFBIG, `copy up to ${to.offset + n}`);
  return n;
}

export function checkSymlinkTarget(target: string): void {
  if (target === "") throw new FsError(ENOENT, "empty symlink target");
  if (target.includes("\0")) throw new FsError(EINVAL, "symlink target with NUL");
  if (LONE_SURROGATE.test(target)) throw new FsError(EILSEQ, "symlink target is not valid UTF-8");
  if (utf8Length(target) >= PATH_MAX) throw new FsError(ENAMETOOLONG, `symlink target of ${utf8Length(target)} bytes`);
}

export function checkRenameFlags(flags: number): void {
  if (flags !== 0 && flags !== RENAME_NOREPLACE && flags !== RENAME_EXCHANGE) throw new FsError(EINVAL, `rename flags ${flags}`);
}

/**
 * What `mknod` makes: the new inode's mode (a regular file, FIFO, socket or device; EINVAL for other types)
 * and its rdev, kept for devices only; an rdev that is no 32-bit dev_t is EINVAL whatever the type.
 */
export function mknodAttr(mode: number, rdev: number): { mode: number; rdev: number } {
  const type = mode & S_IFMT;
  if (type !== S_IFREG && type !== S_IFIFO && type !== S_IFSOCK && type !== S_IFCHR && type !== S_IFBLK) {
    throw new FsError(EINVAL, `mknod of type 0o${type.toString(8)}`);
  }
  if (!Number.isInteger(rdev) || rdev < 0 || rdev > 0xffffffff) throw new FsError(EINVAL, `bad rdev ${rdev}`);
  return { mode: type | (mode & S_IALLUGO), rdev: type === S_IFCHR || type === S_IFBLK ? rdev : 0 };
}

/** What the rules of unlink, rmdir and rename need to know of the object at a name. */
export interface NameEntry {
  /** File type (S_IFMT bits), as the guest sees it. */
  type: number;
  /**
   * A directory's: whether it holds entries besides "." and "..". Left out where the storage's own removal
   * refuses a non-empty directory atomically (a host directory), so that a check beforehand would only race.
   */
  hasEntries?: boolean;
}

/** unlink(2) removes anything but a directory. */
export function checkUnlink(entry: NameEntry, name: string): void {
  if (entry.type === S_IFDIR) throw new FsError(EISDIR, `unlink of directory ${name}`);
}

/** rmdir(2) removes empty directories only. */
export function checkRmdir(entry: NameEntry, name: string): void {
  if (entry.type !== S_IFDIR) throw new FsError(ENOTDIR, `rmdir of ${name}`);
  if (entry.hasEntries === true) throw new FsError(ENOTEMPTY, name);
}

/**
 * One rename, as the backend knows it. `T` is whatever places a directory in the backend's tree (a node, a
 * path) and `within(dir, ancestor)` says whether `dir` is `ancestor` or lies below it.
 */
export interface RenameCase<T> {
  flags: number;
  /** The directories of the old and the new name. */
  from: T;
  to: T;
  /** What the old name holds; `at` is its place, looked at only for a directory. */
  src: NameEntry & { at: T };
  /** What the new name holds, if anything. */
  dst: (NameEntry & { at: T }) | undefined;
  /** Both names lead to one inode. */
  same: boolean;
  within(dir: T, ancestor: T): boolean;
}

/**
 * What a rename does: nothing (two names of one inode), a move to a free name, a move replacing the target,
 * or an exchange of the two. Throws as do_renameat2 and vfs_rename would, in their order: EEXIST
 * (NOREPLACE), ENOENT (EXCHANGE without a target), EINVAL (a directory into itself or below), ENOTEMPTY
 * (EINVAL for an exchange) when the target is an ancestor of the source, then the type rules of a
 * replacement: ENOTDIR, EISDIR, ENOTEMPTY. `flags` must have passed `checkRenameFlags`.
 */
export function renamePlan<T>(c: RenameCase<T>): "none" | "move" | "replace" | "exchange" {
  const { src, dst } = c;
  const exchange = (c.flags & RENAME_EXCHANGE) !== 0;
  if ((c.flags & RENAME_NOREPLACE) !== 0 && dst !== undefined) throw new FsError(EEXIST, "rename target exists");
  if (exchange && dst === undefined) throw new FsError(ENOENT, "rename exchange with no target");
  if (src.type === S_IFDIR && c.within(c.to, src.at)) throw new FsError(EINVAL, "a directory cannot move into itself or below");
  if (dst?.type === S_IFDIR && c.within(c.from, dst.at)) {
    throw new FsError(exchange ? EINVAL : ENOTEMPTY, "the rename target is an ancestor of the source");
  }
  if (c.same) return "none";
  if (dst === undefined) return "move";
  if (exchange) return "exchange";
  if (src.type === S_IFDIR && dst.type !== S_IFDIR) throw new FsError(ENOTDIR, "a directory over a non-directory");
  if (src.type !== S_IFDIR && dst.type === S_IFDIR) throw new FsError(EISDIR, "a non-directory over a directory");
  if (dst.hasEntries === true) throw new FsError(ENOTEMPTY, "rename over a non-empty directory");
  return "replace";
}

const isId = (n: number): boolean => Number.isInteger(n) && n >= 0 && n < 0xffffffff; // (uid_t)-1 means "unchanged"

const isTimespec = (t: Timespec): boolean => Number.isSafeInteger(t.sec) && Number.isInteger(t.nsec) && t.nsec >= 0 && t.nsec < 1e9;

export function checkCred(cred: Cred): void {
  if (!isId(cred.uid) || !isId(cred.gid)) throw new FsError(EINVAL, `bad credentials ${cred.uid}:${cred.gid}`);
}

export function checkSetAttr(a: SetAttr): void {
  const ok =
    (a.mode === undefined || (Number.isInteger(a.mode) && a.mode >= 0 && a.mode <= 0xffffffff)) &&
    (a.uid === undefined || isId(a.uid)) &&
    (a.gid === undefined || isId(a.gid)) &&
    (a.size === undefined || (Number.isSafeInteger(a.size) && a.size >= 0)) &&
    (a.atime === undefined || a.atime === "now" || isTimespec(a.atime)) &&
    (a.mtime === undefined || a.mtime === "now" || isTimespec(a.mtime)) &&
    (a.ctime === undefined || isTimespec(a.ctime));
  if (!ok) throw new FsError(EINVAL, `bad setattr ${JSON.stringify(a)}`);
}

/** setattr's rules by file type: a size for regular files only (EISDIR for a directory), no chmod of a symlink. */
export function checkSetAttrType(type: number, a: SetAttr, ino: Ino): void {
  if (a.size !== undefined && type !== S_IFREG) throw new FsError(type === S_IFDIR ? EISDIR : EINVAL, `truncate of inode ${ino}`);
  if (a.mode !== undefined && type === S_IFLNK) throw new FsError(EOPNOTSUPP, "chmod of a symlink");
}

/**
 * Owner and mode of a new inode in a directory with `parent`'s mode and group (Linux's inode_init_owner):
 * the caller's ids, except that a directory with S_ISGID gives its group, and S_ISGID to new directories.
 */
export function newOwner(parent: { mode: number; gid: number }, cred: Cred, mode: number): { mode: number; uid: number; gid: number } {
  checkCred(cred);
  if ((parent.mode & S_ISGID) === 0) return { mode, uid: cred.uid, gid: cred.gid };
  return { mode: (mode & S_IFMT) === S_IFDIR ? mode | S_ISGID : mode, uid: cred.uid, gid: parent.gid };
}

/** One inode's extended attributes. */
export type XattrMap = Map<string, Uint8Array>;

const XATTR_NAMESPACES = ["user.", "trusted.", "security.", "system."];

export function checkXattrName(name: string): void {
  if (name.includes("\0")) throw new FsError(EINVAL, "xattr name with NUL");
  if (LONE_SURROGATE.test(name)) throw new FsError(EILSEQ, "xattr name is not valid UTF-8");
  const bytes = utf8Length(name);
  if (bytes === 0 || bytes > XATTR_NAME_MAX) throw new FsError(ERANGE, `xattr name of ${bytes} bytes`);
  // As Linux's xattr_resolve_name: a known namespace, and something after it.
  const ns = XATTR_NAMESPACES.find((prefix) => name.startsWith(prefix));
  if (ns === undefined) throw new FsError(EOPNOTSUPP, `xattr ${JSON.stringify(name)} outside the known namespaces`);
  if (name.length === ns.length) throw new FsError(EINVAL, `xattr name ${JSON.stringify(name)}`);
}

export function getXattr(map: ReadonlyMap<string, Uint8Array> | undefined, name: string): Uint8Array {
  checkXattrName(name);
  const value = map?.get(name);
  if (value === undefined) throw new FsError(ENODATA, name);
  return value.slice();
}

/** setxattr(2) on `map`, keeping a copy of `value`. */
export function setXattr(map: XattrMap, name: string, value: Uint8Array, flags: number): void {
  checkXattrName(name);
  if (value.length > XATTR_SIZE_MAX) throw new FsError(E2BIG, `xattr value of ${value.length} bytes`);
  if ((flags & ~(XATTR_CREATE | XATTR_REPLACE)) !== 0) throw new FsError(EINVAL, `setxattr flags ${flags}`);
  if ((flags & XATTR_CREATE) !== 0 && map.has(name)) throw new FsError(EEXIST, name);
  if ((flags & XATTR_REPLACE) !== 0 && !map.has(name)) throw new FsError(ENODATA, name);
  map.set(name, value.slice());
}

export function removeXattr(map: XattrMap, name: string): void {
  checkXattrName(name);
  if (!map.delete(name)) throw new FsError(ENODATA, name);
}

/** The attributes of a node whose storage has no holes: blocks from the size, 4 KiB blocks. */
export function denseAttr(node: Pick<FileAttr, "ino" | "mode" | "uid" | "gid" | "rdev" | "atime" | "mtime" | "ctime">, nlink: number, size: number): FileAttr {
  const { ino, mode, uid, gid, rdev, atime, mtime, ctime } = node;
  return { ino, mode, nlink, uid, gid, rdev, size, blocks: Math.ceil(size / 512), blksize: 4096, atime, mtime, ctime };
}
