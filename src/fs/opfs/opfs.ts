// A read-write backend over a browser directory: the origin private file system (OPFS), or a folder the
// user picked with the File System Access API. Meant for a dedicated Worker, where OPFS files have
// synchronous access handles; elsewhere (and for picked folders) file data goes through the async API.
//
// Layout. The tree is mirrored: every name the guest sees is an entry of the directory, directories as
// directories and everything else as a file, so the share stays browsable as files. What the directory
// cannot say lives in a metadata snapshot in a second directory (`meta`, outside the tree; see
// meta.ts): modes, owners, times, xattrs, symlink targets and device numbers, and which inode each
// known name is. Symlinks, device nodes, FIFOs and sockets are empty placeholder files whose meaning is
// in the metadata. A file with several names (hard links), an open file whose last name was removed and
// an O_TMPFILE file keep their data in an inode store (`meta/inodes/<ino>`) and their names are
// placeholders too.
//
// The directory is the truth for which names exist: a name added behind the backend's back shows up with
// default metadata (0644 files, 0755 directories, owned by root), a removed one disappears, and metadata
// for names that are gone is dropped. So a crash between an OPFS call and the next metadata save costs at
// most the metadata of the names involved, never the snapshot itself.
//
// Durability: file data is written in place (sync handles) or on flush (async API). FLUSH, FSYNC,
// FSYNCDIR, RELEASE and SYNCFS flush data and save the metadata if it changed; other changes are saved a
// second later. After `sync` in the guest, a reload finds exactly what the guest left. A reload at any
// moment (test/browser/fs-opfs.test.ts cuts between every two OPFS calls) finds a file renamed over
// another as the old file or the new, never neither, and never loses a file's data to a link. Directory
// renames and RENAME_EXCHANGE take several OPFS calls: cut midway, their entries are all there, some
// under the old names (or a `.vfsw-exchange-<ino>` name).
//
// Snapshots (saveState, state.ts) hold references: the metadata's inode numbers, saved with it, and the open
// handles, whose files are reopened by restoreState.
//
// Requests run one at a time: OPFS calls are asynchronous, and interleaving two of them (say, two creates
// of one name) would race on the tree.

import { EBADF, EEXIST, EINVAL, EMLINK, ENOENT, ENOTDIR, EPERM, ESTALE } from "../../vfs/errno.ts";
import { FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, MAX_IO_SIZE, NAME_MAX, O_EXCL, O_TRUNC, S_IALLUGO, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, SEEK_DATA } from "../../vfs/linux.ts";
import { FsError, type Cred, type DirEntry, type FileAttr, type FileSystem, type FsCapabilities, type Handle, type Ino, type SetAttr, type StatFs } from "../../vfs/filesystem.ts";
import { checkCanRead, checkCanWrite, checkFallocate, checkName, checkOpenType, checkRange, checkReadOnlyAccess, checkReadOnlyOpen, checkRenameFlags, checkRmdir, checkSeek, checkSetAttr, checkSetAttrType, checkSymlinkTarget, checkWritable, checkWriteRange, checkUnlink, copyLength, denseAttr, getXattr, mknodAttr, newOwner, openMode, removeXattr, renamePlan, setXattr, utf8Length, type NameEntry, type OpenMode } from "../posix.ts";
import { DirStream, HandleTable, InodeTable, type DirListing, type StaleHandle } from "../tables.ts";
import { BufferedData, isNotFound, opfsError, SyncData, type FileData, type OpfsFileHandle } from "./data.ts";
import { MetaStore, restoreSnapshot, snapshotOf } from "./meta.ts";
import { fromMs, isDir, isReg, newNode, now, type Node } from "./node.ts";
import { readOpfsState, saveOpfsState, type HandlePlan, type Place } from "./state.ts";
import { copyFile, emptyFile, moveFile, moveTree, probe } from "./tree.ts";
import { StateError, type Saved } from "../../vfs/state.ts";

export interface OpfsOptions {
  /** Where the metadata snapshot, the inode store and the lock live: a directory outside the tree. */
  meta: FileSystemDirectoryHandle;
  /** File data through sync access handles (OPFS files in a dedicated Worker). Default: where the API exists. */
  syncAccess?: boolean;
  /** Milliseconds from a metadata change to its save when nothing asks for durability sooner. Default 1000. */
  saveDelayMs?: number;
  /** Every change fails with EROFS; the metadata is never saved. */
  readOnly?: boolean;
}

const BLOCK_SIZE = 4096;
const LINK_MAX = 65000;
/** statfs when the browser does not say (navigator.storage.estimate). */
const DEFAULT_CAPACITY = 1 << 30;
const MAX_INODES = 1 << 20;

export type OpfsHandle = { kind: "file"; node: Node; how: OpenMode } | DirHandle | StaleHandle;
type DirHandle = { kind: "dir"; node: Node; stream: DirStream };

