// The embedded default backend: an in-memory tree held by the npm package memfs, read-write unless
// constructed with `{ readOnly: true }`.
//
// memfs's public API is path based, but a path can change or vanish under an inode the guest still
// holds, and memfs recycles its inode numbers as soon as a node is deleted: neither identifies an inode.
// So the backend works on the objects behind a `Volume`: `vol._core` (public in memfs 4.x's typings
// despite the underscore) is its `Superblock`, whose `Link`s are directory entries (a directory's
// `children` map, its parent through "..") and whose `Node`s are inodes (hard links share one). The
// lockfile pins the memfs version this was checked against. Inode numbers are the backend's own, one per
// `Node` object, never recycled. Changes go through the same `Link` methods memfs's own calls use, so the
// `Volume` stays a faithful view of the tree (the boot tests read the guest's writes through it).
//
// File contents live in sparse chunks (sparse.ts), so that a byte written at 4 GiB does not allocate 4 GiB.
//
// What memfs nodes cannot hold lives in a per-node side table: extended attributes, the open count that
// keeps an unlinked file's node alive, the O_TMPFILE "may still be linked" mark, and the exact nanoseconds
// of times the guest set (memfs keeps Dates, which have milliseconds).
//
// Snapshots (saveState/restoreState, in state.ts) hold all of it: the tree, the data, the side table and
// the inode and handle tables; restoring builds the tree through the same Link methods.
//
// In the browser, memfs needs polyfills for node:buffer, node:events, node:path, node:stream and node:url.

import { Volume } from "memfs";
import type { Awaitable } from "../../vfs/awaitable.ts";
import { EBADF, EEXIST, EINVAL, ENOENT, ENOSPC, ENOTDIR, ENXIO, EPERM } from "../../vfs/errno.ts";
import { FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, NAME_MAX, O_EXCL, O_TRUNC, S_IALLUGO, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, SEEK_DATA } from "../../vfs/linux.ts";
import { FsError, type Cred, type DirEntry, type FileAttr, type FileSystem, type FsCapabilities, type Handle, type Ino, type SetAttr, type StatFs, type Timespec } from "../../vfs/filesystem.ts";
import type { Saved } from "../../vfs/state.ts";
import { checkCanRead, checkCanWrite, checkFallocate, checkName, checkOpenType, checkRange, checkReadOnlyAccess, checkReadOnlyOpen, checkRenameFlags, checkRmdir, checkSeek, checkSetAttr, checkSetAttrType, checkSymlinkTarget, checkWritable, checkWriteRange, checkUnlink, copyLength, getXattr, mknodAttr, newOwner, openMode, removeXattr, renamePlan, setXattr, utf8Length, type NameEntry, type OpenMode, type XattrMap } from "../posix.ts";
import { DirStream, HandleTable, InodeTable, type DirListing } from "../tables.ts";
import { BLOCK_SIZE, blocksOf, sparseData, type Node } from "./sparse.ts";
import { restoreMemFs, saveMemFs } from "./state.ts";
import { dateOf, timespec, type TimeField } from "./times.ts";

export { SparseData } from "./sparse.ts";

export type Superblock = Volume["_core"];
export type Link = Superblock["root"];

/** A referenced inode: its node and, for a directory, its entry (a directory's only one). */
export interface MemInode {
  node: Node;
  dir: Link | undefined;
}

export type MemHandle = { kind: "file"; node: Node; how: OpenMode } | { kind: "dir"; dir: Link; stream: DirStream };

/** What the backend keeps about a node beyond memfs's fields. */
export interface NodeState {
  xattrs: XattrMap;
  /** Open file handles: a node whose last link goes stays in the Superblock until they are released. */
  opens: number;
  /** An O_TMPFILE node opened without O_EXCL and not linked yet: `link` may still name it. */
  linkable: boolean;
  /** Times the guest set, with their nanoseconds: valid while memfs still holds the Date set with them. */
  exact: Partial<Record<TimeField, { date: Date; time: Timespec }>>;
}

export interface MemFsOptions {
  /** Size statfs reports, in bytes; fallocate fails with ENOSPC past it (writes are not limited). Default 256 MiB. */
  capacity?: number;
  /** Inode count statfs reports. Default 65536. */
  maxInodes?: number;
  /** Every change fails with EROFS. */
  readOnly?: boolean;
}

