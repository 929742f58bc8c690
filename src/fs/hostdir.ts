// A Node backend serving a host directory, read-only for now, confined to that directory.
//
// Confinement: Node has no openat(), so every path is resolved as a chain of directory file descriptors.
// The root is held open; each step opens "/proc/self/fd/<dir fd>/<name>" with O_DIRECTORY|O_NOFOLLOW,
// which Linux resolves relative to exactly the directory that fd holds, whatever was renamed meanwhile,
// and fails on a symlink instead of following it. The last component is then reached the same way
// (lstat, readlink, open with O_NOFOLLOW|O_NONBLOCK), and the object found must still be the (st_dev,
// st_ino) that `lookup` recorded, or the inode is stale. A host symlink is only ever read with readlink;
// the guest sees it as a symlink and resolves it in its own namespace. Names are single components
// (`checkName`): never "..", never "/". This needs Linux's /proc. The price is one open per path
// component per call; caching directory descriptors is the next step if measurements ask for it.
//
// Inode numbers are the backend's own, one per host (st_dev, st_ino), kept for the backend's lifetime:
// host inode numbers alone would collide across mount points inside the tree.
//
// Owners: uid and gid are reported as the host's numbers, unmapped. With default_permissions the guest
// kernel checks them against its own users (the guest's root passes every check); the host still applies
// its own permissions to this process, which show up in the guest as EACCES. The write side will have to
// decide how guest ids map onto files this process creates (it cannot chown as an unprivileged user).

import { constants, type BigIntStats } from "node:fs";
import { lstat, open, readdir, readlink, realpath, statfs, type FileHandle } from "node:fs/promises";
import { EBADF, EILSEQ, EINVAL, ENOTDIR, ESTALE, errnoFromCode } from "./errno.ts";
import {
  checkName,
  checkOpenType,
  checkRange,
  checkReadOnlyAccess,
  checkReadOnlyOpen,
  DirStream,
  FsError,
  HandleTable,
  InodeTable,
  NAME_MAX,
  S_IFDIR,
  S_IFLNK,
  S_IFMT,
  type DirEntry,
  type DirListing,
  type FileAttr,
  type FileSystem,
  type FsCapabilities,
  type Handle,
  type Ino,
  type StatFs,
  type Timespec,
} from "./filesystem.ts";

const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
// O_NONBLOCK: a FIFO swapped in for a regular file must not hang the open (the identity check then rejects it).
const FILE_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** A referenced inode, as last looked up. */
interface HostInode {
  /** Components from the root. */
  path: readonly string[];
  /** `${st_dev}:${st_ino}`, checked on every use. */
  key: string;
  type: number;
  /** The directory it was looked up in (the root's is itself): what ".." lists. */
  parent: Ino;
}

type HostHandle = { kind: "file"; file: FileHandle } | { kind: "dir"; dir: FileHandle; stream: DirStream };

const UTF8 = new TextDecoder("utf-8", { fatal: true });
const LSTAT_BATCH = 64; // lstats in flight at once while listing a directory

export class HostDirFs implements FileSystem {
  readonly rootIno: Ino = 1;
  readonly capabilities: FsCapabilities = { readOnly: true };
  private readonly numbers = new Map<string, Ino>();
  private nextIno: Ino = 2;
  private readonly inodes: InodeTable<HostInode>;
  private readonly handles = new HandleTable<HostHandle>();

  /** Serves the directory at `rootPath` (symlinks in `rootPath` itself are the host's choice and are followed). */
  static async open(rootPath: string): Promise<HostDirFs> {
    if (process.platform !== "linux") throw new Error("hostdir backend: needs Linux (/proc/self/fd)");
    const root = await open(await realpath(rootPath), DIR_FLAGS);
    try {
      return new HostDirFs(root, keyOf(await root.stat({ bigint: true })));
    } catch (e) {
      await root.close();
      throw e;
    }
  }

  private constructor(
    private readonly root: FileHandle,
    rootKey: string,
  ) {
    this.numbers.set(rootKey, this.rootIno);
    this.inodes = new InodeTable(this.rootIno, { path: [], key: rootKey, type: S_IFDIR, parent: this.rootIno });
  }

