// OverlayFs: a writable view of a read-only `lower` FileSystem (an ImageFs in practice) through a writable
// `upper` one (MemFs, OpfsFs, HostDirFs), with Linux overlayfs's semantics and its conventions stored in the
// upper layer (overlay-layer.ts), so that an upper that outlives the page keeps the guest's changes.
//
// A name in the upper directory wins over the lower one; a whiteout hides it; an opaque upper directory
// hides the whole lower directory; otherwise an upper and a lower directory of one name merge. Any change
// copies the object up first (its parents first, with their metadata): the data streamed in chunks, holes
// kept where the lower says SEEK_HOLE, then xattrs, owner, mode and times, so that the guest sees the same
// attributes before and after; the parent's times are put back too. A regular file is copied into an
// unnamed O_TMPFILE and linked under its name only when complete, so a failed copy leaves nothing behind.
// Renaming a lower directory copies up its whole subtree (regular files whole) and marks it opaque.
//
// Inode numbers are the overlay's own: one per object, through copy-up (a table from upper and lower inode
// numbers to the overlay's, kept for the whole mount so that a name forgotten and looked up again, or seen
// by readdir, gets the same number). Two names of one lower inode are one overlay inode; once either is
// copied up, the other reads and writes the copy, becomes a link to it when its own name is copied up, and
// nlink counts the names of both layers. A handle opened on the lower file before a copy-up switches to
// the copy on its next use, as Linux's does. Across a new mount over the same layers the two names of a
// partly copied-up lower hard link are two inodes (as in Linux without index=on).
//
// The overlay holds one reference in a layer for each layer inode it uses (overlay-layer.ts's Layer). A
// file's are released when the guest forgets the overlay inode and no handle is open on it, except the
// upper reference of a copy of a lower file, whose other lower names reach it through that number alone;
// a directory keeps its own, which copy-ups of what lies below it go through.
//
// Changing the layers behind a mounted overlay is undefined, as in Linux.

import { EBADF, EEXIST, ENODATA, ENOENT, ENOTDIR, ENXIO, EPERM } from "../../vfs/errno.ts";
import { O_ACCMODE, O_EXCL, O_RDONLY, O_RDWR, O_TRUNC, RENAME_EXCHANGE, S_IALLUGO, S_IFCHR, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, SEEK_DATA, SEEK_HOLE } from "../../vfs/linux.ts";
import type { Awaitable } from "../../vfs/awaitable.ts";
import { FsError, type Cred, type DirEntry, type FileAttr, type FileSystem, type FsCapabilities, type Handle, type Ino, type SetAttr, type StatFs } from "../../vfs/filesystem.ts";
import type { Saved } from "../../vfs/state.ts";
import { checkFallocate, checkName, checkOpenType, checkReadOnlyAccess, checkReadOnlyOpen, checkRenameFlags, checkRmdir, checkSetAttr, checkSetAttrType, checkSymlinkTarget, checkUnlink, checkWritable, checkXattrName, copyLength, mknodAttr, openMode, renamePlan, type NameEntry, type OpenMode } from "../posix.ts";
import { DirStream, HandleTable, InodeTable, type DirListing } from "../tables.ts";
import { isWhiteout, Layer, OPAQUE_XATTR, OVERLAY_XATTR_PREFIX, ROOT_XATTR } from "./overlay-layer.ts";
import { restoreOverlay, saveOverlay } from "./overlay-state.ts";

/** Bytes a copy moves at a time. */
const CHUNK = 1 << 20;

/** A name in the merged view. */
export interface OName {
  parent: OInode;
  name: string;
}

/** One object of the merged view. */
export interface OInode {
  readonly ino: Ino;
  readonly type: number;
  upper: Ino | undefined;
  /** For a directory: only while it merges with the lower one (not opaque). */
  lower: Ino | undefined;
  /**
   * Its names in the merged view as far as the overlay has seen them, the latest last (a directory has at
   * most one): a copy-up recreates the latest, and its parents, in the upper layer.
   */
  names: OName[];
  /** The lower inode's link count, and how many of its names are gone from the lower view (copied up or whited out). */
  lowerLinks: number;
  lowerGone: number;
  /** Open handles, which keep the layer references. */
  opens: number;
  copying: Promise<Ino> | undefined;
}

export type OHandle =
  | { kind: "file"; o: OInode; layer: "upper" | "lower"; fh: Handle; how: OpenMode; flags: number; switching: Promise<void> | undefined }
  | { kind: "dir"; o: OInode; stream: DirStream };

type FileHandle = Extract<OHandle, { kind: "file" }>;

/** A name of the merged view: the object and what each layer holds under the name. */
interface Found {
  o: OInode;
  upper: FileAttr | undefined;
  lower: FileAttr | undefined;
}

