// The two layers of an OverlayFs as it uses them, and the conventions it stores in the upper one (Linux
// overlayfs's, kept through the upper FileSystem's own API so that an OPFS or host-directory upper keeps
// them across reloads):
//   whiteout   a character device 0:0 in the upper directory hides the lower name
//   opaque     xattr trusted.overlay.opaque = "y" on an upper directory hides the whole lower directory
// and one of this project's: trusted.overlay.root = "y" once the lower root's owner, mode and times have
// been copied onto the upper root (the first mount over an upper layer).

import { EEXIST, ENODATA, ENOENT, EOPNOTSUPP } from "../../vfs/errno.ts";
import { S_IFCHR, S_IFMT, XATTR_CREATE } from "../../vfs/linux.ts";
import { FsError, type DirEntry, type FileAttr, type FileSystem, type Ino } from "../../vfs/filesystem.ts";

/** Every xattr of this prefix is the overlay's own: hidden from the guest, which may not set them. */
export const OVERLAY_XATTR_PREFIX = "trusted.overlay.";
export const OPAQUE_XATTR = "trusted.overlay.opaque";
export const ROOT_XATTR = "trusted.overlay.root";
const YES = new TextEncoder().encode("y");

export function isWhiteout(attr: Pick<FileAttr, "mode" | "rdev">): boolean {
  return (attr.mode & S_IFMT) === S_IFCHR && attr.rdev === 0;
}

/**
 * One layer, and the references the overlay holds in it: exactly one per layer inode it uses, however
 * many lookups gave it, dropped when the overlay's own inode is forgotten.
 */
export class Layer {
  readonly held = new Set<Ino>();

  constructor(readonly fs: FileSystem) {}

  /** Records the reference a layer call just gave (lookup, mkdir, …): the overlay keeps one per inode. */
  async took<T extends { ino: Ino }>(attr: T): Promise<T> {
    if (attr.ino === this.fs.rootIno) return attr;
    if (this.held.has(attr.ino)) await this.fs.forget(attr.ino, 1);
    else this.held.add(attr.ino);
    return attr;
  }

  async release(ino: Ino): Promise<void> {
    if (this.held.delete(ino)) await this.fs.forget(ino, 1);
  }

  /** `name` in `dir`, held; undefined if absent. */
  async lookup(dir: Ino, name: string): Promise<FileAttr | undefined> {
    try {
      return await this.took(await this.fs.lookup(dir, name));
    } catch (e) {
      if (e instanceof FsError && e.errno === ENOENT) return undefined;
      throw e;
    }
  }

  /** Whether `name` is in `dir`, without keeping a reference. */
  async has(dir: Ino, name: string): Promise<boolean> {
    try {
      const attr = await this.fs.lookup(dir, name);
      await this.fs.forget(attr.ino, 1);
      return true;
    } catch (e) {
      if (e instanceof FsError && e.errno === ENOENT) return false;
      throw e;
    }
  }

  /** Every entry of directory `dir`, "." and ".." included. */
  async list(dir: Ino): Promise<DirEntry[]> {
    const dh = await this.fs.opendir(dir);
    try {
      return await this.fs.readdir(dh, 0);
    } finally {
      await this.fs.releasedir(dh);
    }
  }

  async flag(ino: Ino, name: string): Promise<boolean> {
    try {
      const value = await this.fs.getxattr(ino, name);
      return value.length === 1 && value[0] === YES[0];
    } catch (e) {
      if (e instanceof FsError && (e.errno === ENODATA || e.errno === EOPNOTSUPP)) return false;
      throw e;
    }
  }

  async setFlag(ino: Ino, name: string): Promise<void> {
    try {
      await this.fs.setxattr(ino, name, YES, XATTR_CREATE);
    } catch (e) {
      if (!(e instanceof FsError && e.errno === EEXIST)) throw e;
    }
  }
}