export class MemFs implements FileSystem {
  readonly rootIno: Ino = 1;
  readonly capabilities: FsCapabilities;
  private readonly core: Superblock;
  // Not readonly: restoreState swaps in the tables it built.
  private inos = new WeakMap<Node, Ino>();
  private states = new WeakMap<Node, NodeState>();
  private nextIno: Ino = 2;
  private inodes: InodeTable<MemInode>;
  private handles = new HandleTable<MemHandle>();
  private readonly capacity: number;
  private readonly maxInodes: number;

  constructor(
    readonly vol: Volume = new Volume(),
    options: MemFsOptions = {},
  ) {
    this.core = vol._core;
    // Fail at construction, not on the first guest request, if a memfs upgrade moved the internals.
    if (!(this.core?.root?.children instanceof Map)) throw new Error("memfs backend: this memfs version has no Superblock links");
    this.inos.set(this.core.root.node, this.rootIno);
    this.inodes = new InodeTable(this.rootIno, { node: this.core.root.node, dir: this.core.root });
    this.capacity = options.capacity ?? 256 << 20;
    this.maxInodes = options.maxInodes ?? 65536;
    this.capabilities = { readOnly: options.readOnly ?? false };
  }

  lookup(parent: Ino, name: string): FileAttr {
    checkName(name);
    // children.get, not Link.getChild, which would touch the directory's atime.
    const link = this.dirOf(parent).children.get(name);
    if (link === undefined) throw new FsError(ENOENT, name);
    return this.entry(link);
  }

  forget(ino: Ino, nlookup: number): void {
    this.inodes.forget(ino, nlookup);
  }

  getattr(ino: Ino): FileAttr {
    return this.attr(ino, this.inodes.get(ino));
  }

  readlink(ino: Ino): string {
    const { node } = this.inodes.get(ino);
    if (!node.isSymlink()) throw new FsError(EINVAL, `readlink of inode ${ino}`);
    return node.symlink;
  }

  access(ino: Ino, mask: number): void {
    this.inodes.get(ino);
    if (this.capabilities.readOnly) checkReadOnlyAccess(mask);
  }

  statfs(ino: Ino): StatFs {
    this.inodes.get(ino);
    const blocks = Math.ceil(this.capacity / BLOCK_SIZE);
    const bfree = Math.max(0, this.freeBlocks());
    const ffree = Math.max(0, this.maxInodes - Object.keys(this.core.inodes).length);
    return { blocks, bfree, bavail: bfree, files: this.maxInodes, ffree, bsize: BLOCK_SIZE, namelen: NAME_MAX, frsize: BLOCK_SIZE };
  }

  open(ino: Ino, flags: number): Handle {
    const { node } = this.inodes.get(ino);
    checkOpenType(node.mode & S_IFMT, ino);
    if (this.capabilities.readOnly) checkReadOnlyOpen(flags);
    const how = openMode(flags);
    truncateOnOpen(node, flags);
    return this.openFile(node, how);
  }

  read(fh: Handle, offset: number, length: number): Uint8Array {
    checkRange(offset, length);
    const { node } = this.handles.getKind(fh, "file");
    const out = new Uint8Array(Math.max(0, Math.min(length, node.getSize() - offset)));
    this.readInto(fh, offset, out);
    return out;
  }

  readInto(fh: Handle, offset: number, into: Uint8Array): number {
    checkRange(offset, into.length);
    const { node, how } = this.handles.getKind(fh, "file");
    checkCanRead(how, fh);
    const n = Math.max(0, Math.min(into.length, node.getSize() - offset));
    if (n > 0) node.read(into, 0, n, offset);
    return n;
  }

  release(fh: Handle): void {
    const { node } = this.handles.getKind(fh, "file");
    this.handles.take(fh);
    this.state(node).opens--;
    this.freeIfUnused(node);
  }

  opendir(ino: Ino): Handle {
    const dir = this.dirOf(ino);
    return this.handles.add({ kind: "dir", dir, stream: new DirStream(() => this.list(ino, dir)) });
  }

  readdir(dh: Handle, cookie: number, maxEntries?: number): Awaitable<DirEntry[]> {
    return this.handles.getKind(dh, "dir").stream.read(cookie, maxEntries);
  }

  releasedir(dh: Handle): void {
    this.handles.getKind(dh, "dir");
    this.handles.take(dh);
  }

