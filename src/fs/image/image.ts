// ImageFs: a read-only tree described by an image index (format.ts), whose regular files' bytes are blobs
// fetched on first read through a BlobSource, verified, and cached (blobs.ts). The whole tree is known from
// the index, so lookups, getattr and readdir never fetch anything.
//
// Inode numbers are the entry's position in the index plus one (the root, first, is 1); a hard link (`link`)
// shares its target's. They are stable for one image, so a snapshot refers to inodes by number alone.
// References are bookkeeping only (the tree cannot change), but they are kept as the contract says: an
// inode the caller does not hold is ESTALE.

import { EINVAL, ENOENT, ENOTDIR, EROFS } from "../../vfs/errno.ts";
import { NAME_MAX, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, SEEK_DATA } from "../../vfs/linux.ts";
import { FsError, type DirEntry, type FileAttr, type FileSystem, type FsCapabilities, type Handle, type Ino, type SetAttr, type StatFs, type Timespec } from "../../vfs/filesystem.ts";
import { int, record, str, StateError, type Saved } from "../../vfs/state.ts";
import { checkCanRead, denseAttr, checkName, checkOpenType, checkRange, checkReadOnlyAccess, checkReadOnlyOpen, checkSeek, getXattr, openMode, utf8Length, type OpenMode } from "../posix.ts";
import { openModeOf, saveOpenMode } from "../saved.ts";
import { DirStream, HandleTable, InodeTable, type DirListing } from "../tables.ts";
import { BlobCache, DEFAULT_CACHE_BYTES, type BlobRef, type BlobSource } from "./blobs.ts";
import type { ImageEntry, ImageIndex, ImageTime } from "./format.ts";

const BLOCK_SIZE = 4096;

interface ImageNode {
  ino: Ino;
  mode: number;
  uid: number;
  gid: number;
  rdev: number;
  size: number;
  atime: Timespec;
  mtime: Timespec;
  ctime: Timespec;
  nlink: number;
  blob: BlobRef | undefined;
  target: string | undefined;
  xattrs: ReadonlyMap<string, Uint8Array>;
  /** Directories: the entries in index order, and the parent (the root's is itself). */
  children: Map<string, ImageNode> | undefined;
  parent: ImageNode | undefined;
}

type ImageHandle =
  | { kind: "file"; node: ImageNode; how: OpenMode; /** a blob too big for the cache, kept while open */ data: Uint8Array | undefined }
  | { kind: "dir"; node: ImageNode; stream: DirStream };

export interface ImageFsOptions {
  /** Bytes of blobs kept in memory, least recently used out first. Default 64 MiB. */
  cacheBytes?: number;
}

export class ImageFs implements FileSystem {
  readonly rootIno: Ino = 1;
  readonly capabilities: FsCapabilities = { readOnly: true };
  private readonly nodes = new Map<Ino, ImageNode>();
  private readonly root: ImageNode;
  private readonly cache: BlobCache;
  private readonly cacheBytes: number;
  private readonly totalBytes: number;
  private fingerprint: Promise<string> | undefined;
  // Not readonly: restoreState swaps in the tables it built.
  private inodes: InodeTable<ImageNode>;
  private handles = new HandleTable<ImageHandle>();

  /** `index` as parseImageIndex returns it (which checks what this relies on: parents first, links to earlier entries). */
  constructor(
    private readonly index: ImageIndex,
    source: BlobSource,
    options: ImageFsOptions = {},
  ) {
    const byPath = new Map<string, ImageNode>();
    const sizes = new Map<string, number>();
    index.entries.forEach((entry, i) => {
      if (entry.link !== undefined) {
        const node = byPath.get(entry.link)!;
        node.nlink++;
        byPath.set(entry.path, node);
      } else {
        const node = nodeOf(entry, i + 1);
        this.nodes.set(node.ino, node);
        byPath.set(entry.path, node);
        if (node.blob !== undefined) sizes.set(node.blob.sha256, node.size);
      }
      const node = byPath.get(entry.path)!;
      if (entry.path === "") {
        node.parent = node;
        return;
      }
      const slash = entry.path.lastIndexOf("/");
      const parent = byPath.get(slash < 0 ? "" : entry.path.slice(0, slash))!;
      parent.children!.set(entry.path.slice(slash + 1), node);
      if (node.children !== undefined) {
        node.parent = parent;
        parent.nlink++;
      }
    });
    this.root = this.nodes.get(this.rootIno)!;
    this.inodes = new InodeTable(this.rootIno, this.root);
    this.cacheBytes = options.cacheBytes ?? DEFAULT_CACHE_BYTES;
    this.cache = new BlobCache(source, this.cacheBytes);
    this.totalBytes = [...sizes.values()].reduce((a, b) => a + b, 0);
  }

