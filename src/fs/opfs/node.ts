// The OPFS backend's inodes: what it knows of each, from the metadata snapshot or from the directory.

import { S_IFDIR, S_IFMT, S_IFREG } from "../../vfs/linux.ts";
import type { Ino, Timespec } from "../../vfs/filesystem.ts";
import type { FileData } from "./data.ts";

/** One inode, known from the metadata or found in the directory. */
export interface Node {
  ino: Ino;
  mode: number;
  uid: number;
  gid: number;
  rdev: number;
  atime: Timespec;
  mtime: Timespec;
  ctime: Timespec;
  xattrs: Map<string, Uint8Array>;
  target?: string;
  /** Non-directories: how many names it has. */
  nlink: number;
  /** The data is in the inode store, and every name of it is a placeholder. */
  stored: boolean;
  /** A directory that was removed, or a file whose data went with its last name. */
  removed: boolean;
  /** An O_TMPFILE file opened without O_EXCL, not linked yet: `link` may give it its first name. */
  linkable: boolean;
  /** Where a directory, or a file whose data is at its name, is. */
  parent: Ino;
  name: string;
  /** Directories: the entries whose inode is known (the directory itself says which exist). */
  children?: Map<string, Ino>;
  /** Directories: how many subdirectories, once listed (for nlink). */
  subdirs?: number;
  /** Found in the directory with no metadata: its times come from the file on first sight. */
  fresh: boolean;
  /** Open file handles on it, and their shared data while any is open. */
  opens: number;
  data?: FileData;
  /** Directories: the handle, valid while no directory has moved since. */
  handle?: { moves: number; dir: FileSystemDirectoryHandle };
}

export const isDir = (n: Node): boolean => (n.mode & S_IFMT) === S_IFDIR;
export const isReg = (n: Node): boolean => (n.mode & S_IFMT) === S_IFREG;

export function fromMs(ms: number): Timespec {
  const sec = Math.floor(ms / 1000);
  return { sec, nsec: Math.round((ms - sec * 1000) * 1_000_000) % 1_000_000_000 };
}
export const now = (): Timespec => fromMs(Date.now());

/** A new inode, not yet in any table: one name, times of now. */
export function newNode(ino: Ino, mode: number, owner: { uid: number; gid: number }, parent: Ino, name: string): Node {
  const t = now();
  const node: Node = {
    ino,
    mode,
    uid: owner.uid,
    gid: owner.gid,
    rdev: 0,
    atime: t,
    mtime: t,
    ctime: t,
    xattrs: new Map(),
    nlink: 1,
    stored: false,
    removed: false,
    linkable: false,
    parent,
    name,
    fresh: false,
    opens: 0,
  };
  if ((mode & S_IFMT) === S_IFDIR) node.children = new Map();
  return node;
}