export class OverlayFs implements FileSystem {
  readonly rootIno: Ino = 1;
  readonly capabilities: FsCapabilities;
  readonly flush?: (fh: Handle) => Promise<void>;
  readonly readInto?: (fh: Handle, offset: number, into: Uint8Array) => Promise<number>;
  private readonly up: Layer;
  private readonly low: Layer;
  private readonly root: OInode;
  // Not readonly: restoreState swaps in what it built.
  private nextIno: Ino = 2;
  private nodes = new Map<Ino, OInode>();
  private byUpper = new Map<Ino, OInode>();
  private byLower = new Map<Ino, OInode>();
  private live: InodeTable<OInode>;
  private handles = new HandleTable<OHandle>();

  /** Use `mount`, which also gives a fresh upper root the lower root's attributes. */
  private constructor(
    readonly lower: FileSystem,
    readonly upper: FileSystem,
  ) {
    this.up = new Layer(upper);
    this.low = new Layer(lower);
    this.capabilities = { readOnly: upper.capabilities.readOnly };
    this.root = { ino: this.rootIno, type: S_IFDIR, upper: upper.rootIno, lower: lower.rootIno, names: [], lowerLinks: 2, lowerGone: 0, opens: 0, copying: undefined };
    this.nodes.set(this.rootIno, this.root);
    this.remember(this.root);
    this.live = new InodeTable(this.rootIno, this.root);
    // Straight into the caller's buffer only where both layers can; otherwise callers fall back to read.
    const lowerInto = lower.readInto?.bind(lower);
    const upperInto = upper.readInto?.bind(upper);
    if (lowerInto !== undefined && upperInto !== undefined) {
      this.readInto = async (fh, offset, into) => {
        const h = await this.file(fh);
        return (h.layer === "upper" ? upperInto : lowerInto)(h.fh, offset, into);
      };
    }
    // Only an upper that buffers writes has a flush to pass on; without one the guest sends none.
    const upperFlush = upper.flush?.bind(upper);
    if (upperFlush !== undefined) {
      this.flush = async (fh) => {
        const h = await this.file(fh);
        if (h.layer === "upper") await upperFlush(h.fh);
      };
    }
  }

  static async mount(lower: FileSystem, upper: FileSystem): Promise<OverlayFs> {
    const fs = new OverlayFs(lower, upper);
    if (!upper.capabilities.readOnly && !(await fs.up.flag(upper.rootIno, ROOT_XATTR))) {
      const a = await lower.getattr(lower.rootIno);
      await fs.copyXattrs(lower.rootIno, upper.rootIno);
      await upper.setattr(upper.rootIno, { mode: a.mode & S_IALLUGO, uid: a.uid, gid: a.gid, atime: a.atime, mtime: a.mtime });
      await fs.up.setFlag(upper.rootIno, ROOT_XATTR);
    }
    return fs;
  }

  async lookup(parent: Ino, name: string): Promise<FileAttr> {
    checkName(name);
    const found = await this.resolve(this.dirO(parent), name);
    if (found === undefined) throw new FsError(ENOENT, name);
    return this.ref(found.o);
  }

  async forget(ino: Ino, nlookup: number): Promise<void> {
    const o = this.live.peek(ino);
    this.live.forget(ino, nlookup);
    if (o !== undefined) await this.dropIfUnused(o);
  }

  async getattr(ino: Ino): Promise<FileAttr> {
    return this.attrOf(this.live.get(ino));
  }

  async readlink(ino: Ino): Promise<string> {
    const o = this.live.get(ino);
    return o.upper !== undefined ? this.upper.readlink(o.upper) : this.lower.readlink(o.lower!);
  }

  async access(ino: Ino, mask: number): Promise<void> {
    this.live.get(ino);
    if (this.capabilities.readOnly) checkReadOnlyAccess(mask);
  }

  /** The upper layer's space: where anything written goes. */
  async statfs(ino: Ino): Promise<StatFs> {
    this.live.get(ino);
    return this.upper.statfs(this.upper.rootIno);
  }

  async open(ino: Ino, flags: number): Promise<Handle> {
    const o = this.live.get(ino);
    checkOpenType(o.type, ino);
    if (this.capabilities.readOnly) checkReadOnlyOpen(flags);
    const how = openMode(flags);
    if (how.write || (flags & O_TRUNC) !== 0) await this.copyUp(o, (flags & O_TRUNC) !== 0 ? 0 : undefined);
    return this.openOn(o, flags, how);
  }

  async read(fh: Handle, offset: number, length: number): Promise<Uint8Array> {
    const h = await this.file(fh);
    return this.layerOf(h).read(h.fh, offset, length);
  }

  async release(fh: Handle): Promise<void> {
    const h = this.handles.getKind(fh, "file");
    this.handles.take(fh);
    await h.switching?.catch(() => {});
    await this.layerOf(h).release(h.fh);
    h.o.opens--;
    await this.dropIfUnused(h.o);
  }