export class OpfsFs implements FileSystem {
  readonly rootIno: Ino = 1;
  readonly capabilities: FsCapabilities;
  private readonly nodes = new Map<Ino, Node>();
  // Replaced whole by restoreState.
  private inodes: InodeTable<Node>;
  private handles = new HandleTable<OpfsHandle>();
  private nextIno: Ino = 2;
  /** Bumped whenever a directory moves: cached directory handles are paths, so any may be stale. */
  private moves = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private dirty = false;
  private saveTimer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  private readonly syncAccess: boolean;
  private readonly saveDelayMs: number;

  private constructor(
    private readonly root: FileSystemDirectoryHandle,
    private readonly store: FileSystemDirectoryHandle,
    private readonly meta: MetaStore,
    options: OpfsOptions,
  ) {
    this.syncAccess = options.syncAccess ?? typeof (globalThis as { FileSystemSyncAccessHandle?: unknown }).FileSystemSyncAccessHandle === "function";
    this.saveDelayMs = options.saveDelayMs ?? 1000;
    this.capabilities = { readOnly: options.readOnly ?? false };
    const rootNode = this.addNode(this.rootIno, S_IFDIR | 0o755, { uid: 0, gid: 0 }, this.rootIno, "");
    this.inodes = new InodeTable(this.rootIno, rootNode);
  }

  /** Serves `root`, with the metadata an earlier session left in `options.meta`. */
  static async open(root: FileSystemDirectoryHandle, options: OpfsOptions): Promise<OpfsFs> {
    try {
      const { store: meta, snapshot } = await MetaStore.open(options.meta);
      const fs = new OpfsFs(root, await options.meta.getDirectoryHandle("inodes", { create: true }), meta, options);
      if (snapshot) {
        restoreSnapshot(snapshot, fs.nodes, fs.rootIno);
        fs.nextIno = Math.max(fs.nextIno, snapshot.nextIno);
      }
      if (!fs.capabilities.readOnly) await fs.collectStore();
      return fs;
    } catch (e) {
      throw opfsError(e);
    }
  }

  /** Saves the metadata, closes every file and gives up the share's lock; every later call is EBADF. */
  close(): Promise<void> {
    return this.serial(async () => {
      try {
        for (const n of this.nodes.values()) await this.closeData(n);
        this.handles.takeAll();
        await this.saveIfDirty();
      } finally {
        this.closed = true;
        this.meta.close();
      }
    });
  }

  // ----- the read side -----

  lookup(parent: Ino, name: string): Promise<FileAttr> {
    return this.serial(async () => {
      checkName(name);
      const node = await this.child(this.dirNode(parent), name);
      if (!node) throw new FsError(ENOENT, name);
      return this.referenced(node);
    });
  }

  async forget(ino: Ino, nlookup: number): Promise<void> {
    this.inodes.forget(ino, nlookup);
  }

  getattr(ino: Ino): Promise<FileAttr> {
    return this.serial(() => this.attr(this.inodes.get(ino)));
  }

  readlink(ino: Ino): Promise<string> {
    return this.serial(async () => {
      const n = this.inodes.get(ino);
      if (n.target === undefined) throw new FsError(EINVAL, `readlink of inode ${ino}`);
      return n.target;
    });
  }

  async access(ino: Ino, mask: number): Promise<void> {
    this.inodes.get(ino);
    if (this.capabilities.readOnly) checkReadOnlyAccess(mask);
  }

  statfs(ino: Ino): Promise<StatFs> {
    return this.serial(async () => {
      this.inodes.get(ino);
      const est = await navigator.storage?.estimate?.().catch(() => undefined);
      const quota = est?.quota ?? DEFAULT_CAPACITY;
      const used = Math.min(quota, est?.usage ?? 0);
      const blocks = Math.floor(quota / BLOCK_SIZE);
      const bfree = Math.floor((quota - used) / BLOCK_SIZE);
      const ffree = Math.max(0, MAX_INODES - this.nodes.size);
      return { blocks, bfree, bavail: bfree, files: MAX_INODES, ffree, bsize: BLOCK_SIZE, namelen: NAME_MAX, frsize: BLOCK_SIZE };
    });
  }

  open(ino: Ino, flags: number): Promise<Handle> {
    return this.serial(async () => {
      const node = this.inodes.get(ino);
      checkOpenType(node.mode & S_IFMT, ino);
      if (this.capabilities.readOnly) checkReadOnlyOpen(flags);
      return this.openNode(node, flags);
    });
  }

  read(fh: Handle, offset: number, length: number): Promise<Uint8Array> {
    return this.serial(async () => {
      checkRange(offset, length);
      const h = this.handles.getKind(fh, "file");
      checkCanRead(h.how, fh);
      return (await this.data(h.node)).read(offset, length);
    });
  }