  setattr(ino: Ino, a: SetAttr, fh?: Handle): FileAttr {
    checkWritable(this.capabilities);
    checkSetAttr(a);
    const inode = this.inodes.get(ino);
    const node = inode.node;
    if (fh !== undefined && this.handles.getKind(fh, "file").node !== node) throw new FsError(EBADF, `handle ${fh} is not open on inode ${ino}`);
    const type = node.mode & S_IFMT;
    checkSetAttrType(type, a, ino);
    const now = timespec(new Date());
    if (a.mode !== undefined) node.mode = type | (a.mode & S_IALLUGO);
    if (a.uid !== undefined) node.uid = a.uid;
    if (a.gid !== undefined) node.gid = a.gid;
    if (a.size !== undefined) {
      sparseData(node).setSize(a.size);
      this.setTime(node, "mtime", now);
    }
    if (a.atime !== undefined) this.setTime(node, "atime", a.atime === "now" ? now : a.atime);
    if (a.mtime !== undefined) this.setTime(node, "mtime", a.mtime === "now" ? now : a.mtime);
    if (Object.values(a).some((v) => v !== undefined)) this.setTime(node, "ctime", a.ctime ?? now);
    return this.attr(ino, inode);
  }

  mknod(parent: Ino, name: string, mode: number, rdev: number, cred: Cred): FileAttr {
    checkWritable(this.capabilities);
    const made = mknodAttr(mode, rdev);
    const dir = this.newEntry(parent, name);
    const node = this.newNode(dir, cred, made.mode);
    node.rdev = made.rdev;
    return this.entry(dir.createChild(name, node));
  }

  mkdir(parent: Ino, name: string, mode: number, cred: Cred): FileAttr {
    checkWritable(this.capabilities);
    const dir = this.newEntry(parent, name);
    return this.entry(dir.createChild(name, this.newNode(dir, cred, S_IFDIR | (mode & S_IALLUGO))));
  }

  symlink(parent: Ino, name: string, target: string, cred: Cred): FileAttr {
    checkWritable(this.capabilities);
    checkSymlinkTarget(target);
    const dir = this.newEntry(parent, name);
    const node = this.newNode(dir, cred, S_IFLNK | 0o777);
    node.symlink = target;
    return this.entry(dir.createChild(name, node));
  }

  link(ino: Ino, newParent: Ino, newName: string): FileAttr {
    checkWritable(this.capabilities);
    const { node } = this.inodes.get(ino);
    if (node.isDirectory()) throw new FsError(EPERM, `link of directory inode ${ino}`);
    const dir = this.newEntry(newParent, newName);
    const state = this.state(node);
    if (node.nlink === 0 && !state.linkable) throw new FsError(ENOENT, `inode ${ino} has no name left`);
    state.linkable = false;
    node.nlink++;
    return this.entry(dir.createChild(newName, node));
  }

  unlink(parent: Ino, name: string): void {
    checkWritable(this.capabilities);
    const dir = this.dirOf(parent);
    const link = this.child(dir, name);
    checkUnlink(nameEntry(link), name);
    this.removeEntry(dir, link);
  }

  rmdir(parent: Ino, name: string): void {
    checkWritable(this.capabilities);
    const dir = this.dirOf(parent);
    const link = this.child(dir, name);
    checkRmdir(nameEntry(link), name);
    this.removeEntry(dir, link);
  }

  rename(parent: Ino, name: string, newParent: Ino, newName: string, flags: number): void {
    checkWritable(this.capabilities);
    checkRenameFlags(flags);
    const from = this.dirOf(parent);
    const src = this.child(from, name);
    checkName(newName);
    const to = this.liveDir(newParent);
    const dst = to.children.get(newName);
    const plan = renamePlan({
      flags,
      from,
      to,
      src: { type: src.node.mode & S_IFMT, at: src },
      dst: dst && { ...nameEntry(dst), at: dst },
      same: dst?.node === src.node,
      within,
    });
    if (plan === "none") return;
    const now = new Date();
    from.deleteChild(src);
    if (dst !== undefined && plan === "exchange") {
      to.deleteChild(dst);
      attach(from, name, dst);
      dst.node.ctime = now;
    } else if (dst !== undefined) this.removeEntry(to, dst);
    attach(to, newName, src);
    src.node.ctime = now;
  }