  async lookup(parent: Ino, name: string): Promise<FileAttr> {
    checkName(name);
    const node = this.dirOf(parent).children!.get(name);
    if (node === undefined) throw new FsError(ENOENT, name);
    this.inodes.ref(node.ino, node);
    return attr(node);
  }

  async forget(ino: Ino, nlookup: number): Promise<void> {
    this.inodes.forget(ino, nlookup);
  }

  async getattr(ino: Ino): Promise<FileAttr> {
    return attr(this.inodes.get(ino));
  }

  async readlink(ino: Ino): Promise<string> {
    const node = this.inodes.get(ino);
    if (node.target === undefined) throw new FsError(EINVAL, `readlink of inode ${ino}`);
    return node.target;
  }

  async access(ino: Ino, mask: number): Promise<void> {
    this.inodes.get(ino);
    checkReadOnlyAccess(mask);
  }

  async statfs(ino: Ino): Promise<StatFs> {
    this.inodes.get(ino);
    const blocks = Math.max(1, Math.ceil(this.totalBytes / BLOCK_SIZE));
    return { blocks, bfree: 0, bavail: 0, files: this.nodes.size, ffree: 0, bsize: BLOCK_SIZE, namelen: NAME_MAX, frsize: BLOCK_SIZE };
  }

  async open(ino: Ino, flags: number): Promise<Handle> {
    const node = this.inodes.get(ino);
    checkOpenType(node.mode & S_IFMT, ino);
    checkReadOnlyOpen(flags);
    return this.handles.add({ kind: "file", node, how: openMode(flags), data: undefined });
  }

  async read(fh: Handle, offset: number, length: number): Promise<Uint8Array> {
    checkRange(offset, length);
    const h = this.handles.getKind(fh, "file");
    checkCanRead(h.how, fh);
    const n = Math.max(0, Math.min(length, h.node.size - offset));
    if (n === 0) return new Uint8Array(0);
    return (await this.data(h)).slice(offset, offset + n);
  }

  async readInto(fh: Handle, offset: number, into: Uint8Array): Promise<number> {
    checkRange(offset, into.length);
    const h = this.handles.getKind(fh, "file");
    checkCanRead(h.how, fh);
    const n = Math.max(0, Math.min(into.length, h.node.size - offset));
    if (n > 0) into.set((await this.data(h)).subarray(offset, offset + n));
    return n;
  }

  async release(fh: Handle): Promise<void> {
    this.handles.getKind(fh, "file");
    this.handles.take(fh);
  }

  async opendir(ino: Ino): Promise<Handle> {
    const node = this.dirOf(ino);
    return this.handles.add({ kind: "dir", node, stream: new DirStream(async () => listing(node)) });
  }

  async readdir(dh: Handle, cookie: number, maxEntries?: number): Promise<DirEntry[]> {
    return this.handles.getKind(dh, "dir").stream.read(cookie, maxEntries);
  }

  async releasedir(dh: Handle): Promise<void> {
    this.handles.getKind(dh, "dir");
    this.handles.take(dh);
  }

  // Every method that would change the tree is EROFS before it looks at its arguments.
  async setattr(_ino: Ino, _a: SetAttr): Promise<FileAttr> {
    return readOnly();
  }
  async mknod(): Promise<FileAttr> {
    return readOnly();
  }
  async mkdir(): Promise<FileAttr> {
    return readOnly();
  }
  async symlink(): Promise<FileAttr> {
    return readOnly();
  }
  async link(): Promise<FileAttr> {
    return readOnly();
  }
  async unlink(): Promise<void> {
    return readOnly();
  }
  async rmdir(): Promise<void> {
    return readOnly();
  }
  async rename(): Promise<void> {
    return readOnly();
  }
  async create(): Promise<{ attr: FileAttr; fh: Handle }> {
    return readOnly();
  }
  async tmpfile(): Promise<{ attr: FileAttr; fh: Handle }> {
    return readOnly();
  }
  async write(): Promise<number> {
    return readOnly();
  }
  async fallocate(): Promise<void> {
    return readOnly();
  }
  async copyFileRange(): Promise<number> {
    return readOnly();
  }
  async setxattr(): Promise<void> {
    return readOnly();
  }
  async removexattr(): Promise<void> {
    return readOnly();
  }

  // There is nothing to make durable: the sync family checks its handle only.
  async fsync(fh: Handle): Promise<void> {
    this.handles.getKind(fh, "file");
  }

  async fsyncdir(dh: Handle): Promise<void> {
    this.handles.getKind(dh, "dir");
  }

  async syncfs(): Promise<void> {}

  /** The index says nothing of holes: the whole file is data. */
  async lseek(fh: Handle, offset: number, whence: number): Promise<number> {
    const { node } = this.handles.getKind(fh, "file");
    checkSeek(offset, whence, node.size);
    return whence === SEEK_DATA ? offset : node.size;
  }