  release(fh: Handle): Promise<void> {
    return this.serial(async () => {
      if (this.handles.get(fh).kind === "stale") return void this.handles.take(fh);
      const { node } = this.handles.getKind(fh, "file");
      this.handles.take(fh);
      node.opens--;
      if (node.opens === 0) {
        await this.closeData(node);
        if (node.nlink === 0 && node.stored) await this.dropStored(node);
      }
      await this.saveIfDirty();
    });
  }

  opendir(ino: Ino): Promise<Handle> {
    return this.serial(async () => {
      const node = this.inodes.get(ino);
      if (!isDir(node)) throw new FsError(ENOTDIR, `opendir of inode ${ino}`);
      return this.handles.add(this.dirStream(node));
    });
  }

  // Not serialized itself: the listing it may take is.
  async readdir(dh: Handle, cookie: number, maxEntries?: number): Promise<DirEntry[]> {
    return this.handles.getKind(dh, "dir").stream.read(cookie, maxEntries);
  }

  async releasedir(dh: Handle): Promise<void> {
    if (this.handles.get(dh).kind !== "stale") this.handles.getKind(dh, "dir");
    this.handles.take(dh);
  }

  // ----- the write side -----

  setattr(ino: Ino, a: SetAttr, fh?: Handle): Promise<FileAttr> {
    return this.change(async () => {
      checkSetAttr(a);
      const node = fh === undefined ? this.inodes.get(ino) : this.handles.getKind(fh, "file").node;
      if (node.ino !== ino) throw new FsError(EBADF, `handle ${fh} is not open on inode ${ino}`);
      checkSetAttrType(node.mode & S_IFMT, a, ino);
      if (a.size !== undefined) {
        await this.withData(node, (d) => d.truncate(a.size!));
        node.mtime = now();
      }
      if (a.mode !== undefined) node.mode = (node.mode & S_IFMT) | (a.mode & S_IALLUGO);
      if (a.uid !== undefined) node.uid = a.uid;
      if (a.gid !== undefined) node.gid = a.gid;
      if (a.atime !== undefined) node.atime = a.atime === "now" ? now() : a.atime;
      if (a.mtime !== undefined) node.mtime = a.mtime === "now" ? now() : a.mtime;
      node.ctime = a.ctime ?? now();
      this.changed(node);
      return this.attr(node);
    });
  }

  mknod(parent: Ino, name: string, mode: number, rdev: number, cred: Cred): Promise<FileAttr> {
    return this.change(async () => {
      const made = mknodAttr(mode, rdev);
      const { dir, dirHandle } = await this.createPrelude(parent, name);
      await dirHandle.getFileHandle(name, { create: true });
      const node = this.addChild(dir, name, made.mode, cred);
      node.rdev = made.rdev;
      return this.referenced(node);
    });
  }

  mkdir(parent: Ino, name: string, mode: number, cred: Cred): Promise<FileAttr> {
    return this.change(async () => {
      const { dir, dirHandle } = await this.createPrelude(parent, name);
      await dirHandle.getDirectoryHandle(name, { create: true });
      const node = this.addChild(dir, name, S_IFDIR | (mode & S_IALLUGO), cred);
      node.subdirs = 0;
      if (dir.subdirs !== undefined) dir.subdirs++;
      return this.referenced(node);
    });
  }

  symlink(parent: Ino, name: string, target: string, cred: Cred): Promise<FileAttr> {
    return this.change(async () => {
      checkSymlinkTarget(target);
      const { dir, dirHandle } = await this.createPrelude(parent, name);
      await dirHandle.getFileHandle(name, { create: true });
      const node = this.addChild(dir, name, S_IFLNK | 0o777, cred);
      node.target = target;
      return this.referenced(node);
    });
  }

  link(ino: Ino, newParent: Ino, newName: string): Promise<FileAttr> {
    return this.change(async () => {
      const node = this.inodes.get(ino);
      if (isDir(node)) throw new FsError(EPERM, "hard link to a directory");
      if (node.nlink === 0 && !node.linkable) throw new FsError(ENOENT, `inode ${ino} has no name to link to`);
      if (node.nlink >= LINK_MAX) throw new FsError(EMLINK, `inode ${ino} has ${node.nlink} links`);
      const { dir, dirHandle } = await this.createPrelude(newParent, newName);
      // No one name can hold the data of two: it goes to the store, and both names become placeholders.
      // In an order no crash can lose it by: copied, then the metadata saying so, then the old name emptied.
      const first = isReg(node) && !node.stored ? await this.copyToStore(node) : undefined;
      dir.children!.set(newName, node.ino);
      node.nlink++;
      node.linkable = false;
      node.ctime = now();
      this.touchDir(dir);
      await this.save();
      await dirHandle.getFileHandle(newName, { create: true });
      if (first) await emptyFile(first);
      return this.referenced(node);
    });
  }

  unlink(parent: Ino, name: string): Promise<void> {
    return this.change(async () => {
      checkName(name);
      const dir = this.dirNode(parent);
      const node = await this.child(dir, name);
      if (!node) throw new FsError(ENOENT, name);
      checkUnlink(await this.nameEntry(node), name);
      await this.removeName(dir, name, node);
      this.touchDir(dir);
    });
  }