  async opendir(ino: Ino): Promise<Handle> {
    const o = this.dirO(ino);
    o.opens++;
    return this.handles.add({ kind: "dir", o, stream: new DirStream(() => this.list(o)) });
  }

  async readdir(dh: Handle, cookie: number, maxEntries?: number): Promise<DirEntry[]> {
    return this.handles.getKind(dh, "dir").stream.read(cookie, maxEntries);
  }

  async releasedir(dh: Handle): Promise<void> {
    const { o } = this.handles.getKind(dh, "dir");
    this.handles.take(dh);
    o.opens--;
    await this.dropIfUnused(o);
  }

  async setattr(ino: Ino, a: SetAttr, fh?: Handle): Promise<FileAttr> {
    checkWritable(this.capabilities);
    checkSetAttr(a);
    const o = this.live.get(ino);
    if (fh !== undefined && this.handles.getKind(fh, "file").o !== o) throw new FsError(EBADF, `handle ${fh} is not open on inode ${ino}`);
    checkSetAttrType(o.type, a, ino);
    const upperIno = await this.copyUp(o, a.size);
    const h = fh === undefined ? undefined : await this.file(fh);
    await this.upper.setattr(upperIno, a, h?.layer === "upper" ? h.fh : undefined);
    return this.attrOf(o);
  }

  async mknod(parent: Ino, name: string, mode: number, rdev: number, cred: Cred): Promise<FileAttr> {
    checkWritable(this.capabilities);
    const made = mknodAttr(mode, rdev);
    // A 0:0 character device would read back as a whiteout: the name would vanish (Linux: EPERM too).
    if ((made.mode & S_IFMT) === S_IFCHR && made.rdev === 0) throw new FsError(EPERM, "mknod of a whiteout");
    checkName(name);
    const p = this.dirO(parent);
    const { pu } = await this.freeName(p, name);
    return this.made(p, name, await this.upper.mknod(pu, name, made.mode, made.rdev, cred));
  }

  async mkdir(parent: Ino, name: string, mode: number, cred: Cred): Promise<FileAttr> {
    checkWritable(this.capabilities);
    checkName(name);
    const p = this.dirO(parent);
    const { pu, whiteout } = await this.freeName(p, name);
    const attr = await this.upper.mkdir(pu, name, mode, cred);
    // Over a whiteout the lower name was there: the new directory must not show what the lower held.
    if (whiteout) await this.up.setFlag(attr.ino, OPAQUE_XATTR);
    return this.made(p, name, attr);
  }

  async symlink(parent: Ino, name: string, target: string, cred: Cred): Promise<FileAttr> {
    checkWritable(this.capabilities);
    checkSymlinkTarget(target);
    checkName(name);
    const p = this.dirO(parent);
    const { pu } = await this.freeName(p, name);
    return this.made(p, name, await this.upper.symlink(pu, name, target, cred));
  }

  async link(ino: Ino, newParent: Ino, newName: string): Promise<FileAttr> {
    checkWritable(this.capabilities);
    const o = this.live.get(ino);
    if (o.type === S_IFDIR) throw new FsError(EPERM, `link of directory inode ${ino}`);
    checkName(newName);
    const p = this.dirO(newParent);
    const { pu } = await this.freeName(p, newName);
    const upperIno = await this.copyUp(o);
    await this.up.took(await this.upper.link(upperIno, pu, newName));
    named(o, p, newName);
    return this.ref(o);
  }

  async unlink(parent: Ino, name: string): Promise<void> {
    checkWritable(this.capabilities);
    const p = this.dirO(parent);
    checkName(name);
    const found = await this.resolve(p, name);
    if (found === undefined) throw new FsError(ENOENT, name);
    checkUnlink({ type: found.o.type }, name);
    await this.removeName(p, name, found);
  }

  async rmdir(parent: Ino, name: string): Promise<void> {
    checkWritable(this.capabilities);
    const p = this.dirO(parent);
    checkName(name);
    const found = await this.resolve(p, name);
    if (found === undefined) throw new FsError(ENOENT, name);
    checkRmdir(await this.nameEntry(found.o), name);
    // Empty in the merged view, the upper directory may still hold whiteouts, which go first.
    if (found.upper !== undefined) await this.clearWhiteouts(found.upper.ino);
    await this.removeName(p, name, found);
  }