  /** Closes every open handle and the root. The backend is unusable afterwards. */
  async close(): Promise<void> {
    for (const h of this.handles.takeAll()) await (h.kind === "file" ? h.file : h.dir).close();
    await this.root.close();
  }

  async lookup(parent: Ino, name: string): Promise<FileAttr> {
    checkName(name);
    const dir = this.dirInode(parent);
    const st = await this.inDir(dir.path, async (fd) => {
      await checkIdentity(fd, dir);
      return lstat(at(fd.fd, name), { bigint: true }).catch(rethrowHost);
    });
    const ino = this.number(st);
    this.inodes.ref(ino, { path: [...dir.path, name], key: keyOf(st), type: Number(st.mode) & S_IFMT, parent });
    return attrOf(ino, st);
  }

  async forget(ino: Ino, nlookup: number): Promise<void> {
    this.inodes.forget(ino, nlookup);
  }

  async getattr(ino: Ino): Promise<FileAttr> {
    return attrOf(ino, await this.stat(this.inodes.get(ino)));
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
    await this.stat(this.inodes.get(ino));
    checkReadOnlyAccess(mask);
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
    checkReadOnlyOpen(flags);
    const file = await this.inParent(node, (fd, name) => open(at(fd.fd, name), FILE_FLAGS).catch(rethrowGone));
    try {
      checkKey(await file.stat({ bigint: true }), node);
    } catch (e) {
      await file.close();
      throw e;
    }
    return this.handles.add({ kind: "file", file });
  }

