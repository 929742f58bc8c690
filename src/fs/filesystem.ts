// The inode-level interface between the FUSE server (src/fuse/server.ts) and the storage backends
// (memfs, hostdir, later OPFS), plus the small pieces every backend shares: name checks, the inode and
// handle tables, and the snapshot behind readdir cookies.
//
// Division of labour: the server owns FUSE node ids and the kernel's lookup counts and maps them to
// backend inode numbers (`Ino`); the backend owns the numbers, the objects behind them and the open
// handles. The guest is untrusted: every argument is checked again here, whatever the server checked.
//
// The write side follows the same style: inode numbers and handles in, a `FileAttr` out for anything that
// creates a name (counting as one reference, like `lookup`), `FsError(EROFS)` from read-only backends. The
// helpers below hold the checks and rules both backends apply the same way (argument checks, open modes,
// owner inheritance, xattr maps), so the backends differ only in how they store things.

import {
  E2BIG,
  EBADF,
  EEXIST,
  EFBIG,
  EILSEQ,
  EINVAL,
  EISDIR,
  ELOOP,
  ENAMETOOLONG,
  ENODATA,
  ENOENT,
  ENXIO,
  EOPNOTSUPP,
  ERANGE,
  EROFS,
  ESTALE,
  errnoName,
} from "./errno.ts";

/** A backend inode number: a positive safe integer, never recycled by the backend that issued it. */
export type Ino = number;
/** A backend-issued open file or directory handle: a positive safe integer, never recycled. */
export type Handle = number;

// File type bits of `mode` (Linux values; Node's fs.constants do not exist in the browser).
export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFLNK = 0o120000;
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o060000;
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;
// Set-id and sticky bits.
export const S_ISUID = 0o4000;
export const S_ISGID = 0o2000;
export const S_ISVTX = 0o1000;
/** Every bit of `mode` that chmod(2) sets: permissions, set-id and sticky. */
export const S_IALLUGO = 0o7777;

// open(2) flags as the i386 guest sends them in fuse_open_in.flags.
export const O_ACCMODE = 0o3;
export const O_RDONLY = 0o0;
export const O_WRONLY = 0o1;
export const O_RDWR = 0o2;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_TRUNC = 0o1000;
export const O_APPEND = 0o2000;

// access(2) mask bits.
export const F_OK = 0;
export const X_OK = 1;
export const W_OK = 2;
export const R_OK = 4;

/** Longest name, in UTF-8 bytes (Linux NAME_MAX). */
export const NAME_MAX = 255;
/**
 * Largest `read` a backend serves. FUSE reads are at most max_pages (256) pages; the limit only keeps a
 * hostile length from allocating gigabytes.
 */
export const MAX_IO_SIZE = 16 << 20;

export interface Timespec {
  /** Seconds since the epoch (may be negative). */
  sec: number;
  /** 0 ≤ nsec < 1e9. */
  nsec: number;
}

export interface FileAttr {
  ino: Ino;
  /** File type bits (S_IF*) and permission bits, as st_mode. */
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  /** Device number of a character or block device, in st_rdev's encoding (major << 8 | minor for small numbers). */
  rdev: number;
  /** Bytes; for a symlink, the length of its target in UTF-8 bytes. */
  size: number;
  /** Allocated space in 512-byte units. */
  blocks: number;
  /** Preferred I/O size. */
  blksize: number;
  atime: Timespec;
  mtime: Timespec;
  ctime: Timespec;
}

export interface DirEntry {
  name: string;
  ino: Ino;
  /** File type bits of the entry's mode (S_IFREG, S_IFDIR, …); `type >> 12` is its DT_* value. */
  type: number;
  /** Cookie that resumes the listing just after this entry (see `FileSystem.readdir`). */
  off: number;
}

export interface StatFs {
  /** Total, free and unprivileged-free blocks, in units of `frsize`. */
  blocks: number;
  bfree: number;
  bavail: number;
  /** Total and free inodes. */
  files: number;
  ffree: number;
  bsize: number;
  namelen: number;
  frsize: number;
}