  async rename(parent: Ino, name: string, newParent: Ino, newName: string, flags: number): Promise<void> {
    checkWritable(this.capabilities);
    checkRenameFlags(flags);
    const from = this.dirO(parent);
    checkName(name);
    const src = await this.resolve(from, name);
    if (src === undefined) throw new FsError(ENOENT, name);
    checkName(newName);
    const to = this.dirO(newParent);
    const dst = await this.resolve(to, newName);
    const plan = renamePlan({
      flags,
      from,
      to,
      src: { ...(await this.nameEntry(src.o)), at: src.o },
      dst: dst && { ...(await this.nameEntry(dst.o)), at: dst.o },
      same: dst?.o === src.o,
      within,
    });
    if (plan === "none") return;
    // Both names into the upper layer, where the rename happens: a lower directory with all it holds,
    // which cannot follow it otherwise.
    await this.bringUp(from, name, src);
    if (dst !== undefined && plan === "exchange") await this.bringUp(to, newName, dst);
    const fromUpper = await this.upperDir(from);
    const toUpper = await this.upperDir(to);
    const srcInLower = from.lower !== undefined && (await this.low.has(from.lower, name));
    const dstInLower = to.lower !== undefined && (await this.low.has(to.lower, newName));
    if (dst === undefined) await this.removeWhiteout(toUpper, newName);
    else if (plan === "replace" && dst.upper !== undefined && dst.o.type === S_IFDIR) await this.clearWhiteouts(dst.upper.ino);
    // A directory arriving where the lower layer has the name must not merge with what is there.
    if (src.o.type === S_IFDIR && dstInLower) await this.makeOpaque(src.o);
    if (plan === "exchange" && dst!.o.type === S_IFDIR && srcInLower) await this.makeOpaque(dst!.o);
    if (plan === "replace" && dst!.upper === undefined && dst!.o.type !== S_IFDIR) dst!.o.lowerGone++;
    await this.upper.rename(fromUpper, name, toUpper, newName, plan === "exchange" ? RENAME_EXCHANGE : 0);
    if (plan !== "exchange" && srcInLower) await this.whiteout(fromUpper, name);
    unnamed(src.o, from, name);
    if (dst !== undefined) unnamed(dst.o, to, newName);
    named(src.o, to, newName);
    if (plan === "exchange") named(dst!.o, from, name);
  }

  async create(parent: Ino, name: string, mode: number, flags: number, cred: Cred): Promise<{ attr: FileAttr; fh: Handle }> {
    checkWritable(this.capabilities);
    const how = openMode(flags);
    checkName(name);
    const p = this.dirO(parent);
    const existing = await this.resolve(p, name);
    if (existing !== undefined) {
      const fh = await this.createExisting(existing.o, flags, how);
      return { attr: await this.ref(existing.o), fh };
    }
    const { pu } = await this.freeName(p, name);
    const made = await this.upper.create(pu, name, mode, flags, cred);
    const attr = await this.made(p, name, made.attr);
    const o = this.live.get(attr.ino);
    o.opens++;
    return { attr, fh: this.handles.add({ kind: "file", o, layer: "upper", fh: made.fh, how, flags, switching: undefined }) };
  }

  async tmpfile(parent: Ino, mode: number, flags: number, cred: Cred): Promise<{ attr: FileAttr; fh: Handle }> {
    checkWritable(this.capabilities);
    const how = openMode(flags);
    const pu = await this.upperDir(this.dirO(parent));
    const made = await this.upper.tmpfile(pu, mode, flags, cred);
    await this.up.took(made.attr);
    const o = this.identify(made.attr.ino, undefined, S_IFREG);
    o.opens++;
    const fh = this.handles.add({ kind: "file", o, layer: "upper", fh: made.fh, how, flags, switching: undefined });
    return { attr: await this.ref(o), fh };
  }

  async write(fh: Handle, offset: number, data: Uint8Array): Promise<number> {
    checkWritable(this.capabilities);
    const h = await this.file(fh);
    if (h.layer === "lower") throw new FsError(EBADF, `handle ${fh} is not open for writing`);
    return this.upper.write(h.fh, offset, data);
  }

  async fsync(fh: Handle, datasync: boolean): Promise<void> {
    const h = await this.file(fh);
    await this.layerOf(h).fsync(h.fh, datasync);
  }

  /** Directory changes are the upper layer's own operations, durable as it makes them. */
  async fsyncdir(dh: Handle): Promise<void> {
    this.handles.getKind(dh, "dir");
  }

  async syncfs(): Promise<void> {
    await this.upper.syncfs();
  }

  async fallocate(fh: Handle, mode: number, offset: number, length: number): Promise<void> {
    checkWritable(this.capabilities);
    const h = await this.file(fh);
    if (h.layer === "upper") return this.upper.fallocate(h.fh, mode, offset, length);
    checkFallocate(mode, offset, length);
    throw new FsError(EBADF, `handle ${fh} is not open for writing`);
  }

  async lseek(fh: Handle, offset: number, whence: number): Promise<number> {
    const h = await this.file(fh);
    return this.layerOf(h).lseek(h.fh, offset, whence);
  }