  rmdir(parent: Ino, name: string): Promise<void> {
    return this.change(async () => {
      checkName(name);
      const dir = this.dirNode(parent);
      const node = await this.child(dir, name);
      if (!node) throw new FsError(ENOENT, name);
      checkRmdir(await this.nameEntry(node), name);
      await this.removeDir(dir, name, node);
      this.touchDir(dir);
    });
  }

  rename(parent: Ino, name: string, newParent: Ino, newName: string, flags: number): Promise<void> {
    return this.change(async () => {
      checkRenameFlags(flags);
      checkName(name);
      checkName(newName);
      const from = this.dirNode(parent);
      const to = this.dirNode(newParent);
      const node = await this.child(from, name);
      if (!node) throw new FsError(ENOENT, name);
      const target = await this.child(to, newName);
      const plan = renamePlan({
        flags,
        from,
        to,
        src: { type: node.mode & S_IFMT, at: node },
        dst: target && { ...(await this.nameEntry(target)), at: target },
        same: target === node,
        within: (dir, ancestor) => this.isWithin(dir, ancestor),
      });
      if (plan === "none") return;
      if (target && plan === "exchange") {
        await this.exchange(from, name, node, to, newName, target);
        target.ctime = now();
      } else {
        // A file is replaced by the move itself, so a crash finds the old file or the new, never neither.
        if (target && isDir(target)) await this.removeDir(to, newName, target);
        else if (target) await this.removeName(to, newName, target, true);
        await this.moveEntry(from, name, node, to, newName);
      }
      node.ctime = now();
      this.touchDir(from);
      this.touchDir(to);
    });
  }

  create(parent: Ino, name: string, mode: number, flags: number, cred: Cred): Promise<{ attr: FileAttr; fh: Handle }> {
    return this.change(async () => {
      checkName(name);
      openMode(flags);
      const dir = this.dirNode(parent);
      let node = await this.child(dir, name);
      if (node) {
        if (flags & O_EXCL) throw new FsError(EEXIST, name);
        checkOpenType(node.mode & S_IFMT, node.ino);
      } else {
        await (await this.dirHandle(dir)).getFileHandle(name, { create: true });
        node = this.addChild(dir, name, S_IFREG | (mode & S_IALLUGO), cred);
        flags &= ~O_TRUNC;
      }
      const fh = await this.openNode(node, flags);
      return { attr: await this.referenced(node), fh };
    });
  }

  tmpfile(parent: Ino, mode: number, flags: number, cred: Cred): Promise<{ attr: FileAttr; fh: Handle }> {
    return this.change(async () => {
      if (!openMode(flags).write) throw new FsError(EINVAL, "O_TMPFILE needs O_WRONLY or O_RDWR");
      const dir = this.dirNode(parent);
      const owner = newOwner(dir, cred, S_IFREG | (mode & S_IALLUGO));
      const node = this.addNode(this.nextIno++, owner.mode, owner, dir.ino, "");
      node.nlink = 0;
      node.stored = true;
      node.linkable = (flags & O_EXCL) === 0;
      await this.store.getFileHandle(String(node.ino), { create: true });
      const fh = await this.openNode(node, flags & ~O_TRUNC);
      return { attr: await this.referenced(node), fh };
    });
  }

  write(fh: Handle, offset: number, data: Uint8Array): Promise<number> {
    return this.change(async () => {
      const h = this.handles.getKind(fh, "file");
      checkCanWrite(h.how, fh);
      const d = await this.data(h.node);
      const at = h.how.append ? d.size() : offset;
      checkWriteRange(at, data.length);
      await d.write(at, data);
      this.modified(h.node);
      return data.length;
    });
  }

  fsync(fh: Handle): Promise<void> {
    return this.serial(async () => {
      await this.handles.getKind(fh, "file").node.data?.flush();
      await this.saveIfDirty();
    });
  }

  flush(fh: Handle): Promise<void> {
    return this.fsync(fh);
  }

  fsyncdir(dh: Handle): Promise<void> {
    return this.serial(async () => {
      this.handles.getKind(dh, "dir");
      await this.saveIfDirty();
    });
  }

  syncfs(): Promise<void> {
    return this.serial(async () => {
      for (const n of this.nodes.values()) await n.data?.flush();
      await this.saveIfDirty();
    });
  }

  fallocate(fh: Handle, mode: number, offset: number, length: number): Promise<void> {
    return this.change(async () => {
      checkFallocate(mode, offset, length);
      const h = this.handles.getKind(fh, "file");
      checkCanWrite(h.how, fh);
      const d = await this.data(h.node);
      const end = offset + length;
      if (mode === 0) {
        if (end > d.size()) await d.truncate(end);
      } else if (mode === (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)) {
        // No sparse files in OPFS: a punched hole is zeros.
        for (let at = offset, stop = Math.min(end, d.size()); at < stop; at += MAX_IO_SIZE) {
          await d.write(at, new Uint8Array(Math.min(MAX_IO_SIZE, stop - at)));
        }
      }
      // FALLOC_FL_KEEP_SIZE alone: OPFS has no preallocation, and nothing to check beyond the arguments.
      if (mode !== FALLOC_FL_KEEP_SIZE) this.modified(h.node);
    });
  }

