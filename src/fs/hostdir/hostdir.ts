// A Node backend serving a host directory, confined to it; read-write unless opened with
// `{ readOnly: true }`.
//
// Confinement: every path is resolved one directory descriptor at a time, never following a host
// symlink (host.ts), and the object found must still be the (st_dev, st_ino) that `lookup` recorded, or
// the inode is stale.
//
// Inode numbers are the backend's own, one per host (st_dev, st_ino), kept for the backend's lifetime:
// host inode numbers alone would collide across mount points inside the tree. Each referenced inode
// remembers its path; a rename moves the paths of everything referenced below it, and an inode whose path
// no longer leads to it is served through one of its open handles while it has any (an unlinked file
// stays readable, writable and stat-able through them).
//
// What the host cannot hold for this process lives in a metadata store (metadata.ts) in the hidden
// directory STORE_DIR at the root (store-dir.ts): extended attributes (Node has no xattr calls), device
// nodes, FIFOs and sockets (kept as empty regular files plus their type and rdev: never made on the host),
// set-id and sticky bits, and, when the process may not chown, owners and modes (owners.ts says how the
// guest's view is made of the host's stat and the store). A record is dropped with the inode's last link.
// Changes reach the store's journal before the request completes and are made durable (fdatasync) by
// fsync, flush and fsyncdir of the inodes they concern, and by syncfs. The guest can neither see STORE_DIR
// nor create, remove or rename anything by that name at the root. Without the store, host objects show
// their host owners and modes unchanged.
//
// What Node cannot do (it has no renameat2, fallocate, SEEK_DATA or xattr calls, and no syncfs):
// - RENAME_NOREPLACE checks that the target is absent, then renames: a host process racing in between can
//   still be replaced. RENAME_EXCHANGE is three renames through a temporary name next to the source
//   (EXCHANGE_PREFIX), undone if the second fails; a crash in between leaves that name visible, never loses
//   an object.
// - fallocate mode 0 extends the size (ftruncate) without reserving space; KEEP_SIZE does nothing;
//   PUNCH_HOLE writes zeros (the range reads as zeros, but stays allocated).
// - lseek SEEK_DATA/SEEK_HOLE sees no holes: the whole file is data, its end the only hole.
// - syncfs fsyncs the open files, the files and directories changed since the last syncfs (through their
//   paths, where those still lead to them), the root and the store.
// - Snapshots (saveState, state.ts) hold references: paths and host identities, reopened by restoreState;
//   an unlinked file kept alive by this process's descriptors cannot be reopened elsewhere and is stale.
// - Times are set through utimes, which takes seconds as a double and keeps microseconds (libuv cuts
//   the rest): a time is stored rounded to the nearest microsecond; ctime cannot be set at all (the host
//   moves it to now on every change, as Linux would).

import { randomBytes } from "node:crypto";
import { constants, type BigIntStats } from "node:fs";
import {
  link,
  lstat,
  mkdir,
  open,
  readdir,
  readlink,
  realpath,
  rename,
  rmdir,
  statfs,
  symlink,
  truncate,
  unlink,
  utimes,
  type FileHandle,
} from "node:fs/promises";
import { EACCES, EBADF, EILSEQ, EINVAL, ENODATA, ENOENT, ENOTDIR, EPERM, ESTALE } from "../../vfs/errno.ts";
import { FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, NAME_MAX, O_EXCL, O_TRUNC, S_IALLUGO, S_IFDIR, S_IFLNK, S_IFREG, SEEK_DATA } from "../../vfs/linux.ts";
import { FsError, type Cred, type DirEntry, type FileAttr, type FileSystem, type FsCapabilities, type Handle, type Ino, type SetAttr, type StatFs, type Timespec } from "../../vfs/filesystem.ts";
import { checkCanRead, checkCanWrite, checkFallocate, checkName, checkOpenType, checkRange, checkReadOnlyAccess, checkReadOnlyOpen, checkRenameFlags, checkRmdir, checkSeek, checkSetAttr, checkSetAttrType, checkSymlinkTarget, checkWritable, checkWriteRange, checkUnlink, checkXattrName, copyLength, getXattr, mknodAttr, newOwner, openMode, removeXattr, renamePlan, setXattr, type OpenMode, type XattrMap } from "../posix.ts";
import { DirStream, HandleTable, InodeTable, type DirListing, type StaleHandle } from "../tables.ts";
import { absentIfENOENT, at, DIR_FLAGS, fdPath, FILE_FLAGS, hostType, PATH_FLAGS, rethrowGone, rethrowHost, walk, writeAll } from "./host.ts";
import { MetadataStore } from "./metadata.ts";
import { Owners, type HostIdentity, type Wanted } from "./owners.ts";
import { readHostState, saveHostState, type HandlePlan } from "./state.ts";
import { StoreDir, STORE_DIR, TMPFILE_PREFIX } from "./store-dir.ts";
import { StateError, type Saved } from "../../vfs/state.ts";

export { STORE_DIR } from "./store-dir.ts";

/** RENAME_EXCHANGE's temporary name for the source, next to it. */
const EXCHANGE_PREFIX = ".virtiofs-web-exchange-";
/** Reads and writes of copies and hole punching go through buffers of at most this size. */
const COPY_CHUNK = 1 << 20;

/** A referenced inode, as last looked up (its path moved along by renames). */
export interface HostInode {
  /** Components from the root. */
  path: readonly string[];
  /** The host object's identity (`keyOf`), checked on every use. */
  key: string;
  /** The file type the guest sees (the store's, for device nodes, FIFOs and sockets). */
  type: number;
  /** The directory it was looked up in (the root's is itself): what ".." lists. */
  parent: Ino;
}

export type HostHandle =
  | { kind: "file"; file: FileHandle; ino: Ino; how: OpenMode; metaKey: string }
  | { kind: "dir"; dir: FileHandle; ino: Ino; stream: DirStream }
  | StaleHandle;

