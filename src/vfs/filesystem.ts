// The inode-level interface between the FUSE server (src/fuse/) and the storage backends (src/fs/): the
// ground floor, importing nothing but its siblings in src/vfs/.
//
// Division of labour: the server owns FUSE node ids and the kernel's lookup counts and maps them to
// backend inode numbers (`Ino`); the backend owns the numbers, the objects behind them and the open
// handles. The guest is untrusted: every argument is checked again by the backend, whatever the server
// checked.
//
// The write side follows the same style: inode numbers and handles in, a `FileAttr` out for anything that
// creates a name (counting as one reference, like `lookup`), `FsError(EROFS)` from read-only backends.

import type { Awaitable } from "./awaitable.ts";
import { errnoName } from "./errno.ts";
import type { Saved } from "./state.ts";

/** A backend inode number: a positive safe integer, never recycled by the backend that issued it. */
export type Ino = number;
/** A backend-issued open file or directory handle: a positive safe integer, never recycled. */
export type Handle = number;

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
    // An answer, not a bug: no stack. Requests are served inside v86's port writes, so capturing one walks
    // v86's WebAssembly frames: about a sixth of the device's time for a guest creating files (each name is
    // looked up, and missed, before it is created).
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(detail === undefined ? errnoName(errno) : `${errnoName(errno)}: ${detail}`);
    Error.stackTraceLimit = limit;
  }
}