  async copyFileRange(fhIn: Handle, offIn: number, fhOut: Handle, offOut: number, length: number): Promise<number> {
    checkWritable(this.capabilities);
    const src = await this.file(fhIn);
    const dst = await this.file(fhOut);
    if (src.layer === "upper" && dst.layer === "upper") return this.upper.copyFileRange(src.fh, offIn, dst.fh, offOut, length);
    // From a lower file (or to a read-only handle, which copyLength refuses): through a buffer.
    const size = (await this.attrOf(src.o)).size;
    const n = copyLength({ how: src.how, size, offset: offIn }, { how: dst.how, offset: offOut }, length, false);
    for (let done = 0; done < n; ) {
      const data = await this.layerOf(src).read(src.fh, offIn + done, Math.min(CHUNK, n - done));
      if (data.length === 0) break;
      await this.upper.write(dst.fh, offOut + done, data);
      done += data.length;
    }
    return n;
  }

  async getxattr(ino: Ino, name: string): Promise<Uint8Array> {
    const o = this.live.get(ino);
    checkXattrName(name);
    if (name.startsWith(OVERLAY_XATTR_PREFIX)) throw new FsError(ENODATA, name);
    return o.upper !== undefined ? this.upper.getxattr(o.upper, name) : this.lower.getxattr(o.lower!, name);
  }

  async setxattr(ino: Ino, name: string, value: Uint8Array, flags: number): Promise<void> {
    checkWritable(this.capabilities);
    const o = this.live.get(ino);
    checkOwnXattr(name);
    await this.upper.setxattr(await this.copyUp(o), name, value, flags);
  }

  async listxattr(ino: Ino): Promise<string[]> {
    const o = this.live.get(ino);
    const names = o.upper !== undefined ? await this.upper.listxattr(o.upper) : await this.lower.listxattr(o.lower!);
    return names.filter((n) => !n.startsWith(OVERLAY_XATTR_PREFIX));
  }

  async removexattr(ino: Ino, name: string): Promise<void> {
    checkWritable(this.capabilities);
    const o = this.live.get(ino);
    checkOwnXattr(name);
    await this.upper.removexattr(await this.copyUp(o), name);
  }

  async saveState(): Promise<Saved> {
    return saveOverlay({ rootIno: this.rootIno, upper: this.upper, lower: this.lower, nextIno: this.nextIno, nodes: this.nodes, live: this.live, handles: this.handles, up: this.up, low: this.low });
  }

  async restoreState(state: Saved): Promise<void> {
    if (this.nodes.size !== 1 || this.live.values().length !== 1 || this.handles.values().length !== 0) throw new Error("overlay: restoreState needs a freshly mounted overlay");
    const restored = await restoreOverlay(state, { upper: this.upper, lower: this.lower, root: this.root, up: this.up, low: this.low, list: (o) => this.list(o) });
    this.nextIno = restored.nextIno;
    this.nodes = restored.nodes;
    this.live = restored.live;
    this.handles = restored.handles;
    this.byUpper = new Map();
    this.byLower = new Map();
    for (const o of this.nodes.values()) this.remember(o);
  }

  // Names and inodes --------------------------------------------------------------------------------

  /** `name` in the merged directory `p`, its layer inodes held; undefined if absent or whited out. */
  private async resolve(p: OInode, name: string): Promise<Found | undefined> {
    let upper = p.upper === undefined ? undefined : await this.up.lookup(p.upper, name);
    if (upper !== undefined && isWhiteout(upper)) {
      await this.up.release(upper.ino);
      return undefined;
    }
    let lower: FileAttr | undefined;
    const merges = upper === undefined || ((upper.mode & S_IFMT) === S_IFDIR && !(await this.up.flag(upper.ino, OPAQUE_XATTR)));
    if (p.lower !== undefined && merges) {
      lower = await this.low.lookup(p.lower, name);
      if (upper !== undefined && lower !== undefined && (lower.mode & S_IFMT) !== S_IFDIR) lower = undefined;
    }
    const attr = upper ?? lower;
    if (attr === undefined) return undefined;
    const o = this.identify(upper?.ino, lower?.ino, attr.mode & S_IFMT);
    named(o, p, name);
    if (lower !== undefined) o.lowerLinks = lower.nlink;
    return { o, upper, lower };
  }

  /** The overlay inode of these layer inodes, made on first sight. */
  private identify(upper: Ino | undefined, lower: Ino | undefined, type: number): OInode {
    let o = upper === undefined ? undefined : this.byUpper.get(upper);
    if (o === undefined && lower !== undefined) {
      const known = this.byLower.get(lower);
      if (known !== undefined && (upper === undefined || known.upper === undefined)) o = known;
    }
    if (o === undefined) {
      o = { ino: this.nextIno++, type, upper: undefined, lower: undefined, names: [], lowerLinks: 1, lowerGone: 0, opens: 0, copying: undefined };
      this.nodes.set(o.ino, o);
    }
    if (upper !== undefined && o.upper === undefined) o.upper = upper;
    if (lower !== undefined && o.lower === undefined) o.lower = lower;
    this.remember(o);
    return o;
  }