export interface FsCapabilities {
  /** Every operation that would change the tree fails with EROFS. */
  readonly readOnly: boolean;
}

/** An expected failure, carrying the Linux errno the guest will see. Anything else thrown is a backend fault (EIO). */
export class FsError extends Error {
  override readonly name = "FsError";
  constructor(
    readonly errno: number,
    detail?: string,
  ) {
    super(detail === undefined ? errnoName(errno) : `${errnoName(errno)}: ${detail}`);
  }
}

/**
 * An inode-level filesystem. Every method returns a Promise; expected failures reject with `FsError`.
 *
 * Inode numbers: `rootIno` is permanent. Every successful `lookup` gives the caller one reference to the
 * returned ino, released by `forget`. While referenced, the ino names the same object; an ino the backend
 * does not hold (never issued, forgotten, not an integer) or whose object is gone (for hostdir: no longer
 * where it was looked up) fails with ESTALE, the errno that makes the guest drop its cached dentry and look
 * the name up again. Two names of one object
 * (hard links) have one ino.
 *
 * Names are single components, JS strings of valid UTF-8 names. The server already rejects names that are
 * not UTF-8 (EILSEQ); the backend still rejects "", ".", ".." and names containing "/" or NUL (EINVAL),
 * lone surrogates (EILSEQ) and names over NAME_MAX bytes (ENAMETOOLONG): see `checkName`.
 *
 * Handles: `open` and `opendir` issue numbers from one space per backend, checked on every use; an unknown,
 * released or wrong-kind handle fails with EBADF.
 *
 * Permissions: virtiofs mounts with default_permissions, so the guest kernel checks modes and owners
 * itself from the attributes; backends do not check credentials.
 */
export interface FileSystem {
  readonly rootIno: Ino;
  readonly capabilities: FsCapabilities;

  /** The attributes of `name` in directory `parent` (ENOENT if absent, ENOTDIR if `parent` is not a directory); one reference. */
  lookup(parent: Ino, name: string): Promise<FileAttr>;
  /** Drops `nlookup` references; at zero the backend may drop per-inode state. Never fails; the root is never dropped. */
  forget(ino: Ino, nlookup: number): Promise<void>;
  getattr(ino: Ino): Promise<FileAttr>;
  /** A symlink's target (EINVAL for anything else). */
  readlink(ino: Ino): Promise<string>;
  /**
   * Only reached when the guest mounts without default_permissions (virtiofs never does): checks that the
   * inode exists, and answers W_OK with EROFS on a read-only backend.
   */
  access(ino: Ino, mask: number): Promise<void>;
  statfs(ino: Ino): Promise<StatFs>;

  /**
   * Opens a regular file. `flags` are the guest's open(2) flags. EISDIR for a directory, ELOOP for a
   * symlink, ENXIO for devices, FIFOs and sockets (the guest kernel serves those itself and never asks).
   */
  open(ino: Ino, flags: number): Promise<Handle>;
  /**
   * Exactly `length` bytes from `offset`, fewer only at end of file (the kernel takes a short read as EOF).
   * EINVAL for a negative or non-integer offset or length, or a length over MAX_IO_SIZE.
   */
  read(fh: Handle, offset: number, length: number): Promise<Uint8Array>;
  release(fh: Handle): Promise<void>;

  /** ENOTDIR for anything but a directory. */
  opendir(ino: Ino): Promise<Handle>;
  /**
   * Up to `maxEntries` entries (all remaining if omitted) starting after `cookie`.
   *
   * The listing starts with "." (the directory's ino) and ".." (its parent's; the root's own for the root),
   * so `ls -a` in the guest shows each once; the server passes them through and, for READDIRPLUS, must not
   * count a lookup for them (the kernel skips them). Cookie 0 starts over and takes a fresh snapshot of the
   * directory; every other cookie is an `off` returned on this handle and resumes in that snapshot, so the
   * caller may stop anywhere (a full reply buffer) and continue from the last entry it used: each name of
   * the snapshot comes exactly once however the directory changes meanwhile (names added since show up
   * after the next cookie 0, as POSIX allows). A cookie past the end gives [].
   */
  readdir(dh: Handle, cookie: number, maxEntries?: number): Promise<DirEntry[]>;
  releasedir(dh: Handle): Promise<void>;