  lseek(fh: Handle, offset: number, whence: number): Promise<number> {
    return this.serial(async () => {
      const size = (await this.data(this.handles.getKind(fh, "file").node)).size();
      checkSeek(offset, whence, size);
      // Without sparse files all of the file is data, and the only hole is its end.
      return whence === SEEK_DATA ? offset : size;
    });
  }

  copyFileRange(fhIn: Handle, offIn: number, fhOut: Handle, offOut: number, length: number): Promise<number> {
    return this.change(async () => {
      const src = this.handles.getKind(fhIn, "file");
      const dst = this.handles.getKind(fhOut, "file");
      const from = await this.data(src.node);
      const n = copyLength({ how: src.how, size: from.size(), offset: offIn }, { how: dst.how, offset: offOut }, length, src.node === dst.node);
      const to = await this.data(dst.node);
      for (let done = 0; done < n; ) {
        const chunk = await from.read(offIn + done, Math.min(MAX_IO_SIZE, n - done));
        await to.write(offOut + done, chunk);
        done += chunk.length;
      }
      if (n > 0) this.modified(dst.node);
      return n;
    });
  }

  getxattr(ino: Ino, name: string): Promise<Uint8Array> {
    return this.serial(async () => getXattr(this.inodes.get(ino).xattrs, name));
  }

  setxattr(ino: Ino, name: string, value: Uint8Array, flags: number): Promise<void> {
    return this.change(async () => {
      const node = this.inodes.get(ino);
      setXattr(node.xattrs, name, value, flags);
      node.ctime = now();
      this.changed(node);
    });
  }

  listxattr(ino: Ino): Promise<string[]> {
    return this.serial(async () => [...this.inodes.get(ino).xattrs.keys()]);
  }

  removexattr(ino: Ino, name: string): Promise<void> {
    return this.change(async () => {
      const node = this.inodes.get(ino);
      removeXattr(node.xattrs, name);
      node.ctime = now();
      this.changed(node);
    });
  }

  // ----- snapshots (state.ts) -----

  saveState(): Promise<Saved> {
    return this.serial(async () => {
      // A restore finds the data in OPFS and the inode numbers in the metadata: both must be there now.
      for (const n of this.nodes.values()) await n.data?.flush();
      await this.save();
      return saveOpfsState({ nextIno: this.nextIno, inodes: this.inodes, handles: this.handles }, this.rootIno);
    });
  }

  restoreState(state: Saved): Promise<void> {
    return this.serial(async () => {
      if (this.handles.values().length > 0 || this.inodes.values().length > 1) throw new Error("restoreState needs a freshly opened backend");
      const s = readOpfsState(state, this.rootIno);
      if (this.capabilities.readOnly && s.handles.values().some((h) => h.kind === "file" && h.how.write)) throw new StateError("a handle open for writing on a read-only share");
      // An inode no longer there is left unknown to the tables: ESTALE, and its handles too.
      const inodes = await s.inodes.map(this.inodes.get(this.rootIno), (place, ino) => place && this.stillThere(ino, place));
      this.handles = await s.handles.map(
        (plan) => this.reopen(plan),
        async (h) => {
          if (h.kind === "file" && --h.node.opens === 0) await this.closeData(h.node);
        },
      );
      this.inodes = inodes;
      this.nextIno = Math.max(this.nextIno, s.nextIno);
    });
  }

  /**
   * The node the metadata now has under a saved inode's number, if it is still that inode: same type, same
   * place, and its name still in the directory (or its data still in the store).
   */
  private async stillThere(ino: Ino, place: Place): Promise<Node | undefined> {
    const node = this.nodes.get(ino);
    if (node === undefined || node.removed || (node.mode & S_IFMT) !== place.type || node.stored !== (place.at === null)) return undefined;
    if (place.at === null) return node;
    const parent = this.nodes.get(place.at.parent);
    if (node.parent !== place.at.parent || node.name !== place.at.name || parent?.children === undefined) return undefined;
    try {
      return (await this.child(parent, node.name)) === node ? node : undefined;
    } catch (e) {
      if (isStale(e)) return undefined;
      throw e;
    }
  }

  /** A saved handle on its node again, a file's data reopened (its sync access handle reacquired). */
  private async reopen(h: HandlePlan): Promise<OpfsHandle> {
    if (h.kind === "stale") return { kind: "stale" };
    const node = h.place === undefined ? this.inodes.get(this.rootIno) : await this.stillThere(h.ino, h.place);
    if (node === undefined) return { kind: "stale" };
    if (h.kind === "dir") return this.dirStream(node, h.listing);
    try {
      await this.data(node);
    } catch (e) {
      if (isStale(e)) return { kind: "stale" };
      throw e;
    }
    node.opens++;
    return { kind: "file", node, how: h.how };
  }