/**
 * An inode-level filesystem. A method returns its value, or a Promise of it when the backend has to wait;
 * expected failures are `FsError`, thrown or rejected alike. A backend that answers at once lets the server
 * reply within the guest's notify (src/vfs/awaitable.ts), so a backend over memory should.
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
  lookup(parent: Ino, name: string): Awaitable<FileAttr>;
  /** Drops `nlookup` references; at zero the backend may drop per-inode state. Never fails; the root is never dropped. */
  forget(ino: Ino, nlookup: number): Awaitable<void>;
  getattr(ino: Ino): Awaitable<FileAttr>;
  /** A symlink's target (EINVAL for anything else). */
  readlink(ino: Ino): Awaitable<string>;
  /**
   * Only reached when the guest mounts without default_permissions (virtiofs never does): checks that the
   * inode exists, and answers W_OK with EROFS on a read-only backend.
   */
  access(ino: Ino, mask: number): Awaitable<void>;
  statfs(ino: Ino): Awaitable<StatFs>;

  /**
   * Opens a regular file. `flags` are the guest's open(2) flags. EISDIR for a directory, ELOOP for a
   * symlink, ENXIO for devices, FIFOs and sockets (the guest kernel serves those itself and never asks).
   */
  open(ino: Ino, flags: number): Awaitable<Handle>;
  /**
   * Exactly `length` bytes from `offset`, fewer only at end of file (the kernel takes a short read as EOF).
   * EINVAL for a negative or non-integer offset or length, or a length over MAX_IO_SIZE.
   */
  read(fh: Handle, offset: number, length: number): Awaitable<Uint8Array>;
  /**
   * As read, into `into` (up to its length): the count read. Optional; a DAX window fills its pages with it
   * straight from the backend, without a buffer between.
   */
  readInto?(fh: Handle, offset: number, into: Uint8Array): Awaitable<number>;
  release(fh: Handle): Awaitable<void>;

  /** ENOTDIR for anything but a directory. */
  opendir(ino: Ino): Awaitable<Handle>;
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
  readdir(dh: Handle, cookie: number, maxEntries?: number): Awaitable<DirEntry[]>;
  releasedir(dh: Handle): Awaitable<void>;

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
  setattr(ino: Ino, a: SetAttr, fh?: Handle): Awaitable<FileAttr>;
  /**
   * Regular files, FIFOs, sockets and character/block devices (EINVAL for other types). The special files are
   * metadata only, never made on the host: `open` answers ENXIO for them; `rdev` is kept for devices.
   */
  mknod(parent: Ino, name: string, mode: number, rdev: number, cred: Cred): Awaitable<FileAttr>;
  mkdir(parent: Ino, name: string, mode: number, cred: Cred): Awaitable<FileAttr>;
  /** `target` is stored as given: not empty (ENOENT), at most PATH_MAX - 1 bytes (ENAMETOOLONG). */
  symlink(parent: Ino, name: string, target: string, cred: Cred): Awaitable<FileAttr>;
  /** A new name for `ino` (EPERM for directories, EMLINK past the backend's limit); also names a `tmpfile`. */
  link(ino: Ino, newParent: Ino, newName: string): Awaitable<FileAttr>;
  /**
   * Removes a name that is not a directory (EISDIR). The last name of a file still open leaves the file
   * readable and writable through its handles until they are released.
   */
  unlink(parent: Ino, name: string): Awaitable<void>;
  /** Removes an empty directory (ENOTEMPTY, ENOTDIR). */
  rmdir(parent: Ino, name: string): Awaitable<void>;
  /**
   * rename(2) and renameat2(2): `flags` is 0, RENAME_NOREPLACE or RENAME_EXCHANGE (others: EINVAL). Without
   * flags an existing target of a compatible type is replaced (EISDIR, ENOTDIR, ENOTEMPTY as Linux); with
   * NOREPLACE an existing one is EEXIST; EXCHANGE swaps two existing names of any types (ENOENT if either is
   * missing). Moving a directory into itself or below is EINVAL; two names of one inode are left as they are.
   * The moved inode keeps its number, its handles and, for a directory, its children's numbers.
   */
  rename(parent: Ino, name: string, newParent: Ino, newName: string, flags: number): Awaitable<void>;
  /**
   * Creates (or with O_EXCL refuses, EEXIST) and opens a regular file; an existing one is opened as `open`
   * would, truncated with O_TRUNC.
   */
  create(parent: Ino, name: string, mode: number, flags: number, cred: Cred): Awaitable<{ attr: FileAttr; fh: Handle }>;
  /**
   * O_TMPFILE: an unnamed regular file in `parent`, open; `link` may name it later (nlink 0 until then)
   * unless `flags` has O_EXCL (then `link` is ENOENT).
   */
  tmpfile(parent: Ino, mode: number, flags: number, cred: Cred): Awaitable<{ attr: FileAttr; fh: Handle }>;
  /**
   * Writes all of `data` at `offset` (at end of file if the handle was opened O_APPEND), leaving a hole
   * between the old end and `offset`; returns the bytes written. EBADF on a handle opened O_RDONLY (and
   * `read` is EBADF on one opened O_WRONLY); EFBIG past Number.MAX_SAFE_INTEGER.
   */
  write(fh: Handle, offset: number, data: Uint8Array): Awaitable<number>;
  /** Makes the file's data (and, unless `datasync`, metadata) durable. */
  fsync(fh: Handle, datasync: boolean): Awaitable<void>;
  /**
   * close(2) of one descriptor of the handle: make written data durable where the backend buffers it. A
   * backend with nothing to do on close leaves it out, and the guest then stops sending FLUSH.
   */
  flush?(fh: Handle): Awaitable<void>;
  fsyncdir(dh: Handle, datasync: boolean): Awaitable<void>;
  /** Everything written so far becomes durable. */
  syncfs(): Awaitable<void>;
  /**
   * mode: 0 (allocate, extending the size), FALLOC_FL_KEEP_SIZE (allocate only), FALLOC_FL_PUNCH_HOLE |
   * FALLOC_FL_KEEP_SIZE (the range reads as zeros afterwards); others EOPNOTSUPP. EBADF unless the handle
   * is open for writing; EINVAL for a negative offset or a length ≤ 0.
   */
  fallocate(fh: Handle, mode: number, offset: number, length: number): Awaitable<void>;
  /**
   * SEEK_DATA: the first offset ≥ `offset` holding data; SEEK_HOLE: the first one in a hole, the end of the
   * file counting as one. ENXIO for an offset at or past the end (and for SEEK_DATA with only a hole left).
   */
  lseek(fh: Handle, offset: number, whence: number): Awaitable<number>;
  /**
   * Copies up to `length` bytes from one handle (open for reading) to another (open for writing, not
   * O_APPEND: EBADF); returns the bytes copied, fewer only at the source's end of file. Within one file the
   * ranges must not overlap (EINVAL).
   */
  copyFileRange(fhIn: Handle, offIn: number, fhOut: Handle, offOut: number, length: number): Awaitable<number>;

  // Extended attributes: any namespace (user., trusted., security., system.posix_acl_*; a name without one
  // is EOPNOTSUPP), kept by the backend layer where the storage has none. Names are 1 to XATTR_NAME_MAX
  // bytes (ERANGE), values at most XATTR_SIZE_MAX (E2BIG). Every change moves ctime to now.
  /** ENODATA when absent. */
  getxattr(ino: Ino, name: string): Awaitable<Uint8Array>;
  /** flags: 0, XATTR_CREATE (EEXIST if present), XATTR_REPLACE (ENODATA if absent). */
  setxattr(ino: Ino, name: string, value: Uint8Array, flags: number): Awaitable<void>;
  /** The names, in no particular order. */
  listxattr(ino: Ino): Awaitable<string[]>;
  /** ENODATA when absent. */
  removexattr(ino: Ino, name: string): Awaitable<void>;

  // Snapshots (Guest.saveState). A backend without these cannot be part of one.
  /**
   * The backend's part of a snapshot, taken while no request runs: the inodes referenced (with their
   * counts) and the handles open, under their numbers, with what reopens them — and, for a backend that
   * lives in memory, the whole tree and its data. A backend over storage that outlives the page or process
   * (OPFS, a host directory) keeps the tree where it is and saves references to it.
   */
  saveState?(): Promise<Saved>;
  /**
   * Takes saveState's value on a freshly constructed backend of the same kind (nothing looked up, nothing
   * open): afterwards every inode and handle number the state named works as before. A by-reference
   * backend whose file vanished or was replaced meanwhile answers ESTALE for that inode and its handles,
   * never another file's data. StateError (src/vfs/state.ts) when the value is not such a state.
   */
  restoreState?(state: Saved): Promise<void>;
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