  private remember(o: OInode): void {
    if (o.upper !== undefined) this.byUpper.set(o.upper, o);
    if (o.lower !== undefined) this.byLower.set(o.lower, o);
  }

  /** One more guest reference to `o`, and its attributes. */
  private async ref(o: OInode): Promise<FileAttr> {
    const attr = await this.attrOf(o);
    this.live.ref(o.ino, o);
    return attr;
  }

  /** The guest's reference to what a layer call just made in the upper directory of `p`. */
  private async made(p: OInode, name: string, attr: FileAttr): Promise<FileAttr> {
    await this.up.took(attr);
    const o = this.identify(attr.ino, undefined, attr.mode & S_IFMT);
    named(o, p, name);
    return this.ref(o);
  }

  /** With no guest reference and no handle left, the layer references of a non-directory go (see the file comment). */
  private async dropIfUnused(o: OInode): Promise<void> {
    if (o.type === S_IFDIR || o.opens > 0 || this.live.peek(o.ino) !== undefined) return;
    if (o.lower !== undefined) await this.low.release(o.lower);
    else if (o.upper !== undefined) await this.up.release(o.upper);
  }

  private dirO(ino: Ino): OInode {
    const o = this.live.get(ino);
    if (o.type !== S_IFDIR) throw new FsError(ENOTDIR, `inode ${ino} is not a directory`);
    return o;
  }

  private async attrOf(o: OInode): Promise<FileAttr> {
    const a = o.upper !== undefined ? await this.upper.getattr(o.upper) : await this.lower.getattr(o.lower!);
    let nlink = a.nlink;
    if (o.type === S_IFDIR) {
      if (o.upper !== undefined && o.lower !== undefined && nlink > 0) nlink = 2 + (await this.list(o)).slice(2).filter((e) => e.type === S_IFDIR).length;
    } else if (o.lower !== undefined) {
      nlink = (o.upper !== undefined ? a.nlink + o.lowerLinks : a.nlink) - o.lowerGone;
    }
    return { ...a, ino: o.ino, nlink };
  }

  /** The merged listing of directory `o`: upper names but whiteouts, then lower names the upper does not hide. */
  private async list(o: OInode): Promise<DirListing> {
    const out: DirListing = [
      { name: ".", ino: o.ino, type: S_IFDIR },
      { name: "..", ino: (o.names.at(-1)?.parent ?? o).ino, type: S_IFDIR }, // a removed directory's is itself
    ];
    const lower = new Map<string, DirEntry>();
    if (o.lower !== undefined) for (const e of await this.low.list(o.lower)) if (e.name !== "." && e.name !== "..") lower.set(e.name, e);
    const taken = new Set<string>();
    if (o.upper !== undefined) {
      for (const e of await this.up.list(o.upper)) {
        if (e.name === "." || e.name === "..") continue;
        taken.add(e.name);
        const below = lower.get(e.name);
        // Whiteouts and merging directories need their attributes (rdev, the opaque flag): resolve them.
        if (e.type === S_IFCHR || (e.type === S_IFDIR && below?.type === S_IFDIR)) {
          const found = await this.resolve(o, e.name);
          if (found !== undefined) out.push({ name: e.name, ino: found.o.ino, type: found.o.type });
          continue;
        }
        out.push({ name: e.name, ino: this.identify(e.ino, undefined, e.type).ino, type: e.type });
      }
    }
    for (const [name, e] of lower) if (!taken.has(name)) out.push({ name, ino: this.identify(undefined, e.ino, e.type).ino, type: e.type });
    return out;
  }

  private async nameEntry(o: OInode): Promise<NameEntry> {
    if (o.type !== S_IFDIR) return { type: o.type };
    return { type: S_IFDIR, hasEntries: (await this.list(o)).length > 2 };
  }

  // Handles -----------------------------------------------------------------------------------------

  private async openOn(o: OInode, flags: number, how: OpenMode): Promise<Handle> {
    const layer = o.upper !== undefined ? "upper" : "lower";
    const fh = o.upper !== undefined ? await this.upper.open(o.upper, flags) : await this.lower.open(o.lower!, flags);
    o.opens++;
    return this.handles.add({ kind: "file", o, layer, fh, how, flags, switching: undefined });
  }

  private async createExisting(o: OInode, flags: number, how: OpenMode): Promise<Handle> {
    if ((flags & O_EXCL) !== 0) throw new FsError(EEXIST, "file exists");
    checkOpenType(o.type, o.ino);
    if (how.write || (flags & O_TRUNC) !== 0) await this.copyUp(o, (flags & O_TRUNC) !== 0 ? 0 : undefined);
    return this.openOn(o, flags, how);
  }