  async read(fh: Handle, offset: number, length: number): Promise<Uint8Array> {
    checkRange(offset, length);
    const { file } = this.fileHandle(fh);
    const out = new Uint8Array(length);
    let got = 0;
    while (got < length) {
      const { bytesRead } = await file.read(out, got, length - got, offset + got).catch(rethrowHost);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return out.subarray(0, got);
  }

  async release(fh: Handle): Promise<void> {
    const { file } = this.fileHandle(fh);
    this.handles.take(fh);
    await file.close();
  }

  async opendir(ino: Ino): Promise<Handle> {
    const node = this.dirInode(ino);
    const dir = await this.inDir(node.path, async (fd) => {
      await checkIdentity(fd, node);
      return open(at(fd.fd, "."), DIR_FLAGS).catch(rethrowHost);
    });
    return this.handles.add({ kind: "dir", dir, stream: new DirStream(() => this.list(dir, ino, node.parent)) });
  }

  async readdir(dh: Handle, cookie: number, maxEntries?: number): Promise<DirEntry[]> {
    return this.dirHandle(dh).stream.read(cookie, maxEntries);
  }

  async releasedir(dh: Handle): Promise<void> {
    const { dir } = this.dirHandle(dh);
    this.handles.take(dh);
    await dir.close();
  }

  /** Names that are not UTF-8 cannot cross the interface and are left out; so are entries gone before their lstat. */
  private async list(dir: FileHandle, ino: Ino, parent: Ino): Promise<DirListing> {
    const names = await readdir(at(dir.fd, "."), { encoding: "buffer" }).catch(rethrowHost);
    const entries: DirListing = [
      { name: ".", ino, type: S_IFDIR },
      { name: "..", ino: parent, type: S_IFDIR },
    ];
    for (let i = 0; i < names.length; i += LSTAT_BATCH) {
      const batch = await Promise.all(names.slice(i, i + LSTAT_BATCH).map((raw) => this.entry(dir, raw)));
      for (const entry of batch) if (entry !== undefined) entries.push(entry);
    }
    return entries;
  }

  private async entry(dir: FileHandle, raw: Buffer): Promise<Omit<DirEntry, "off"> | undefined> {
    let name: string;
    try {
      name = UTF8.decode(raw);
    } catch {
      return undefined;
    }
    const st = await lstat(at(dir.fd, name), { bigint: true }).catch((e: unknown) => {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      return rethrowHost(e);
    });
    return st === undefined ? undefined : { name, ino: this.number(st), type: Number(st.mode) & S_IFMT };
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

  private dirInode(ino: Ino): HostInode {
    const node = this.inodes.get(ino);
    if (node.type !== S_IFDIR) throw new FsError(ENOTDIR, `inode ${ino} is not a directory`);
    return node;
  }

  /** lstat of the inode's object, which must still be the one looked up. */
  private async stat(node: HostInode): Promise<BigIntStats> {
    if (node.path.length === 0) return this.root.stat({ bigint: true }).catch(rethrowHost);
    const st = await this.inParent(node, (fd, name) => lstat(at(fd.fd, name), { bigint: true }).catch(rethrowGone));
    checkKey(st, node);
    return st;
  }

  /** Runs `use` on the directory holding the (non-root) inode's last path component, and that component. */
  private inParent<R>(node: HostInode, use: (dir: FileHandle, name: string) => Promise<R>): Promise<R> {
    const name = node.path.at(-1);
    if (name === undefined) throw new FsError(EINVAL, "the root has no parent");
    return this.inDir(node.path.slice(0, -1), (dir) => use(dir, name));
  }

  /**
   * Walks `path` from the root one directory fd at a time (see the top of this file) and runs `use` on the
   * last one, closing the walk's descriptors afterwards. A component that is missing, not a directory or a
   * symlink means the path no longer leads where it did: ESTALE.
   */
  private async inDir<R>(path: readonly string[], use: (dir: FileHandle) => Promise<R>): Promise<R> {
    let dir: FileHandle | undefined; // undefined while still at the root, which stays open
    try {
      for (const name of path) {
        const next = await open(at((dir ?? this.root).fd, name), DIR_FLAGS).catch(rethrowGone);
        await dir?.close();
        dir = next;
      }
      return await use(dir ?? this.root);
    } finally {
      await dir?.close();
    }
  }

  private fileHandle(fh: Handle): Extract<HostHandle, { kind: "file" }> {
    const h = this.handles.get(fh);
    if (h.kind !== "file") throw new FsError(EBADF, `handle ${fh} is a directory`);
    return h;
  }

  private dirHandle(dh: Handle): Extract<HostHandle, { kind: "dir" }> {
    const h = this.handles.get(dh);
    if (h.kind !== "dir") throw new FsError(EBADF, `handle ${dh} is not a directory`);
    return h;
  }
}

/** `name` inside the directory open as `fd`, as a path Linux resolves through that very directory. */
function at(fd: number, name: string): string {
  return `/proc/self/fd/${fd}/${name}`;
}

function keyOf(st: BigIntStats): string {
  return `${st.dev}:${st.ino}`;
}

function checkKey(st: BigIntStats, node: HostInode): void {
  if (keyOf(st) !== node.key) throw new FsError(ESTALE, `/${node.path.join("/")} was replaced`);
}

async function checkIdentity(dir: FileHandle, node: HostInode): Promise<void> {
  checkKey(await dir.stat({ bigint: true }).catch(rethrowHost), node);
}

/** A host error with a Linux errno becomes an FsError; anything else stays a backend failure (EIO). */
function rethrowHost(e: unknown): never {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  const errno = typeof code === "string" ? errnoFromCode(code) : undefined;
  if (errno === undefined) throw e;
  throw new FsError(errno, (e as Error).message);
}

/** For a recorded path: if it no longer resolves, the inode behind it is stale, not absent. */
function rethrowGone(e: unknown): never {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (code === "ENOENT" || code === "ENOTDIR" || code === "ELOOP") throw new FsError(ESTALE, (e as Error).message);
  return rethrowHost(e);
}

function attrOf(ino: Ino, st: BigIntStats): FileAttr {
  return {
    ino,
    mode: Number(st.mode),
    nlink: Number(st.nlink),
    uid: Number(st.uid),
    gid: Number(st.gid),
    rdev: Number(st.rdev),
    size: Number(st.size),
    blocks: Number(st.blocks),
    blksize: Number(st.blksize),
    atime: timespec(st.atimeNs),
    mtime: timespec(st.mtimeNs),
    ctime: timespec(st.ctimeNs),
  };
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