type FileHandleState = Extract<HostHandle, { kind: "file" }>;
type DirHandleState = Extract<HostHandle, { kind: "dir" }>;

export interface HostDirOptions {
  /** Every change fails with EROFS, and nothing is ever written in the directory. */
  readOnly?: boolean;
  /**
   * "host": give host objects the guest's owners with chown (needs root); "metadata": keep them in the
   * store. Default: "host" when running as root.
   */
  ownership?: "host" | "metadata";
}

const UTF8 = new TextDecoder("utf-8", { fatal: true });
const LSTAT_BATCH = 64; // lstats in flight at once while listing a directory

export class HostDirFs implements FileSystem {
  readonly rootIno: Ino = 1;
  readonly capabilities: FsCapabilities;
  private readonly numbers = new Map<string, Ino>();
  private nextIno: Ino = 2;
  // Replaced whole by restoreState.
  private inodes: InodeTable<HostInode>;
  private handles = new HandleTable<HostHandle>();
  /** Open file descriptors per inode: what serves an inode whose path is gone. */
  private readonly opened = new Map<Ino, Set<FileHandle>>();
  /** O_TMPFILE inodes not linked yet: their name in STORE_DIR, and whether `link` may name them. */
  private readonly unnamed = new Map<Ino, { name: string; linkable: boolean }>();
  /** Inodes changed since the last syncfs: files written, directories whose entries changed. */
  private readonly dirty = new Map<Ino, HostInode>();
  private readonly owners: Owners;

  /** Serves the directory at `rootPath` (symlinks in `rootPath` itself are the host's choice and are followed). */
  static async open(rootPath: string, options: HostDirOptions = {}): Promise<HostDirFs> {
    if (process.platform !== "linux") throw new Error("hostdir backend: needs Linux (/proc/self/fd)");
    const readOnly = options.readOnly ?? false;
    const root = await open(await realpath(rootPath), DIR_FLAGS);
    let storeDir: StoreDir | undefined;
    try {
      const st = await root.stat({ bigint: true });
      storeDir = await StoreDir.open(root);
      const store = await MetadataStore.load(storeDir, { readOnly });
      if (!readOnly) await storeDir.removeTmpfiles();
      const ownership = options.ownership ?? (process.getuid?.() === 0 ? "host" : "metadata");
      return new HostDirFs(root, st, storeDir, store, readOnly, ownership === "host");
    } catch (e) {
      await storeDir?.close();
      await root.close();
      throw e;
    }
  }

  private constructor(
    private readonly root: FileHandle,
    rootSt: BigIntStats,
    private readonly storeDir: StoreDir,
    private readonly store: MetadataStore,
    readOnly: boolean,
    chownHost: boolean,
  ) {
    this.capabilities = { readOnly };
    this.owners = new Owners(store, rootSt.dev, chownHost);
    const rootKey = keyOf(rootSt);
    this.numbers.set(rootKey, this.rootIno);
    this.inodes = new InodeTable(this.rootIno, { path: [], key: rootKey, type: S_IFDIR, parent: this.rootIno });
  }

  /** Releases every open handle, makes the store durable and closes the root. The backend is unusable afterwards. */
  async close(): Promise<void> {
    for (const h of this.handles.takeAll()) await (h.kind === "file" ? this.closeFile(h) : h.kind === "dir" ? h.dir.close() : undefined);
    await this.store.sync();
    await this.storeDir.close();
    await this.root.close();
  }

  async lookup(parent: Ino, name: string): Promise<FileAttr> {
    checkName(name);
    if (this.hidden(parent, name)) throw new FsError(ENOENT, name);
    return this.withDir(parent, async (fd, dir) => {
      const st = await lstat(at(fd.fd, name), { bigint: true }).catch(rethrowHost);
      return this.entryOf(parent, dir, name, st);
    });
  }

  async forget(ino: Ino, nlookup: number): Promise<void> {
    this.inodes.forget(ino, nlookup);
  }

  async getattr(ino: Ino): Promise<FileAttr> {
    return this.attr(ino, await this.stat(ino));
  }

  async readlink(ino: Ino): Promise<string> {
    const node = this.inodes.get(ino);
    if (node.type !== S_IFLNK) throw new FsError(EINVAL, `readlink of inode ${ino}`);
    const target = await this.inParent(node, async (fd, name) => {
      checkKey(await lstat(at(fd.fd, name), { bigint: true }).catch(rethrowGone), node);
      return readlink(at(fd.fd, name), { encoding: "buffer" }).catch(rethrowGone);
    });
    try {
      return UTF8.decode(target);
    } catch {
      throw new FsError(EILSEQ, `symlink target of inode ${ino} is not UTF-8`);
    }
  }

  async access(ino: Ino, mask: number): Promise<void> {
    await this.stat(ino);
    if (this.capabilities.readOnly) checkReadOnlyAccess(mask);
  }

  /** Of the filesystem holding the root; mount points inside the tree are not told apart. */
  async statfs(ino: Ino): Promise<StatFs> {
    this.inodes.get(ino);
    const st = await statfs(at(this.root.fd, ".")).catch(rethrowHost);
    return { blocks: st.blocks, bfree: st.bfree, bavail: st.bavail, files: st.files, ffree: st.ffree, bsize: st.bsize, namelen: NAME_MAX, frsize: st.bsize };
  }

  async open(ino: Ino, flags: number): Promise<Handle> {
    const node = this.inodes.get(ino);
    checkOpenType(node.type, ino);
    if (this.capabilities.readOnly) checkReadOnlyOpen(flags);
    const how = openMode(flags);
    const { file, st } = await this.openObject(ino, node, hostFlags(how));
    try {
      if ((flags & O_TRUNC) !== 0) await truncate(fdPath(file), 0).catch(rethrowHost); // O_RDONLY|O_TRUNC truncates too
    } catch (e) {
      await file.close();
      throw e;
    }
    return this.addFile(file, ino, how, st);
  }