  create(parent: Ino, name: string, mode: number, flags: number, cred: Cred): { attr: FileAttr; fh: Handle } {
    checkWritable(this.capabilities);
    const how = openMode(flags);
    checkName(name);
    const dir = this.liveDir(parent);
    const existing = dir.children.get(name);
    if (existing !== undefined) {
      if ((flags & O_EXCL) !== 0) throw new FsError(EEXIST, name);
      checkOpenType(existing.node.mode & S_IFMT, this.inoOf(existing.node));
      truncateOnOpen(existing.node, flags);
      return { attr: this.entry(existing), fh: this.openFile(existing.node, how) };
    }
    const node = this.newNode(dir, cred, S_IFREG | (mode & S_IALLUGO));
    const attr = this.entry(dir.createChild(name, node));
    return { attr, fh: this.openFile(node, how) };
  }

  tmpfile(parent: Ino, mode: number, flags: number, cred: Cred): { attr: FileAttr; fh: Handle } {
    checkWritable(this.capabilities);
    const how = openMode(flags);
    if (!how.write) throw new FsError(EINVAL, "O_TMPFILE without write access");
    const node = this.newNode(this.liveDir(parent), cred, S_IFREG | (mode & S_IALLUGO));
    node.nlink = 0;
    this.state(node).linkable = (flags & O_EXCL) === 0;
    const ino = this.inoOf(node);
    const inode: MemInode = { node, dir: undefined };
    this.inodes.ref(ino, inode);
    return { attr: this.attr(ino, inode), fh: this.openFile(node, how) };
  }

  write(fh: Handle, offset: number, data: Uint8Array): number {
    checkWritable(this.capabilities);
    checkRange(offset, data.length);
    const { node, how } = this.handles.getKind(fh, "file");
    checkCanWrite(how, fh);
    const content = sparseData(node);
    const at = how.append ? content.size : offset;
    checkWriteRange(at, data.length);
    if (data.length === 0) return 0;
    content.write(data, at);
    node.touch();
    return data.length;
  }

  // Nothing is buffered and nothing is durable beyond the process: the sync family only checks its handle,
  // and there is no flush.
  fsync(fh: Handle): void {
    this.handles.getKind(fh, "file");
  }

  fsyncdir(dh: Handle): void {
    this.handles.getKind(dh, "dir");
  }

  syncfs(): void {}

  fallocate(fh: Handle, mode: number, offset: number, length: number): void {
    checkWritable(this.capabilities);
    const { node, how } = this.handles.getKind(fh, "file");
    checkFallocate(mode, offset, length);
    checkCanWrite(how, fh);
    const content = sparseData(node);
    if ((mode & FALLOC_FL_PUNCH_HOLE) !== 0) {
      content.punch(offset, length);
      node.touch();
      return;
    }
    if (content.missingChunks(offset, length) > this.freeBlocks()) throw new FsError(ENOSPC, `fallocate of ${length} bytes`);
    content.allocate(offset, length);
    if ((mode & FALLOC_FL_KEEP_SIZE) === 0 && offset + length > content.size) {
      content.setSize(offset + length);
      node.touch();
    }
  }

  lseek(fh: Handle, offset: number, whence: number): number {
    const content = sparseData(this.handles.getKind(fh, "file").node);
    checkSeek(offset, whence, content.size);
    if (whence === SEEK_DATA) {
      const at = content.nextData(offset);
      if (at === undefined) throw new FsError(ENXIO, `no data after ${offset}`);
      return at;
    }
    return content.nextHole(offset);
  }

  copyFileRange(fhIn: Handle, offIn: number, fhOut: Handle, offOut: number, length: number): number {
    checkWritable(this.capabilities);
    const src = this.handles.getKind(fhIn, "file");
    const dst = this.handles.getKind(fhOut, "file");
    const from = sparseData(src.node);
    const n = copyLength({ how: src.how, size: from.size, offset: offIn }, { how: dst.how, offset: offOut }, length, src.node === dst.node);
    if (n === 0) return 0;
    sparseData(dst.node).copy(from, offIn, offOut, n);
    dst.node.touch();
    return n;
  }

  getxattr(ino: Ino, name: string): Uint8Array {
    return getXattr(this.states.get(this.inodes.get(ino).node)?.xattrs, name);
  }