  // The write side. On a read-only backend (capabilities.readOnly) every method that would change the tree
  // fails with EROFS; fsync, flush, fsyncdir and syncfs succeed (there is nothing to make durable), and
  // lseek, getxattr and listxattr work as usual.
  // Methods that create a name return its attributes and count one reference, like `lookup`.
  // The guest kernel has already applied its umask and checked permissions (default_permissions); the
  // backend applies the rest of Linux's rules: owners from `cred`, except that a directory with S_ISGID
  // passes on its group (and S_ISGID to new subdirectories); ctime moves to now on every change, mtime on
  // every change of content, and a directory's mtime and ctime on every change of its entries.

  /**
   * Changes what `a` names; returns the new attributes. The file type bits of `a.mode` are ignored. A size
   * change (regular files only: EISDIR for directories, EINVAL otherwise) truncates or extends with zeros
   * and moves mtime to now unless `a.mtime` says otherwise. `fh`, when the guest passed one, is open on `ino`.
   */
  setattr(ino: Ino, a: SetAttr, fh?: Handle): Promise<FileAttr>;
  /**
   * Regular files, FIFOs, sockets and character/block devices (EINVAL for other types). The special files are
   * metadata only, never made on the host: `open` answers ENXIO for them; `rdev` is kept for devices.
   */
  mknod(parent: Ino, name: string, mode: number, rdev: number, cred: Cred): Promise<FileAttr>;
  mkdir(parent: Ino, name: string, mode: number, cred: Cred): Promise<FileAttr>;
  /** `target` is stored as given: not empty (ENOENT), at most PATH_MAX - 1 bytes (ENAMETOOLONG). */
  symlink(parent: Ino, name: string, target: string, cred: Cred): Promise<FileAttr>;
  /** A new name for `ino` (EPERM for directories, EMLINK past the backend's limit); also names a `tmpfile`. */
  link(ino: Ino, newParent: Ino, newName: string): Promise<FileAttr>;
  /**
   * Removes a name that is not a directory (EISDIR). The last name of a file still open leaves the file
   * readable and writable through its handles until they are released.
   */
  unlink(parent: Ino, name: string): Promise<void>;
  /** Removes an empty directory (ENOTEMPTY, ENOTDIR). */
  rmdir(parent: Ino, name: string): Promise<void>;
  /**
   * rename(2) and renameat2(2): `flags` is 0, RENAME_NOREPLACE or RENAME_EXCHANGE (others: EINVAL). Without
   * flags an existing target of a compatible type is replaced (EISDIR, ENOTDIR, ENOTEMPTY as Linux); with
   * NOREPLACE an existing one is EEXIST; EXCHANGE swaps two existing names of any types (ENOENT if either is
   * missing). Moving a directory into itself or below is EINVAL; two names of one inode are left as they are.
   * The moved inode keeps its number, its handles and, for a directory, its children's numbers.
   */
  rename(parent: Ino, name: string, newParent: Ino, newName: string, flags: number): Promise<void>;
  /**
   * Creates (or with O_EXCL refuses, EEXIST) and opens a regular file; an existing one is opened as `open`
   * would, truncated with O_TRUNC.
   */
  create(parent: Ino, name: string, mode: number, flags: number, cred: Cred): Promise<{ attr: FileAttr; fh: Handle }>;
  /**
   * O_TMPFILE: an unnamed regular file in `parent`, open; `link` may name it later (nlink 0 until then)
   * unless `flags` has O_EXCL (then `link` is ENOENT).
   */
  tmpfile(parent: Ino, mode: number, flags: number, cred: Cred): Promise<{ attr: FileAttr; fh: Handle }>;
  /**
   * Writes all of `data` at `offset` (at end of file if the handle was opened O_APPEND), leaving a hole
   * between the old end and `offset`; returns the bytes written. EBADF on a handle opened O_RDONLY (and
   * `read` is EBADF on one opened O_WRONLY); EFBIG past Number.MAX_SAFE_INTEGER.
   */
  write(fh: Handle, offset: number, data: Uint8Array): Promise<number>;
  /** Makes the file's data (and, unless `datasync`, metadata) durable. */
  fsync(fh: Handle, datasync: boolean): Promise<void>;
  /**
   * close(2) of one descriptor of the handle: make written data durable where the backend buffers it. A
   * backend with nothing to do on close leaves it out, and the guest then stops sending FLUSH.
   */
  flush?(fh: Handle): Promise<void>;
  fsyncdir(dh: Handle, datasync: boolean): Promise<void>;
  /** Everything written so far becomes durable. */
  syncfs(): Promise<void>;
  /**
   * mode: 0 (allocate, extending the size), FALLOC_FL_KEEP_SIZE (allocate only), FALLOC_FL_PUNCH_HOLE |
   * FALLOC_FL_KEEP_SIZE (the range reads as zeros afterwards); others EOPNOTSUPP. EBADF unless the handle
   * is open for writing; EINVAL for a negative offset or a length ≤ 0.
   */
  fallocate(fh: Handle, mode: number, offset: number, length: number): Promise<void>;
  /**
   * SEEK_DATA: the first offset ≥ `offset` holding data; SEEK_HOLE: the first one in a hole, the end of the
   * file counting as one. ENXIO for an offset at or past the end (and for SEEK_DATA with only a hole left).
   */
  lseek(fh: Handle, offset: number, whence: number): Promise<number>;
  /**
   * Copies up to `length` bytes from one handle (open for reading) to another (open for writing, not
   * O_APPEND: EBADF); returns the bytes copied, fewer only at the source's end of file. Within one file the
   * ranges must not overlap (EINVAL).
   */
  copyFileRange(fhIn: Handle, offIn: number, fhOut: Handle, offOut: number, length: number): Promise<number>;