  private dirStream(node: Node, listing?: DirListing): DirHandle {
    return { kind: "dir", node, stream: new DirStream(() => this.serial(() => this.list(node)), listing) };
  }

  // ----- inodes and names -----

  /** As `serial`, for a request that changes the tree: EROFS on a read-only share. */
  private change<T>(fn: () => Promise<T>): Promise<T> {
    return this.serial(async () => {
      checkWritable(this.capabilities);
      return fn();
    });
  }

  /** Runs `fn` after every earlier request, with OPFS failures as errnos. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(async () => {
      if (this.closed) throw new FsError(EBADF, "the share is closed");
      try {
        return await fn();
      } catch (e) {
        throw opfsError(e);
      }
    });
    this.queue = run.catch(() => {});
    return run;
  }

  private addNode(ino: Ino, mode: number, owner: { uid: number; gid: number }, parent: Ino, name: string): Node {
    const node = newNode(ino, mode, owner, parent, name);
    this.nodes.set(ino, node);
    return node;
  }

  private dirNode(ino: Ino): Node {
    const node = this.inodes.get(ino);
    if (!isDir(node)) throw new FsError(ENOTDIR, `inode ${ino} is not a directory`);
    return node;
  }

  /** The directory's handle, walking down from the root; ESTALE if the directory is gone. */
  private async dirHandle(dir: Node): Promise<FileSystemDirectoryHandle> {
    if (dir.ino === this.rootIno) return this.root;
    if (dir.handle?.moves === this.moves) return dir.handle.dir;
    const parent = this.nodes.get(dir.parent);
    if (!parent || dir.removed) throw new FsError(ESTALE, `directory inode ${dir.ino} is gone`);
    const handle = await (await this.dirHandle(parent)).getDirectoryHandle(dir.name);
    dir.handle = { moves: this.moves, dir: handle };
    return handle;
  }

  /** The file holding the node's data: in the store, or at its one name. */
  private async dataFile(node: Node): Promise<OpfsFileHandle> {
    if (node.stored) return this.store.getFileHandle(String(node.ino));
    const parent = this.nodes.get(node.parent);
    if (!parent || node.removed) throw new FsError(ESTALE, `inode ${node.ino} is gone`);
    return (await this.dirHandle(parent)).getFileHandle(node.name);
  }

  /**
   * The inode at `name` in `dir` as the directory has it now: the known one if its kind still matches, a
   * fresh one for a name added behind the backend's back; undefined (and the metadata dropped) if absent.
   */
  private async child(dir: Node, name: string): Promise<Node | undefined> {
    const known = this.nodes.get(dir.children!.get(name) ?? 0);
    const kind = await probe(await this.dirHandle(dir), name, known && isDir(known) ? "directory" : "file");
    if (kind === undefined) {
      if (known) this.lostName(dir, name, known);
      return undefined;
    }
    return this.entry(dir, name, kind, known);
  }

  private entry(dir: Node, name: string, kind: FileSystemHandleKind, known: Node | undefined): Node {
    if (known && isDir(known) === (kind === "directory")) return known;
    if (known) this.lostName(dir, name, known);
    const node = this.addNode(this.nextIno++, kind === "directory" ? S_IFDIR | 0o755 : S_IFREG | 0o644, { uid: 0, gid: 0 }, dir.ino, name);
    node.fresh = true;
    dir.children!.set(name, node.ino);
    return node;
  }

  /** A name the directory no longer has (removed behind the backend's back): its inode loses it. */
  private lostName(dir: Node, name: string, node: Node): void {
    dir.children!.delete(name);
    if (isDir(node)) {
      if (dir.subdirs !== undefined) dir.subdirs--;
      node.removed = true;
    } else {
      node.nlink = Math.max(0, node.nlink - 1);
      if (node.nlink === 0 && !node.stored) node.removed = true;
    }
    this.dirty = true;
  }

  private async attr(node: Node): Promise<FileAttr> {
    let size = 0;
    let nlink = node.nlink;
    if (isDir(node)) {
      if (node.subdirs === undefined && !node.removed) await this.list(node);
      nlink = node.removed ? 0 : 2 + (node.subdirs ?? 0);
      size = BLOCK_SIZE;
    } else if (isReg(node)) {
      if (node.data) size = node.data.size();
      else {
        const file = await (await this.dataFile(node)).getFile();
        size = file.size;
        if (node.fresh) node.atime = node.mtime = node.ctime = fromMs(file.lastModified);
      }
    } else if (node.target !== undefined) {
      size = utf8Length(node.target);
    }
    node.fresh = false;
    return denseAttr(node, nlink, size);
  }