  /** A file handle, moved onto the upper copy if its file was copied up since it was opened. */
  private async file(fh: Handle): Promise<FileHandle> {
    const h = this.handles.getKind(fh, "file");
    if (h.layer === "lower" && h.o.upper !== undefined) {
      h.switching ??= (async () => {
        const upperFh = await this.upper.open(h.o.upper!, (h.flags & ~(O_ACCMODE | O_TRUNC)) | O_RDONLY);
        const lowerFh = h.fh;
        [h.layer, h.fh] = ["upper", upperFh];
        await this.lower.release(lowerFh);
      })();
      await h.switching;
    }
    return h;
  }

  private layerOf(h: FileHandle): FileSystem {
    return h.layer === "upper" ? this.upper : this.lower;
  }

  // Copy-up -----------------------------------------------------------------------------------------

  /** The upper directory of `o`, copied up (with its parents) if it has none yet. */
  private upperDir(o: OInode): Promise<Ino> {
    return this.copyUp(o);
  }

  /**
   * The upper object of `o`: copied up at its latest name, parents first, if it has none.
   * `keep`: a regular file is about to be truncated to this size (O_TRUNC, setattr), so no more of its
   * data is copied (as Linux does for O_TRUNC).
   */
  private copyUp(o: OInode, keep = Number.MAX_SAFE_INTEGER): Promise<Ino> {
    if (o.upper !== undefined) return Promise.resolve(o.upper);
    o.copying ??= this.copyUpNow(o, keep).finally(() => (o.copying = undefined));
    return o.copying;
  }

  private async copyUpNow(o: OInode, keep: number): Promise<Ino> {
    const at = o.names.at(-1);
    if (at === undefined) throw new FsError(ENOENT, `inode ${o.ino} has no name left to copy up at`);
    const { parent: p, name } = at;
    const lowerIno = o.lower!;
    const pu = await this.upperDir(p);
    const a = await this.lower.getattr(lowerIno);
    const owner: Cred = { uid: a.uid, gid: a.gid };
    const made = await this.keepingTimes(pu, async () => {
      if (o.type === S_IFDIR) return this.upper.mkdir(pu, name, a.mode & S_IALLUGO, owner);
      if (o.type === S_IFLNK) return this.upper.symlink(pu, name, await this.lower.readlink(lowerIno), owner);
      if (o.type === S_IFREG) return this.copyFile(lowerIno, a, Math.min(keep, a.size), pu, name);
      return this.upper.mknod(pu, name, a.mode, a.rdev, owner);
    });
    await this.up.took(made);
    await this.copyXattrs(lowerIno, made.ino);
    await this.upper.setattr(made.ino, { ...(o.type === S_IFLNK ? {} : { mode: a.mode & S_IALLUGO }), uid: a.uid, gid: a.gid, atime: a.atime, mtime: a.mtime, ctime: a.ctime });
    o.upper = made.ino;
    this.remember(o);
    if (o.type !== S_IFDIR) o.lowerGone++;
    return made.ino;
  }

  /** The first `size` bytes of a lower regular file into an unnamed upper file, linked as `name` once complete. */
  private async copyFile(lowerIno: Ino, a: FileAttr, size: number, pu: Ino, name: string): Promise<FileAttr> {
    const tmp = await this.upper.tmpfile(pu, a.mode & S_IALLUGO, O_RDWR, { uid: a.uid, gid: a.gid });
    try {
      if (size > 0) {
        await this.upper.setattr(tmp.attr.ino, { size }, tmp.fh);
        const src = await this.lower.open(lowerIno, O_RDONLY);
        try {
          for (let at = 0; at < size; ) {
            let start: number | undefined;
            try {
              start = await this.lower.lseek(src, at, SEEK_DATA);
            } catch (e) {
              start = noMoreData(e);
            }
            if (start === undefined) break;
            const end = Math.min(size, await this.lower.lseek(src, start, SEEK_HOLE));
            for (let off = start; off < end; off += CHUNK) await this.upper.write(tmp.fh, off, await this.lower.read(src, off, Math.min(CHUNK, end - off)));
            at = end;
          }
        } finally {
          await this.lower.release(src);
        }
      }
      return await this.upper.link(tmp.attr.ino, pu, name);
    } finally {
      await this.upper.release(tmp.fh);
      await this.upper.forget(tmp.attr.ino, 1);
    }
  }

  /** Puts `name` of `p` into the upper layer: a lower directory with its whole subtree, marked opaque. */
  private async bringUp(p: OInode, name: string, found: Found): Promise<void> {
    if (found.o.type !== S_IFDIR) return this.nameUp(p, name, found);
    const o = found.o;
    const dir = await this.copyUp(o);
    if (o.lower === undefined) return;
    await this.keepingTimes(dir, async () => {
      for (const e of (await this.list(o)).slice(2)) {
        const child = await this.resolve(o, e.name);
        if (child !== undefined) await this.bringUp(o, e.name, child);
      }
    });
    await this.makeOpaque(o);
  }