  setxattr(ino: Ino, name: string, value: Uint8Array, flags: number): void {
    checkWritable(this.capabilities);
    const { node } = this.inodes.get(ino);
    setXattr(this.state(node).xattrs, name, value, flags);
    node.ctime = new Date();
  }

  listxattr(ino: Ino): string[] {
    return [...(this.states.get(this.inodes.get(ino).node)?.xattrs.keys() ?? [])];
  }

  removexattr(ino: Ino, name: string): void {
    checkWritable(this.capabilities);
    const { node } = this.inodes.get(ino);
    removeXattr(this.state(node).xattrs, name);
    node.ctime = new Date();
  }

  async saveState(): Promise<Saved> {
    return saveMemFs({
      core: this.core,
      nextIno: this.nextIno,
      inodes: this.inodes,
      handles: this.handles,
      inoOf: (node) => this.inos.get(node),
      stateOf: (node) => this.states.get(node),
      timeOf: (node, field) => this.timeOf(node, field),
    });
  }

  async restoreState(state: Saved): Promise<void> {
    // The state is the whole tree: it goes into an empty Volume, before the backend has answered anything.
    const fresh = this.nextIno === 2 && this.inodes.values().length === 1 && this.handles.values().length === 0 && this.core.root.children.size === 2;
    if (!fresh) throw new Error("memfs backend: restoreState needs a fresh backend over an empty Volume");
    const restored = await restoreMemFs(state, this.core, this.rootIno, (ino, dir) => () => this.list(ino, dir));
    this.nextIno = restored.nextIno;
    this.inos = restored.inos;
    this.states = restored.states;
    this.inodes = restored.inodes;
    this.handles = restored.handles;
  }

  private list(ino: Ino, dir: Link): DirListing {
    // A removed directory has lost its ".." entry: list itself as its parent, as Linux does.
    const parent = dir.children.get("..") ?? dir;
    const entries: DirListing = [
      { name: ".", ino, type: S_IFDIR },
      { name: "..", ino: this.inoOf(parent.node), type: S_IFDIR },
    ];
    for (const [name, link] of dir.children) {
      if (link === undefined || name === "." || name === "..") continue;
      entries.push({ name, ino: this.inoOf(link.node), type: link.node.mode & S_IFMT });
    }
    return entries;
  }

  /** The attributes of the inode behind `link`, counting one reference to it. */
  private entry(link: Link): FileAttr {
    const node = link.node;
    const ino = this.inoOf(node);
    const inode: MemInode = { node, dir: node.isDirectory() ? link : undefined };
    this.inodes.ref(ino, inode);
    return this.attr(ino, inode);
  }

  private inoOf(node: Node): Ino {
    let ino = this.inos.get(node);
    if (ino === undefined) {
      ino = this.nextIno++;
      this.inos.set(node, ino);
    }
    return ino;
  }

  private state(node: Node): NodeState {
    let state = this.states.get(node);
    if (state === undefined) {
      state = { xattrs: new Map(), opens: 0, linkable: false, exact: {} };
      this.states.set(node, state);
    }
    return state;
  }

  /** A new node owned as `cred` (and the directory's set-group-ID bit) say, not yet in any directory. */
  private newNode(dir: Link, cred: Cred, mode: number): Node {
    const owner = newOwner(dir.node, cred, mode);
    const node = this.core.createNode(owner.mode);
    node.uid = owner.uid;
    node.gid = owner.gid;
    return node;
  }

  private openFile(node: Node, how: OpenMode): Handle {
    this.state(node).opens++;
    return this.handles.add({ kind: "file", node, how });
  }

  /** Removes `link` from `dir`; a file's node goes with its last link unless it is still open. */
  private removeEntry(dir: Link, link: Link): void {
    dir.deleteChild(link);
    const node = link.node;
    if (node.isDirectory()) this.core.deleteNode(node);
    else {
      node.nlink--;
      this.freeIfUnused(node);
    }
  }

  /** Drops a node without links or open handles from the Superblock (its space and inode count go with it). */
  private freeIfUnused(node: Node): void {
    const state = this.state(node);
    if (node.nlink !== 0 || state.opens !== 0 || this.core.inodes[node.ino] !== node) return;
    this.core.deleteNode(node);
    state.linkable = false; // an O_TMPFILE file is gone with its last handle
  }