  // Extended attributes: any namespace (user., trusted., security., system.posix_acl_*; a name without one
  // is EOPNOTSUPP), kept by the backend layer where the storage has none. Names are 1 to XATTR_NAME_MAX
  // bytes (ERANGE), values at most XATTR_SIZE_MAX (E2BIG). Every change moves ctime to now.
  /** ENODATA when absent. */
  getxattr(ino: Ino, name: string): Promise<Uint8Array>;
  /** flags: 0, XATTR_CREATE (EEXIST if present), XATTR_REPLACE (ENODATA if absent). */
  setxattr(ino: Ino, name: string, value: Uint8Array, flags: number): Promise<void>;
  /** The names, in no particular order. */
  listxattr(ino: Ino): Promise<string[]>;
  /** ENODATA when absent. */
  removexattr(ino: Ino, name: string): Promise<void>;
}

/** The caller's identity, from fuse_in_header: the owner of what it creates. */
export interface Cred {
  uid: number;
  gid: number;
}

/** What SETATTR changes; absent fields stay. "now" is the backend's clock (UTIME_NOW). */
export interface SetAttr {
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  atime?: Timespec | "now";
  mtime?: Timespec | "now";
  ctime?: Timespec;
}

// fallocate(2) modes, lseek(2) whences, setxattr(2) flags, renameat2(2) flags (Linux values).
export const FALLOC_FL_KEEP_SIZE = 0x01;
export const FALLOC_FL_PUNCH_HOLE = 0x02;
export const SEEK_DATA = 3;
export const SEEK_HOLE = 4;
export const XATTR_CREATE = 1;
export const XATTR_REPLACE = 2;
export const RENAME_NOREPLACE = 1;
export const RENAME_EXCHANGE = 2;

/** Longest xattr name in bytes, and largest value (Linux XATTR_NAME_MAX, XATTR_SIZE_MAX). */
export const XATTR_NAME_MAX = 255;
export const XATTR_SIZE_MAX = 65536;
/** Longest path, with its NUL (Linux PATH_MAX): a symlink target has at most PATH_MAX - 1 bytes. */
export const PATH_MAX = 4096;

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