  /** The attributes of a node the caller now holds one more reference to. */
  private async referenced(node: Node): Promise<FileAttr> {
    const attr = await this.attr(node);
    this.inodes.ref(node.ino, node);
    return attr;
  }

  /** The directory as it is now, reconciled with the metadata; counts its subdirectories. */
  private async list(dir: Node): Promise<DirListing> {
    const handle = await this.dirHandle(dir);
    const entries: DirListing = [
      { name: ".", ino: dir.ino, type: S_IFDIR },
      { name: "..", ino: dir.ino === this.rootIno ? dir.ino : dir.parent, type: S_IFDIR },
    ];
    const seen = new Set<string>();
    let subdirs = 0;
    for await (const [name, h] of handle.entries()) {
      seen.add(name);
      const node = this.entry(dir, name, h.kind, this.nodes.get(dir.children!.get(name) ?? 0));
      if (isDir(node)) subdirs++;
      entries.push({ name, ino: node.ino, type: node.mode & S_IFMT });
    }
    for (const [name, ino] of [...dir.children!]) {
      const node = this.nodes.get(ino);
      if (node && !seen.has(name)) this.lostName(dir, name, node);
    }
    dir.subdirs = subdirs;
    return entries;
  }

  private isWithin(dir: Node, ancestor: Node): boolean {
    for (let n: Node | undefined = dir; n; n = n.ino === this.rootIno ? undefined : this.nodes.get(n.parent)) {
      if (n === ancestor) return true;
    }
    return false;
  }

  /** Checks before making `name` in `parent`: a directory, and the name free (EEXIST). */
  private async createPrelude(parent: Ino, name: string): Promise<{ dir: Node; dirHandle: FileSystemDirectoryHandle }> {
    checkName(name);
    const dir = this.dirNode(parent);
    if (await this.child(dir, name)) throw new FsError(EEXIST, name);
    return { dir, dirHandle: await this.dirHandle(dir) };
  }

  /** Records a new inode under `name`, whose entry was just made in the directory. */
  private addChild(dir: Node, name: string, mode: number, cred: Cred): Node {
    const owner = newOwner(dir, cred, mode);
    const node = this.addNode(this.nextIno++, owner.mode, owner, dir.ino, name);
    dir.children!.set(name, node.ino);
    this.touchDir(dir);
    return node;
  }

  /** Drops `name` from `dir`; with `replaced` the entry stays in OPFS for a move to overwrite. */
  private async removeName(dir: Node, name: string, node: Node, replaced = false): Promise<void> {
    if (isReg(node) && !node.stored && node.opens > 0) {
      // Open handles keep the data in the store: moved there with the name, or copied if the name stays.
      if (replaced) await this.copyToStore(node);
      else await this.moveToStore(node);
    } else {
      if (isReg(node) && !node.stored) await this.closeData(node);
      if (!replaced) await (await this.dirHandle(dir)).removeEntry(name);
    }
    dir.children!.delete(name);
    node.nlink = Math.max(0, node.nlink - 1);
    if (node.nlink === 0 && !node.stored) node.removed = true;
    node.ctime = now();
    if (node.nlink === 0 && node.opens === 0 && node.stored) await this.dropStored(node);
    this.dirty = true;
  }

  /** What the posix.ts rules need of `node`; a directory's entries are the directory's own say. */
  private async nameEntry(node: Node): Promise<NameEntry> {
    if (!isDir(node)) return { type: node.mode & S_IFMT };
    for await (const _ of (await this.dirHandle(node)).keys()) return { type: S_IFDIR, hasEntries: true };
    return { type: S_IFDIR, hasEntries: false };
  }

  /** Removes the empty directory `node`, named `name` in `dir`. */
  private async removeDir(dir: Node, name: string, node: Node): Promise<void> {
    await (await this.dirHandle(dir)).removeEntry(name);
    dir.children!.delete(name);
    if (dir.subdirs !== undefined) dir.subdirs--;
    node.removed = true;
    node.handle = undefined;
    node.ctime = now();
    this.dirty = true;
  }

  /** Moves the data at the node's name into the store, the name going with it (unlink of an open file). */
  private async moveToStore(node: Node): Promise<void> {
    await this.closeData(node);
    const dirHandle = await this.dirHandle(this.nodes.get(node.parent)!);
    await moveFile((await dirHandle.getFileHandle(node.name)) as OpfsFileHandle, dirHandle, node.name, this.store, String(node.ino));
    node.stored = true;
  }

  /**
   * Copies the data at the node's name into the store, the name keeping it until it is emptied or
   * replaced; returns the name's file. Until the metadata says the node is stored, the copy is a
   * leftover the next open collects.
   */
  private async copyToStore(node: Node): Promise<FileSystemFileHandle> {
    await this.closeData(node);
    const file = await (await this.dirHandle(this.nodes.get(node.parent)!)).getFileHandle(node.name);
    await copyFile(file, this.store, String(node.ino));
    node.stored = true;
    return file;
  }