  /** Puts the name of a non-directory into the upper layer: a link to its copy if another name made one. */
  private async nameUp(p: OInode, name: string, found: Found): Promise<void> {
    if (found.upper !== undefined) return;
    const o = found.o;
    if (o.upper === undefined) {
      await this.copyUp(o);
      return;
    }
    const pu = await this.upperDir(p);
    await this.up.took(await this.keepingTimes(pu, () => this.upper.link(o.upper!, pu, name)));
    o.lowerGone++;
  }

  /** The lower object's xattrs but any of the overlay's own (an image may carry them), which would mean something in the upper layer. */
  private async copyXattrs(from: Ino, to: Ino): Promise<void> {
    for (const name of await this.lower.listxattr(from)) {
      if (!name.startsWith(OVERLAY_XATTR_PREFIX)) await this.upper.setxattr(to, name, await this.lower.getxattr(from, name), 0);
    }
  }

  /** Runs `change` on the entries of upper directory `dir`, then puts its times back: a copy-up is no change to the guest. */
  private async keepingTimes<T>(dir: Ino, change: () => Awaitable<T>): Promise<T> {
    const { atime, mtime, ctime } = await this.upper.getattr(dir);
    const result = await change();
    await this.upper.setattr(dir, { atime, mtime, ctime });
    return result;
  }

  // Whiteouts and opaque directories -----------------------------------------------------------------

  /** The upper directory of `p` with `name` free: EEXIST if the merged view has it; a whiteout there goes. */
  private async freeName(p: OInode, name: string): Promise<{ pu: Ino; whiteout: boolean }> {
    if ((await this.resolve(p, name)) !== undefined) throw new FsError(EEXIST, name);
    const pu = await this.upperDir(p);
    return { pu, whiteout: await this.removeWhiteout(pu, name) };
  }

  private async removeWhiteout(dir: Ino, name: string): Promise<boolean> {
    const there = await this.up.lookup(dir, name);
    if (there === undefined) return false;
    await this.up.release(there.ino);
    if (!isWhiteout(there)) return false;
    await this.upper.unlink(dir, name);
    return true;
  }

  private async whiteout(dir: Ino, name: string): Promise<void> {
    const attr = await this.upper.mknod(dir, name, S_IFCHR, 0, { uid: 0, gid: 0 });
    await this.upper.forget(attr.ino, 1);
  }

  /** Removes `name` of `p` from the merged view: the upper entry, and the lower one by a whiteout. */
  private async removeName(p: OInode, name: string, found: Found): Promise<void> {
    unnamed(found.o, p, name);
    const pu = p.upper;
    if (found.upper !== undefined) {
      if (found.o.type === S_IFDIR) await this.upper.rmdir(pu!, name);
      else await this.upper.unlink(pu!, name);
    } else if (found.o.type !== S_IFDIR) found.o.lowerGone++;
    if (p.lower !== undefined && (found.lower !== undefined || (await this.low.has(p.lower, name)))) await this.whiteout(await this.upperDir(p), name);
  }

  /** Removes the whiteouts of upper directory `dir`, which is empty in the merged view. */
  private async clearWhiteouts(dir: Ino): Promise<void> {
    for (const e of await this.up.list(dir)) if (e.type === S_IFCHR) await this.upper.unlink(dir, e.name);
  }

  private async makeOpaque(o: OInode): Promise<void> {
    await this.keepingTimes(o.upper!, () => this.up.setFlag(o.upper!, OPAQUE_XATTR));
    o.lower = undefined;
  }
}

/** `o` has the name `name` in `parent`, the latest it was reached by. */
function named(o: OInode, parent: OInode, name: string): void {
  o.names = o.type === S_IFDIR ? [] : o.names.filter((n) => n.parent !== parent || n.name !== name);
  o.names.push({ parent, name });
}

function unnamed(o: OInode, parent: OInode, name: string): void {
  o.names = o.names.filter((n) => n.parent !== parent || n.name !== name);
}

/** The overlay's own xattrs are not the guest's to change. */
function checkOwnXattr(name: string): void {
  checkXattrName(name);
  if (name.startsWith(OVERLAY_XATTR_PREFIX)) throw new FsError(EPERM, `${name} is the overlay's`);
}

/** Whether directory `dir` is `ancestor` or lies below it. */
function within(dir: OInode, ancestor: OInode): boolean {
  for (let at: OInode | undefined = dir; at !== undefined; at = at.names.at(-1)?.parent) if (at === ancestor) return true;
  return false;
}

/** SEEK_DATA's ENXIO: only a hole is left. */
function noMoreData(e: unknown): undefined {
  if (e instanceof FsError && e.errno === ENXIO) return undefined;
  throw e;
}