/** The file type `mknod` makes: a regular file, FIFO, socket or device (EINVAL for anything else). */
export function mknodType(mode: number): number {
  const type = mode & S_IFMT;
  if (type === S_IFREG || type === S_IFIFO || type === S_IFSOCK || type === S_IFCHR || type === S_IFBLK) return type;
  throw new FsError(EINVAL, `mknod of type 0o${type.toString(8)}`);
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

/**
 * The inodes the server references, with the lookup counts that keep them. Backends keep their per-inode
 * state (a path, a node object) here; the value is replaced on each lookup so it follows the latest way
 * the object was reached.
 */
export class InodeTable<T> {
  private readonly live = new Map<Ino, { value: T; refs: number }>();

  constructor(rootIno: Ino, root: T) {
    this.live.set(rootIno, { value: root, refs: Infinity });
  }

  get(ino: Ino): T {
    const entry = this.live.get(ino);
    if (entry === undefined) throw new FsError(ESTALE, `unknown inode ${ino}`);
    return entry.value;
  }

  /** The value of a referenced inode, or undefined. */
  peek(ino: Ino): T | undefined {
    return this.live.get(ino)?.value;
  }

  /** Every referenced inode's value, the root's included (for updates in place, such as a rename's). */
  values(): T[] {
    return [...this.live.values()].map((entry) => entry.value);
  }

  /** Records one more reference to `ino`, now reached as `value`. */
  ref(ino: Ino, value: T): void {
    const entry = this.live.get(ino);
    if (entry === undefined) this.live.set(ino, { value, refs: 1 });
    else {
      entry.value = value;
      entry.refs++;
    }
  }

  forget(ino: Ino, nlookup: number): void {
    const entry = this.live.get(ino);
    if (entry === undefined || !(nlookup > 0)) return;
    entry.refs -= nlookup;
    if (entry.refs <= 0) this.live.delete(ino);
  }
}

/** Open handles. Numbers only grow, so a stale handle can never reach a later open. */
export class HandleTable<T> {
  private next: Handle = 1;
  private readonly open = new Map<Handle, T>();

  add(value: T): Handle {
    const h = this.next++;
    this.open.set(h, value);
    return h;
  }

  get(h: Handle): T {
    const value = this.open.get(h);
    if (value === undefined) throw new FsError(EBADF, `unknown handle ${h}`);
    return value;
  }

  /** Removes and returns the handle's value. */
  take(h: Handle): T {
    const value = this.get(h);
    this.open.delete(h);
    return value;
  }

  /** Every open handle's value. */
  values(): T[] {
    return [...this.open.values()];
  }

  /** Removes and returns every open handle's value. */
  takeAll(): T[] {
    const values = [...this.open.values()];
    this.open.clear();
    return values;
  }
}

export type DirListing = Omit<DirEntry, "off">[];

/**
 * The cookie machinery behind `readdir` for one open directory: a listing taken at cookie 0 (or on the
 * first call), with cookie n meaning "after the n-th entry" of that listing.
 */
export class DirStream {
  private snapshot: DirEntry[] | undefined;

  constructor(private readonly list: () => Promise<DirListing>) {}

  async read(cookie: number, maxEntries?: number): Promise<DirEntry[]> {
    if (!Number.isSafeInteger(cookie) || cookie < 0) throw new FsError(EINVAL, `bad cookie ${cookie}`);
    if (maxEntries !== undefined && (!Number.isSafeInteger(maxEntries) || maxEntries < 1)) {
      throw new FsError(EINVAL, `bad entry count ${maxEntries}`);
    }
    if (cookie === 0 || this.snapshot === undefined) {
      this.snapshot = (await this.list()).map((entry, i) => ({ ...entry, off: i + 1 }));
    }
    return this.snapshot.slice(cookie, maxEntries === undefined ? undefined : cookie + maxEntries);
  }
}