  private async dropStored(node: Node): Promise<void> {
    await this.closeData(node);
    await this.store.removeEntry(String(node.ino)).catch((e: unknown) => {
      if (!isNotFound(e)) throw e;
    });
    node.removed = true;
    this.nodes.delete(node.ino);
  }

  /** Moves one entry; a directory moves entry by entry (OPFS directory handles cannot move). */
  private async moveEntry(from: Node, name: string, node: Node, to: Node, newName: string): Promise<void> {
    const src = await this.dirHandle(from);
    const dst = await this.dirHandle(to);
    if (isDir(node)) {
      // Open files below lose their sync handles (a locked file cannot move); they reopen by their new path.
      for (const n of this.nodes.values()) {
        if (n.data && !n.stored && this.isWithin(this.nodes.get(n.parent)!, node)) await this.closeData(n);
      }
      await moveTree(src, name, dst, newName);
      this.moves++;
    } else {
      if (isReg(node) && !node.stored) await this.closeData(node);
      await moveFile((await src.getFileHandle(name)) as OpfsFileHandle, src, name, dst, newName);
    }
    from.children!.delete(name);
    to.children!.set(newName, node.ino);
    if (isDir(node) || !node.stored) {
      node.parent = to.ino;
      node.name = newName;
    }
    if (isDir(node) && from !== to) {
      if (from.subdirs !== undefined) from.subdirs--;
      if (to.subdirs !== undefined) to.subdirs++;
    }
    this.dirty = true;
  }

  /** RENAME_EXCHANGE: a's entry steps aside under a temporary name while b's takes its place. */
  private async exchange(from: Node, a: string, nodeA: Node, to: Node, b: string, nodeB: Node): Promise<void> {
    const aside = `.vfsw-exchange-${nodeA.ino}`;
    await this.moveEntry(from, a, nodeA, from, aside);
    await this.moveEntry(to, b, nodeB, from, a);
    await this.moveEntry(from, aside, nodeA, to, b);
  }

  // ----- file data -----

  private async openNode(node: Node, flags: number): Promise<Handle> {
    const how = openMode(flags);
    if ((flags & O_TRUNC) !== 0 && how.write) {
      await this.withData(node, (d) => d.truncate(0));
      this.modified(node);
    }
    node.opens++;
    return this.handles.add({ kind: "file", node, how });
  }

  /** The node's data, opened on first use (and again after a move closed it). */
  private async data(node: Node): Promise<FileData> {
    if (!node.data) {
      const file = await this.dataFile(node);
      node.data = this.syncAccess ? await SyncData.open(file) : await BufferedData.open(file);
    }
    return node.data;
  }

  /** Runs `fn` on the node's data, closing it after unless a handle keeps it open. */
  private async withData(node: Node, fn: (d: FileData) => Promise<void>): Promise<void> {
    await fn(await this.data(node));
    if (node.opens === 0) await this.closeData(node);
  }

  private async closeData(node: Node): Promise<void> {
    const d = node.data;
    node.data = undefined;
    await d?.close();
  }

  // ----- metadata -----

  /** The file's content changed. */
  private modified(node: Node): void {
    node.mtime = node.ctime = now();
    this.changed(node);
  }

  private touchDir(dir: Node): void {
    dir.mtime = dir.ctime = now();
    this.changed(dir);
  }

  /** The node's metadata changed: save it soon, or sooner if the guest asks for durability. */
  private changed(node: Node): void {
    node.fresh = false;
    this.dirty = true;
    if (this.saveTimer !== undefined || this.closed) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined;
      // A failure here surfaces at the next FSYNC or SYNCFS, which saves again.
      this.serial(() => this.saveIfDirty()).catch(() => {});
    }, this.saveDelayMs);
  }

  private async saveIfDirty(): Promise<void> {
    if (this.dirty) await this.save();
  }

  private async save(): Promise<void> {
    clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    this.dirty = false;
    if (this.capabilities.readOnly) return;
    try {
      await this.meta.save(snapshotOf(this.nodes, this.rootIno, this.nextIno));
    } catch (e) {
      this.dirty = true;
      throw e;
    }
  }

  /**
   * Store files no saved inode owns are left over from a crash; a stored inode whose store file is missing
   * crashed before its data moved, and keeps the data at its name.
   */
  private async collectStore(): Promise<void> {
    const present = new Set<string>();
    for await (const name of this.store.keys()) present.add(name);
    for (const name of present) if (!this.nodes.get(Number(name))?.stored) await this.store.removeEntry(name);
    for (const node of this.nodes.values()) if (node.stored && !present.has(String(node.ino))) node.stored = false;
  }
}

/** True for an error (OPFS's or ours) saying the object is gone. */
function isStale(e: unknown): boolean {
  const err = opfsError(e);
  return err instanceof FsError && err.errno === ESTALE;
}
