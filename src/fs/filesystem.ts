// The inode-level interface between the FUSE server (src/fuse/server.ts) and the storage backends
// (memfs, hostdir, later OPFS), plus the small pieces every backend shares: name checks, the inode and
// handle tables, and the snapshot behind readdir cookies.
//
// Division of labour: the server owns FUSE node ids and the kernel's lookup counts and maps them to
// backend inode numbers (`Ino`); the backend owns the numbers, the objects behind them and the open
// handles. The guest is untrusted: every argument is checked again here, whatever the server checked.
//
// The write side (setattr, mknod, mkdir, unlink, rmdir, rename with NOREPLACE/EXCHANGE, link, symlink,
// create, write, fsync, xattrs, fallocate, lseek, copy_file_range, tmpfile) joins this interface as
// further methods in the same style: inode numbers and handles in, a `FileAttr` out for anything that
// creates a name (counting as one reference, like `lookup`), `FsError(EROFS)` from read-only backends.

import { EBADF, EILSEQ, EINVAL, EISDIR, ELOOP, ENAMETOOLONG, ENXIO, EROFS, ESTALE, errnoName } from "./errno.ts";

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

// open(2) flags as the i386 guest sends them in fuse_open_in.flags.
export const O_ACCMODE = 0o3;
export const O_RDONLY = 0o0;
export const O_TRUNC = 0o1000;

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
}

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