  /** Blocks of the capacity not taken by the contents of the Superblock's nodes (negative past it). */
  private freeBlocks(): number {
    const used = Object.values(this.core.inodes).reduce((sum, node) => sum + blocksOf(node), 0);
    return Math.ceil(this.capacity / BLOCK_SIZE) - used;
  }

  /** Sets a time to the nanosecond: memfs gets the Date, the side table the exact value. */
  private setTime(node: Node, field: TimeField, time: Timespec): void {
    const date = dateOf(time);
    node[field] = date;
    this.state(node).exact[field] = { date, time };
  }

  private timeOf(node: Node, field: TimeField): Timespec {
    const exact = this.states.get(node)?.exact[field];
    return exact !== undefined && exact.date === node[field] ? exact.time : timespec(node[field]);
  }

  /** The directory inode `ino` (ENOTDIR for anything else). */
  private dirOf(ino: Ino): Link {
    const { dir } = this.inodes.get(ino);
    if (dir === undefined) throw new FsError(ENOTDIR, `inode ${ino} is not a directory`);
    return dir;
  }

  /** A directory that may still gain entries: ENOENT once it has been removed, as Linux answers. */
  private liveDir(ino: Ino): Link {
    const dir = this.dirOf(ino);
    if (dir !== this.core.root && !dir.children.has("..")) throw new FsError(ENOENT, `directory inode ${ino} was removed`);
    return dir;
  }

  /** The directory `parent`, where `name` is free for a new entry. */
  private newEntry(parent: Ino, name: string): Link {
    checkName(name);
    const dir = this.liveDir(parent);
    if (dir.children.has(name)) throw new FsError(EEXIST, name);
    return dir;
  }

  private child(dir: Link, name: string): Link {
    checkName(name);
    const link = dir.children.get(name);
    if (link === undefined) throw new FsError(ENOENT, name);
    return link;
  }

  private attr(ino: Ino, { node, dir }: MemInode): FileAttr {
    const type = node.mode & S_IFMT;
    let size = node.getSize();
    let nlink = node.nlink;
    let mode = node.mode;
    let blocks = blocksOf(node);
    if (dir !== undefined) {
      // memfs's own directory link counts are off (the root starts at 3): count "." plus ".." of each
      // subdirectory, and none for a removed directory.
      nlink = 0;
      if (dir === this.core.root || dir.children.has("..")) {
        nlink = 2;
        for (const [name, child] of dir.children) {
          if (child !== undefined && name !== "." && name !== ".." && child.node.isDirectory()) nlink++;
        }
      }
      size = BLOCK_SIZE;
      blocks = 1;
    } else if (type === S_IFLNK) {
      size = utf8Length(node.symlink);
      mode = S_IFLNK | 0o777; // memfs says 0666; Linux symlinks are always 0777
    }
    return {
      ino,
      mode,
      nlink,
      uid: node.uid,
      gid: node.gid,
      rdev: node.rdev,
      size,
      blocks: blocks * (BLOCK_SIZE / 512),
      blksize: BLOCK_SIZE,
      atime: this.timeOf(node, "atime"),
      mtime: this.timeOf(node, "mtime"),
      ctime: this.timeOf(node, "ctime"),
    };
  }

}

/** O_TRUNC (with any access mode, as Linux) empties the file and moves its mtime. */
function truncateOnOpen(node: Node, flags: number): void {
  if ((flags & O_TRUNC) === 0) return;
  sparseData(node).setSize(0);
  node.touch();
}

/** Whether `dir` is `ancestor` or lies below it. */
function within(dir: Link, ancestor: Link): boolean {
  // The walk ends at the root, whose parent is itself (or, in a Superblock never given one, absent).
  for (let at: Link | undefined = dir; ; at = at.parent) {
    if (at === ancestor) return true;
    if (at === undefined || at.parent === at) return false;
  }
}

/** What the posix.ts rules need of the object behind `link`. */
function nameEntry(link: Link): NameEntry {
  if (!link.node.isDirectory()) return { type: link.node.mode & S_IFMT };
  for (const name of link.children.keys()) if (name !== "." && name !== "..") return { type: S_IFDIR, hasEntries: true };
  return { type: S_IFDIR, hasEntries: false };
}

/** Puts a detached `link` into `dir` as `name`, the way memfs's own rename does. */
function attach(dir: Link, name: string, link: Link): void {
  link.name = name;
  link.steps = [...dir.steps, name];
  dir.setChild(name, link);
}