  async read(fh: Handle, offset: number, length: number): Promise<Uint8Array> {
    checkRange(offset, length);
    const out = new Uint8Array(length);
    return out.subarray(0, await this.readInto(fh, offset, out));
  }

  async readInto(fh: Handle, offset: number, into: Uint8Array): Promise<number> {
    checkRange(offset, into.length);
    const { file, how } = this.handles.getKind(fh, "file");
    checkCanRead(how, fh);
    let got = 0;
    while (got < into.length) {
      const { bytesRead } = await file.read(into, got, into.length - got, offset + got).catch(rethrowHost);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return got;
  }

  async release(fh: Handle): Promise<void> {
    if (this.handles.get(fh).kind === "stale") return void this.handles.take(fh);
    const h = this.handles.getKind(fh, "file");
    this.handles.take(fh);
    await this.closeFile(h);
  }

  async opendir(ino: Ino): Promise<Handle> {
    const node = this.dirInode(ino);
    const dir = await this.withDir(ino, (fd) => open(at(fd.fd, "."), DIR_FLAGS).catch(rethrowHost));
    return this.handles.add(this.dirHandle(dir, ino, node));
  }

  async readdir(dh: Handle, cookie: number, maxEntries?: number): Promise<DirEntry[]> {
    return this.handles.getKind(dh, "dir").stream.read(cookie, maxEntries);
  }

  async releasedir(dh: Handle): Promise<void> {
    if (this.handles.get(dh).kind === "stale") return void this.handles.take(dh);
    const { dir } = this.handles.getKind(dh, "dir");
    this.handles.take(dh);
    await dir.close();
  }

  async setattr(ino: Ino, a: SetAttr, fh?: Handle): Promise<FileAttr> {
    checkWritable(this.capabilities);
    checkSetAttr(a);
    const handle = fh === undefined ? undefined : this.handles.getKind(fh, "file");
    if (handle !== undefined && handle.ino !== ino) throw new FsError(EBADF, `handle ${fh} is not open on inode ${ino}`);
    return this.onObject(ino, async (fd, st) => {
      const path = fdPath(fd);
      const type = this.owners.typeOf(st);
      checkSetAttrType(type, a, ino);
      if (a.mode !== undefined || a.uid !== undefined || a.gid !== undefined) {
        const mode = a.mode === undefined ? undefined : type | (a.mode & S_IALLUGO);
        st = await this.owners.settle(fd, st, { mode, uid: a.uid, gid: a.gid });
      }
      if (a.size !== undefined) {
        await (handle?.file.truncate(a.size) ?? truncate(path, a.size)).catch(rethrowHost);
        this.markDirty(ino);
        st = await fd.stat({ bigint: true }).catch(rethrowHost);
      }
      if (a.atime !== undefined || a.mtime !== undefined) {
        const now = Date.now() / 1000;
        // Seconds as numeric strings: Node takes a negative number (a time before 1970) for "now".
        const time = (t: Timespec | "now" | undefined, current: bigint): string =>
          String(t === undefined ? utimesSeconds(nsTimespec(current)) : t === "now" ? now : utimesSeconds(t));
        await utimes(path, time(a.atime, st.atimeNs), time(a.mtime, st.mtimeNs)).catch(rethrowHost);
        st = await fd.stat({ bigint: true }).catch(rethrowHost);
      }
      return this.attr(ino, st);
    });
  }

  async mknod(parent: Ino, name: string, mode: number, rdev: number, cred: Cred): Promise<FileAttr> {
    checkWritable(this.capabilities);
    const made = mknodAttr(mode, rdev);
    return this.withNewEntry(parent, name, async (fd, dir, dirSt) => {
      const owner = newOwner(this.owners.dirView(dirSt), cred, made.mode);
      // Every type is an empty regular file on the host; the store says what it is.
      const file = await open(at(fd.fd, name), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | FILE_FLAGS, 0o600).catch(rethrowHost);
      try {
        const st = await this.owners.settle(file, await file.stat({ bigint: true }).catch(rethrowHost), { ...owner, rdev: made.rdev });
        return this.entryOf(parent, dir, name, st);
      } finally {
        await file.close();
      }
    });
  }

  async mkdir(parent: Ino, name: string, mode: number, cred: Cred): Promise<FileAttr> {
    checkWritable(this.capabilities);
    return this.withNewEntry(parent, name, async (fd, dir, dirSt) => {
      const owner = newOwner(this.owners.dirView(dirSt), cred, S_IFDIR | (mode & S_IALLUGO));
      await mkdir(at(fd.fd, name), 0o700).catch(rethrowHost);
      return this.settleNew(fd, name, parent, dir, owner);
    });
  }

  async symlink(parent: Ino, name: string, target: string, cred: Cred): Promise<FileAttr> {
    checkWritable(this.capabilities);
    checkSymlinkTarget(target);
    return this.withNewEntry(parent, name, async (fd, dir, dirSt) => {
      const { uid, gid } = newOwner(this.owners.dirView(dirSt), cred, S_IFLNK | 0o777);
      await symlink(target, at(fd.fd, name)).catch(rethrowHost);
      return this.settleNew(fd, name, parent, dir, { uid, gid });
    });
  }

  async link(ino: Ino, newParent: Ino, newName: string): Promise<FileAttr> {
    checkWritable(this.capabilities);
    const node = this.inodes.get(ino);
    if (node.type === S_IFDIR) throw new FsError(EPERM, `link of directory inode ${ino}`);
    const unnamed = this.unnamed.get(ino);
    if (unnamed?.linkable === false) throw new FsError(ENOENT, `O_TMPFILE inode ${ino} was opened with O_EXCL`);
    return this.withNewEntry(newParent, newName, async (fd, dir) => {
      const st = await this.inParent(node, async (src, srcName) => {
        checkKey(await lstat(at(src.fd, srcName), { bigint: true }).catch(rethrowGone), node);
        await link(at(src.fd, srcName), at(fd.fd, newName)).catch(rethrowHost);
        // An O_TMPFILE inode's name in the store was never a name of the guest's.
        if (unnamed !== undefined) await unlink(at(src.fd, srcName)).catch(rethrowHost);
        return lstat(at(fd.fd, newName), { bigint: true }).catch(rethrowHost);
      });
      this.unnamed.delete(ino);
      return this.entryOf(newParent, dir, newName, st);
    });
  }

  async unlink(parent: Ino, name: string): Promise<void> {
    checkWritable(this.capabilities);
    checkName(name);
    if (this.hidden(parent, name)) throw new FsError(ENOENT, name);
    await this.withDir(parent, async (fd, dir) => {
      const st = await lstat(at(fd.fd, name), { bigint: true }).catch(rethrowHost);
      checkUnlink({ type: this.owners.typeOf(st) }, name);
      await unlink(at(fd.fd, name)).catch(rethrowHost);
      this.dirty.set(parent, dir);
      if (st.nlink === 1n) await this.dropMeta(st);
    });
  }

  async rmdir(parent: Ino, name: string): Promise<void> {
    checkWritable(this.capabilities);
    checkName(name);
    if (this.hidden(parent, name)) throw new FsError(ENOENT, name);
    await this.withDir(parent, async (fd, dir) => {
      const st = await lstat(at(fd.fd, name), { bigint: true }).catch(rethrowHost);
      checkRmdir({ type: this.owners.typeOf(st) }, name); // the host's rmdir refuses a non-empty directory itself
      await rmdir(at(fd.fd, name)).catch(rethrowHost);
      this.dirty.set(parent, dir);
      await this.dropMeta(st);
    });
  }

  async rename(parent: Ino, name: string, newParent: Ino, newName: string, flags: number): Promise<void> {
    checkWritable(this.capabilities);
    checkRenameFlags(flags);
    checkName(name);
    checkName(newName);
    if (this.hidden(parent, name)) throw new FsError(ENOENT, name);
    if (this.hidden(newParent, newName)) throw new FsError(EPERM, `${newName} is reserved`);
    await this.withDir(parent, (from, fromDir) =>
      this.withDir(newParent, async (to, toDir) => {
        const src = await lstat(at(from.fd, name), { bigint: true }).catch(rethrowHost);
        const dst = await lstat(at(to.fd, newName), { bigint: true }).catch(absentIfENOENT);
        const srcPath = [...fromDir.path, name];
        const dstPath = [...toDir.path, newName];
        // The host's rename refuses a non-empty directory as the target itself.
        const plan = renamePlan({
          flags,
          from: fromDir.path,
          to: toDir.path,
          src: { type: this.owners.typeOf(src), at: srcPath },
          dst: dst && { type: this.owners.typeOf(dst), at: dstPath },
          same: dst !== undefined && keyOf(dst) === keyOf(src),
          within: startsWith,
        });
        if (plan === "none") return;
        if (plan === "exchange") await exchange(from, name, to, newName);
        else {
          await rename(at(from.fd, name), at(to.fd, newName)).catch(rethrowHost);
          if (dst !== undefined && (hostType(dst) === S_IFDIR || dst.nlink === 1n)) await this.dropMeta(dst);
        }
        this.moved(srcPath, dstPath, newParent, plan === "exchange" ? parent : undefined);
        this.dirty.set(parent, fromDir);
        this.dirty.set(newParent, toDir);
      }),
    );
  }

  async create(parent: Ino, name: string, mode: number, flags: number, cred: Cred): Promise<{ attr: FileAttr; fh: Handle }> {
    checkWritable(this.capabilities);
    const how = openMode(flags);
    return this.withNewEntry(parent, name, async (fd, dir, dirSt) => {
      const owner = newOwner(this.owners.dirView(dirSt), cred, S_IFREG | (mode & S_IALLUGO));
      let file: FileHandle;
      let created = true;
      try {
        file = await open(at(fd.fd, name), hostFlags(how) | FILE_FLAGS | constants.O_CREAT | constants.O_EXCL, 0o600);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST" || (flags & O_EXCL) !== 0) return rethrowHost(e);
        file = await open(at(fd.fd, name), hostFlags(how) | FILE_FLAGS).catch(rethrowHost);
        created = false;
      }
      try {
        let st = await file.stat({ bigint: true }).catch(rethrowHost);
        if (created) st = await this.owners.settle(file, st, owner);
        else {
          checkOpenType(this.owners.typeOf(st), this.number(st));
          if ((flags & O_TRUNC) !== 0) {
            await truncate(fdPath(file), 0).catch(rethrowHost);
            st = await file.stat({ bigint: true }).catch(rethrowHost);
          }
        }
        const attr = this.entryOf(parent, dir, name, st);
        return { attr, fh: this.addFile(file, attr.ino, how, st) };
      } catch (e) {
        await file.close();
        throw e;
      }
    });
  }

  async tmpfile(parent: Ino, mode: number, flags: number, cred: Cred): Promise<{ attr: FileAttr; fh: Handle }> {
    checkWritable(this.capabilities);
    const how = openMode(flags);
    if (!how.write) throw new FsError(EINVAL, "O_TMPFILE without write access");
    return this.withDir(parent, async (_, __, dirSt) => {
      const owner = newOwner(this.owners.dirView(dirSt), cred, S_IFREG | (mode & S_IALLUGO));
      // Node cannot link an O_TMPFILE descriptor (linkat AT_EMPTY_PATH), so the inode gets a name in the
      // store until `link` gives it one of the guest's, and reports the nlink of 0 it has for the guest.
      const name = TMPFILE_PREFIX + randomBytes(8).toString("hex");
      const store = await this.storeDir.directory();
      const file = await open(at(store.fd, name), hostFlags(how) | FILE_FLAGS | constants.O_CREAT | constants.O_EXCL, 0o600).catch(rethrowHost);
      try {
        const st = await this.owners.settle(file, await file.stat({ bigint: true }).catch(rethrowHost), owner);
        const ino = this.number(st);
        this.inodes.ref(ino, { path: [STORE_DIR, name], key: keyOf(st), type: S_IFREG, parent });
        this.unnamed.set(ino, { name, linkable: (flags & O_EXCL) === 0 });
        return { attr: this.attr(ino, st), fh: this.addFile(file, ino, how, st) };
      } catch (e) {
        await file.close();
        throw e;
      }
    });
  }

  async write(fh: Handle, offset: number, data: Uint8Array): Promise<number> {
    checkWritable(this.capabilities);
    checkRange(offset, data.length);
    const { file, how, ino } = this.handles.getKind(fh, "file");
    checkCanWrite(how, fh);
    if (!how.append) checkWriteRange(offset, data.length);
    // With O_APPEND the host puts every write at the end (pwrite included); the position is then moot.
    await writeAll(file, data, how.append ? null : offset);
    this.markDirty(ino);
    return data.length;
  }

  async fsync(fh: Handle, datasync: boolean): Promise<void> {
    const { file, metaKey } = this.handles.getKind(fh, "file");
    await (datasync ? file.datasync() : file.sync()).catch(rethrowHost);
    if (this.store.hasUnsynced(metaKey)) await this.store.sync();
  }

  /** Data goes to the host at once; only the inode's metadata may still need making durable. */
  async flush(fh: Handle): Promise<void> {
    const { metaKey } = this.handles.getKind(fh, "file");
    if (this.store.hasUnsynced(metaKey)) await this.store.sync();
  }

  async fsyncdir(dh: Handle): Promise<void> {
    await this.handles.getKind(dh, "dir").dir.sync().catch(rethrowHost);
    if (this.store.hasUnsynced()) await this.store.sync();
  }

  async syncfs(): Promise<void> {
    for (const h of this.handles.values()) if (h.kind !== "stale") await (h.kind === "file" ? h.file : h.dir).sync().catch(rethrowHost);
    for (const [ino, node] of this.dirty) {
      this.dirty.delete(ino);
      await this.syncPath(node);
    }
    await this.root.sync().catch(rethrowHost);
    await this.store.sync();
  }

  async fallocate(fh: Handle, mode: number, offset: number, length: number): Promise<void> {
    checkWritable(this.capabilities);
    const { file, how, ino } = this.handles.getKind(fh, "file");
    checkFallocate(mode, offset, length);
    checkCanWrite(how, fh);
    const size = Number((await file.stat({ bigint: true }).catch(rethrowHost)).size);
    if ((mode & FALLOC_FL_PUNCH_HOLE) !== 0) {
      const end = Math.min(offset + length, size);
      if (end <= offset) return;
      // Positional writes on an O_APPEND descriptor would append: punch through a plain one.
      const out = how.append ? await open(fdPath(file), constants.O_WRONLY).catch(rethrowHost) : file;
      try {
        const zeros = new Uint8Array(Math.min(COPY_CHUNK, end - offset));
        for (let at = offset; at < end; at += zeros.length) await writeAll(out, zeros.subarray(0, Math.min(zeros.length, end - at)), at);
      } finally {
        if (out !== file) await out.close();
      }
    } else if ((mode & FALLOC_FL_KEEP_SIZE) === 0 && offset + length > size) await file.truncate(offset + length).catch(rethrowHost);
    this.markDirty(ino);
  }

  /** The host's holes are invisible to Node: the whole file is data (see the top of this file). */
  async lseek(fh: Handle, offset: number, whence: number): Promise<number> {
    const size = Number((await this.handles.getKind(fh, "file").file.stat({ bigint: true }).catch(rethrowHost)).size);
    checkSeek(offset, whence, size);
    return whence === SEEK_DATA ? offset : size;
  }

  async copyFileRange(fhIn: Handle, offIn: number, fhOut: Handle, offOut: number, length: number): Promise<number> {
    checkWritable(this.capabilities);
    const src = this.handles.getKind(fhIn, "file");
    const dst = this.handles.getKind(fhOut, "file");
    const size = Number((await src.file.stat({ bigint: true }).catch(rethrowHost)).size);
    const n = copyLength({ how: src.how, size, offset: offIn }, { how: dst.how, offset: offOut }, length, src.ino === dst.ino);
    const buf = new Uint8Array(Math.min(n, COPY_CHUNK));
    let done = 0;
    while (done < n) {
      const { bytesRead } = await src.file.read(buf, 0, Math.min(buf.length, n - done), offIn + done).catch(rethrowHost);
      if (bytesRead === 0) break; // the source shrank meanwhile
      await writeAll(dst.file, buf.subarray(0, bytesRead), offOut + done);
      done += bytesRead;
    }
    this.markDirty(dst.ino);
    return done;
  }

  async getxattr(ino: Ino, name: string): Promise<Uint8Array> {
    return getXattr(this.owners.get(await this.stat(ino))?.xattrs, name);
  }

  async setxattr(ino: Ino, name: string, value: Uint8Array, flags: number): Promise<void> {
    checkWritable(this.capabilities);
    await this.changeXattrs(ino, (xattrs) => setXattr(xattrs, name, value, flags));
  }

  async listxattr(ino: Ino): Promise<string[]> {
    return [...(this.owners.get(await this.stat(ino))?.xattrs?.keys() ?? [])];
  }

  async removexattr(ino: Ino, name: string): Promise<void> {
    checkWritable(this.capabilities);
    // Every xattr lives in the store: a name it lacks is absent without opening the object (the server
    // asks after every write, to drop file capabilities).
    if (!this.owners.get(identityOf(this.inodes.get(ino).key))?.xattrs?.has(name)) {
      checkXattrName(name);
      throw new FsError(ENODATA, name);
    }
    await this.changeXattrs(ino, (xattrs) => removeXattr(xattrs, name));
  }

  // ----- snapshots (state.ts) -----

  async saveState(): Promise<Saved> {
    await this.store.sync(); // file data reached the host with each write; the store's journal may be behind
    const { nextIno, numbers, inodes, unnamed, handles } = this;
    return saveHostState({ nextIno, numbers, inodes, unnamed, handles }, this.rootIno);
  }

  async restoreState(state: Saved): Promise<void> {
    if (this.handles.values().length > 0 || this.inodes.values().length > 1) throw new Error("restoreState needs a freshly opened backend");
    const s = readHostState(state, this.rootIno, this.inodes.get(this.rootIno));
    if (this.capabilities.readOnly && s.handles.values().some((h) => h.kind === "file" && h.how.write)) throw new StateError("a handle open for writing on a read-only share");
    const opened = new Map<Ino, Set<FileHandle>>();
    this.handles = await s.handles.map(
      (plan) => this.reopen(plan, s.inodes, opened),
      async (h) => {
        if (h.kind !== "stale") await (h.kind === "file" ? h.file : h.dir).close();
      },
    );
    this.inodes = s.inodes;
    this.nextIno = s.nextIno;
    for (const [key, ino] of s.numbers) this.numbers.set(key, ino);
    for (const [ino, files] of opened) this.opened.set(ino, files);
    for (const [ino, unnamed] of s.unnamed) this.unnamed.set(ino, unnamed);
  }

  /** A saved handle reopened through its inode's path, or stale if that no longer leads to the same object. */
  private async reopen(h: HandlePlan, inodes: InodeTable<HostInode>, opened: Map<Ino, Set<FileHandle>>): Promise<HostHandle> {
    const node = h.kind === "stale" ? undefined : inodes.peek(h.ino);
    if (h.kind === "stale" || node === undefined) return { kind: "stale" };
    try {
      if (h.kind === "file") {
        const { file, st } = await this.openObject(h.ino, node, hostFlags(h.how));
        if (hostType(st) === S_IFREG) return this.fileHandle(opened, file, h.ino, h.how, st);
        await file.close(); // a state naming a directory's identity for a file handle
        return { kind: "stale" };
      }
      const dir = await this.onDir(node, (fd) => open(at(fd.fd, "."), DIR_FLAGS).catch(rethrowHost));
      return this.dirHandle(dir, h.ino, node, h.listing);
    } catch (e) {
      if (e instanceof FsError && e.errno === ESTALE) return { kind: "stale" };
      throw e;
    }
  }

  private changeXattrs(ino: Ino, change: (xattrs: XattrMap) => void): Promise<void> {
    return this.onObject(ino, (fd, st) => this.owners.changeXattrs(fd, st, change));
  }

  /** Names that are not UTF-8 cannot cross the interface and are left out; so are entries gone before their lstat. */
  private async list(dir: FileHandle, ino: Ino, parent: Ino): Promise<DirListing> {
    const names = await readdir(at(dir.fd, "."), { encoding: "buffer" }).catch(rethrowHost);
    const entries: DirListing = [
      { name: ".", ino, type: S_IFDIR },
      { name: "..", ino: parent, type: S_IFDIR },
    ];
    for (let i = 0; i < names.length; i += LSTAT_BATCH) {
      const batch = await Promise.all(names.slice(i, i + LSTAT_BATCH).map((raw) => this.entry(dir, ino, raw)));
      for (const entry of batch) if (entry !== undefined) entries.push(entry);
    }
    return entries;
  }

  private async entry(dir: FileHandle, ino: Ino, raw: Buffer): Promise<Omit<DirEntry, "off"> | undefined> {
    let name: string;
    try {
      name = UTF8.decode(raw);
    } catch {
      return undefined;
    }
    if (this.hidden(ino, name)) return undefined;
    const st = await lstat(at(dir.fd, name), { bigint: true }).catch(absentIfENOENT);
    return st === undefined ? undefined : { name, ino: this.number(st), type: this.owners.typeOf(st) };
  }

  /** The attributes of `name` in `dir`, counting one reference to its inode. */
  private entryOf(parent: Ino, dir: HostInode, name: string, st: BigIntStats): FileAttr {
    const ino = this.number(st);
    this.inodes.ref(ino, { path: [...dir.path, name], key: keyOf(st), type: this.owners.typeOf(st), parent });
    return this.attr(ino, st);
  }

  /** What the guest sees: the host's stat overlaid with the store's record. */
  private attr(ino: Ino, st: BigIntStats): FileAttr {
    const meta = this.owners.get(st);
    let nlink = Number(st.nlink);
    if (ino === this.rootIno && this.storeDir.exists) nlink--; // STORE_DIR's ".."
    if (this.unnamed.has(ino)) nlink--; // its name in the store
    return {
      ino,
      mode: meta?.mode ?? Number(st.mode),
      nlink,
      uid: meta?.uid ?? Number(st.uid),
      gid: meta?.gid ?? Number(st.gid),
      rdev: meta?.rdev ?? Number(st.rdev),
      size: Number(st.size),
      blocks: Number(st.blocks),
      blksize: Number(st.blksize),
      atime: timespec(st.atimeNs),
      mtime: timespec(st.mtimeNs),
      ctime: timespec(st.ctimeNs),
    };
  }

  /** Finishes a directory or symlink just made as `name` in `fd`: its guest owner and mode, its reference. */
  private async settleNew(fd: FileHandle, name: string, parent: Ino, dir: HostInode, want: Wanted): Promise<FileAttr> {
    const obj = await open(at(fd.fd, name), PATH_FLAGS).catch(rethrowHost);
    try {
      const st = await this.owners.settle(obj, await obj.stat({ bigint: true }).catch(rethrowHost), want);
      return this.entryOf(parent, dir, name, st);
    } finally {
      await obj.close();
    }
  }

  /**
   * An object lost its last name: a new object the host gives its inode number must get a new number here
   * too, and its record goes, unless it is open (then its last release drops it).
   */
  private async dropMeta(st: BigIntStats): Promise<void> {
    const ino = this.numbers.get(keyOf(st));
    this.numbers.delete(keyOf(st));
    if (ino !== undefined && this.opened.has(ino)) return;
    await this.store.delete(this.owners.key(st));
  }

  /** After a rename of `from` to `to` (or their exchange), the referenced inodes below them follow. */
  private moved(from: readonly string[], to: readonly string[], toParent: Ino, exchangedParent: Ino | undefined): void {
    for (const node of this.inodes.values()) {
      if (startsWith(node.path, from)) {
        node.path = [...to, ...node.path.slice(from.length)];
        if (node.path.length === to.length) node.parent = toParent;
      } else if (exchangedParent !== undefined && startsWith(node.path, to)) {
        node.path = [...from, ...node.path.slice(to.length)];
        if (node.path.length === from.length) node.parent = exchangedParent;
      }
    }
  }

  private markDirty(ino: Ino): void {
    const node = this.inodes.peek(ino);
    if (node !== undefined) this.dirty.set(ino, node);
  }

  /** fsync through the path, if it still leads to the inode (otherwise there is nothing left to sync). */
  private async syncPath(node: HostInode): Promise<void> {
    if (node.path.length === 0) return; // the root is synced last anyway
    const flags = node.type === S_IFDIR ? DIR_FLAGS : constants.O_RDONLY | FILE_FLAGS;
    let fd: FileHandle;
    try {
      fd = await this.inParent(node, (dir, name) => open(at(dir.fd, name), flags).catch(rethrowGone));
    } catch (e) {
      if (e instanceof FsError && (e.errno === ESTALE || e.errno === EACCES)) return;
      throw e;
    }
    try {
      if (keyOf(await fd.stat({ bigint: true }).catch(rethrowHost)) === node.key) await fd.sync().catch(rethrowHost);
    } finally {
      await fd.close();
    }
  }

  /**
   * Closes a released handle's descriptor. The last one of an inode without names takes its record (and an
   * unnamed O_TMPFILE's file) along, while the descriptor still keeps the host from reusing its number.
   */
  private async closeFile(h: FileHandleState): Promise<void> {
    const open = this.opened.get(h.ino);
    open?.delete(h.file);
    try {
      if (open === undefined || open.size > 0) return;
      this.opened.delete(h.ino);
      const unnamed = this.unnamed.get(h.ino);
      if (unnamed !== undefined) {
        this.unnamed.delete(h.ino);
        await unlink(at((await this.storeDir.directory()).fd, unnamed.name)).catch(rethrowHost);
      }
      if (unnamed !== undefined || (await h.file.stat({ bigint: true }).catch(rethrowHost)).nlink === 0n) await this.store.delete(h.metaKey);
    } finally {
      await h.file.close();
    }
  }

  private addFile(file: FileHandle, ino: Ino, how: OpenMode, st: BigIntStats): Handle {
    return this.handles.add(this.fileHandle(this.opened, file, ino, how, st));
  }

  /** A file handle's value, its descriptor counted in `opened` (the backend's, or restoreState's new one). */
  private fileHandle(opened: Map<Ino, Set<FileHandle>>, file: FileHandle, ino: Ino, how: OpenMode, st: BigIntStats): HostHandle {
    let open = opened.get(ino);
    if (open === undefined) opened.set(ino, (open = new Set()));
    open.add(file);
    return { kind: "file", file, ino, how, metaKey: this.owners.key(st) };
  }

  private dirHandle(dir: FileHandle, ino: Ino, node: HostInode, listing?: DirListing): DirHandleState {
    return { kind: "dir", dir, ino, stream: new DirStream(() => this.list(dir, ino, node.parent), listing) };
  }

  /** One of the inode's open descriptors, if it has any. */
  private openFileOf(ino: Ino): FileHandle | undefined {
    return this.opened.get(ino)?.values().next().value;
  }

  /** Opens the inode's object through its path, or, once that no longer leads to it, through an open descriptor of it. */
  private async openObject(ino: Ino, node: HostInode, flags: number): Promise<{ file: FileHandle; st: BigIntStats }> {
    try {
      const file = await this.inParent(node, (fd, name) => open(at(fd.fd, name), flags | FILE_FLAGS).catch(rethrowGone));
      const st = await file.stat({ bigint: true }).catch(async (e: unknown) => {
        await file.close();
        return rethrowHost(e);
      });
      if (keyOf(st) === node.key) return { file, st };
      await file.close();
    } catch (e) {
      if (!(e instanceof FsError && e.errno === ESTALE)) throw e;
    }
    const held = this.openFileOf(ino);
    if (held === undefined) throw new FsError(ESTALE, `/${node.path.join("/")} no longer leads to inode ${ino}`);
    // /proc/self/fd/<fd> reopens exactly the object the descriptor holds, named or not.
    const file = await open(fdPath(held), flags & ~constants.O_NOFOLLOW).catch(rethrowHost);
    return { file, st: await file.stat({ bigint: true }).catch(rethrowHost) };
  }

  /** Runs `use` on an O_PATH descriptor of the inode's object (the root's own for the root) and its stat. */
  private async onObject<R>(ino: Ino, use: (fd: FileHandle, st: BigIntStats) => Promise<R>): Promise<R> {
    const node = this.inodes.get(ino);
    if (node.path.length === 0) return use(this.root, await this.root.stat({ bigint: true }).catch(rethrowHost));
    const { file, st } = await this.openObject(ino, node, PATH_FLAGS);
    try {
      return await use(file, st);
    } finally {
      await file.close();
    }
  }

  /** lstat of the inode's object, which must still be the one looked up (or be open). */
  private async stat(ino: Ino): Promise<BigIntStats> {
    const node = this.inodes.get(ino);
    if (node.path.length === 0) return this.root.stat({ bigint: true }).catch(rethrowHost);
    try {
      const st = await this.inParent(node, (fd, name) => lstat(at(fd.fd, name), { bigint: true }).catch(rethrowGone));
      checkKey(st, node);
      return st;
    } catch (e) {
      const held = this.openFileOf(ino);
      if (!(e instanceof FsError && e.errno === ESTALE) || held === undefined) throw e;
      return held.stat({ bigint: true }).catch(rethrowHost);
    }
  }

  private number(st: BigIntStats): Ino {
    const key = keyOf(st);
    let ino = this.numbers.get(key);
    if (ino === undefined) {
      ino = this.nextIno++;
      this.numbers.set(key, ino);
    }
    return ino;
  }

  /** STORE_DIR at the root is no name of the guest's. */
  private hidden(parent: Ino, name: string): boolean {
    return parent === this.rootIno && name === STORE_DIR;
  }

  private dirInode(ino: Ino): HostInode {
    const node = this.inodes.get(ino);
    if (node.type !== S_IFDIR) throw new FsError(ENOTDIR, `inode ${ino} is not a directory`);
    return node;
  }

  /** Runs `use` on the directory inode `parent`, checked to still be itself, with its stat. */
  private withDir<R>(parent: Ino, use: (fd: FileHandle, dir: HostInode, st: BigIntStats) => Promise<R>): Promise<R> {
    return this.onDir(this.dirInode(parent), use);
  }

  private onDir<R>(dir: HostInode, use: (fd: FileHandle, dir: HostInode, st: BigIntStats) => Promise<R>): Promise<R> {
    return walk(this.root, dir.path, async (fd) => {
      const st = await fd.stat({ bigint: true }).catch(rethrowHost);
      checkKey(st, dir);
      return use(fd, dir, st);
    });
  }

  /** `withDir` for making a new entry `name` (EPERM for the store's name). */
  private withNewEntry<R>(parent: Ino, name: string, use: (fd: FileHandle, dir: HostInode, st: BigIntStats) => Promise<R>): Promise<R> {
    checkName(name);
    if (this.hidden(parent, name)) throw new FsError(EPERM, `${name} is reserved`);
    return this.withDir(parent, async (fd, dir, st) => {
      const result = await use(fd, dir, st);
      this.dirty.set(parent, dir);
      return result;
    });
  }

  /** Runs `use` on the directory holding the (non-root) inode's last path component, and that component. */
  private inParent<R>(node: HostInode, use: (dir: FileHandle, name: string) => Promise<R>): Promise<R> {
    const name = node.path.at(-1);
    if (name === undefined) throw new FsError(EINVAL, "the root has no parent");
    return walk(this.root, node.path.slice(0, -1), (dir) => use(dir, name));
  }

}

/** RENAME_EXCHANGE as three renames through a temporary name next to the source (see the top of this file). */
async function exchange(from: FileHandle, name: string, to: FileHandle, newName: string): Promise<void> {
  const tmp = EXCHANGE_PREFIX + randomBytes(8).toString("hex");
  await rename(at(from.fd, name), at(from.fd, tmp)).catch(rethrowHost);
  try {
    await rename(at(to.fd, newName), at(from.fd, name));
  } catch (e) {
    await rename(at(from.fd, tmp), at(from.fd, name)).catch(rethrowHost);
    return rethrowHost(e);
  }
  await rename(at(from.fd, tmp), at(to.fd, newName)).catch(rethrowHost);
}

/**
 * A host object's identity: device and inode number, and the birth time where the host filesystem keeps
 * one, so that an inode number the host reuses for a new object is a new identity.
 */
function keyOf(st: BigIntStats): string {
  return `${st.dev}:${st.ino}:${st.birthtimeNs}`;
}

/** keyOf's fields back. */
function identityOf(key: string): HostIdentity {
  const [dev, ino, birthtimeNs] = key.split(":").map(BigInt);
  return { dev: dev!, ino: ino!, birthtimeNs: birthtimeNs! };
}

function startsWith(path: readonly string[], prefix: readonly string[]): boolean {
  return prefix.length <= path.length && prefix.every((c, i) => path[i] === c);
}

function checkKey(st: BigIntStats, node: HostInode): void {
  if (keyOf(st) !== node.key) throw new FsError(ESTALE, `/${node.path.join("/")} was replaced`);
}

function timespec(ns: bigint): Timespec {
  let sec = ns / 1_000_000_000n; // truncates toward zero: fix up times before 1970
  let nsec = ns % 1_000_000_000n;
  if (nsec < 0n) {
    sec -= 1n;
    nsec += 1_000_000_000n;
  }
  return { sec: Number(sec), nsec: Number(nsec) };
}

function hostFlags(how: OpenMode): number {
  const access = how.read && how.write ? constants.O_RDWR : how.write ? constants.O_WRONLY : constants.O_RDONLY;
  return access | (how.append ? constants.O_APPEND : 0);
}

/**
 * A time as the seconds utimes takes, to the nearest microsecond: libuv truncates the double to whole
 * microseconds, and sec + nsec/1e9 is often a hair below the value (100000000.1 s read back as .099999).
 * Half a microsecond away from zero makes the truncation land on the microsecond meant.
 */
export function utimesSeconds({ sec, nsec }: Timespec): number {
  const us = Math.round(nsec / 1000);
  const value = sec + us / 1e6;
  return value + (value < 0 ? -5e-7 : 5e-7);
}

const nsTimespec = (ns: bigint): Timespec => ({ sec: Number(ns / 1_000_000_000n), nsec: Number(ns % 1_000_000_000n) });