  async getxattr(ino: Ino, name: string): Promise<Uint8Array> {
    return getXattr(this.inodes.get(ino).xattrs, name);
  }

  async listxattr(ino: Ino): Promise<string[]> {
    return [...this.inodes.get(ino).xattrs.keys()];
  }

  /** References and handles by inode number, and which image they are numbers of. */
  async saveState(): Promise<Saved> {
    return {
      image: await this.imageFingerprint(),
      inodes: this.inodes.saveState(() => null),
      handles: this.handles.saveState((h): Saved => (h.kind === "file" ? { kind: "file", ino: h.node.ino, how: saveOpenMode(h.how) } : { kind: "dir", ino: h.node.ino, listing: h.stream.saveState() })),
    };
  }

  async restoreState(state: Saved): Promise<void> {
    if (this.inodes.values().length !== 1 || this.handles.values().length !== 0) throw new Error("image backend: restoreState needs a fresh backend");
    const saved = record(state, "image state");
    if (str(saved.image, "image fingerprint") !== (await this.imageFingerprint())) throw new StateError("the state is of another image");
    const maxIno = this.index.entries.length;
    const nodeAt = (v: Saved | undefined, what: string): ImageNode => {
      const node = this.nodes.get(int(v, what, 1, maxIno));
      if (node === undefined) throw new StateError(`${what}: no inode of this image`);
      return node;
    };
    const inodes = InodeTable.restoreState(saved.inodes, this.rootIno, this.root, maxIno + 1, (_v, ino) => nodeAt(ino, "inode"));
    const handles = HandleTable.restoreState<ImageHandle>(saved.handles, (v) => {
      const h = record(v, "handle");
      const node = nodeAt(h.ino, "handle inode");
      if (h.kind === "file") {
        checkOpenType(node.mode & S_IFMT, node.ino);
        return { kind: "file", node, how: openModeOf(h.how, "handle mode"), data: undefined };
      }
      if (h.kind !== "dir" || node.children === undefined) throw new StateError("handle: not a file or directory handle");
      return { kind: "dir", node, stream: new DirStream(async () => listing(node), DirStream.readState(h.listing, "listing", maxIno + 1)) };
    });
    this.inodes = inodes;
    this.handles = handles;
  }

  private async data(h: Extract<ImageHandle, { kind: "file" }>): Promise<Uint8Array> {
    if (h.data !== undefined) return h.data;
    const data = await this.cache.get(h.node.blob!);
    if (data.length > this.cacheBytes) h.data = data;
    return data;
  }

  private dirOf(ino: Ino): ImageNode {
    const node = this.inodes.get(ino);
    if (node.children === undefined) throw new FsError(ENOTDIR, `inode ${ino} is not a directory`);
    return node;
  }

  private imageFingerprint(): Promise<string> {
    this.fingerprint ??= crypto.subtle
      .digest("SHA-256", new TextEncoder().encode(JSON.stringify(this.index.entries)))
      .then((d) => Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join(""));
    return this.fingerprint;
  }
}

function readOnly(): never {
  throw new FsError(EROFS, "read-only image");
}

function nodeOf(entry: ImageEntry, ino: Ino): ImageNode {
  const mode = entry.mode!;
  const type = mode & S_IFMT;
  const size = entry.size ?? 0;
  return {
    ino,
    mode,
    uid: entry.uid ?? 0,
    gid: entry.gid ?? 0,
    rdev: entry.rdev ?? 0,
    size,
    atime: timespec(entry.atime),
    mtime: timespec(entry.mtime),
    ctime: timespec(entry.ctime),
    nlink: type === S_IFDIR ? 2 : 1,
    blob: entry.sha256 === undefined ? undefined : { sha256: entry.sha256, gz: entry.gz === true, size },
    target: entry.target,
    xattrs: new Map(Object.entries(entry.xattrs ?? {}).map(([name, value]) => [name, base64(value)])),
    children: type === S_IFDIR ? new Map() : undefined,
    parent: undefined,
  };
}

function attr(node: ImageNode): FileAttr {
  const type = node.mode & S_IFMT;
  const size = type === S_IFDIR ? BLOCK_SIZE : type === S_IFLNK ? utf8Length(node.target!) : type === S_IFREG ? node.size : 0;
  return denseAttr(node, node.nlink, size);
}

function listing(dir: ImageNode): DirListing {
  const entries: DirListing = [
    { name: ".", ino: dir.ino, type: S_IFDIR },
    { name: "..", ino: dir.parent!.ino, type: S_IFDIR },
  ];
  for (const [name, node] of dir.children!) entries.push({ name, ino: node.ino, type: node.mode & S_IFMT });
  return entries;
}

function timespec([sec, nsec]: ImageTime = [0, 0]): Timespec {
  return { sec, nsec };
}

function base64(value: string): Uint8Array {
  return Uint8Array.from(atob(value), (c) => c.charCodeAt(0));
}
