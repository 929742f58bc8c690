// The embedded default backend: an in-memory tree held by the npm package memfs.
//
// memfs's public API is path based, but a path can change or vanish under an inode the guest still
// holds, and memfs recycles its inode numbers as soon as a node is deleted: neither identifies an inode.
// So the backend works on the objects behind a `Volume`: `vol._core` (public in memfs 4.x's typings
// despite the underscore) is its `Superblock`, whose `Link`s are directory entries (a directory's
// `children` map, its parent through "..") and whose `Node`s are inodes (hard links share one). The
// lockfile pins the memfs version this was checked against. Inode numbers are the backend's own, one per
// `Node` object, never recycled.
//
// In the browser, memfs needs polyfills for node:buffer, node:events, node:path, node:stream and node:url.

import { Volume } from "memfs";
import { EBADF, EINVAL, ENOENT, ENOTDIR } from "./errno.ts";
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
  utf8Length,
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

type Superblock = Volume["_core"];
type Link = Superblock["root"];
type Node = Link["node"];

/** A referenced inode: its node, and the entry it was last reached through (a directory's only one). */
interface MemInode {
  node: Node;
  link: Link;
}

type MemHandle = { kind: "file"; node: Node } | { kind: "dir"; stream: DirStream };

export interface MemFsOptions {
  /** Size statfs reports, in bytes (memfs itself has no limit). Default 256 MiB. */
  capacity?: number;
  /** Inode count statfs reports. Default 65536. */
  maxInodes?: number;
}

const BLOCK_SIZE = 4096;

export class MemFs implements FileSystem {
  readonly rootIno: Ino = 1;
  readonly capabilities: FsCapabilities = { readOnly: true };
  private readonly core: Superblock;
  private readonly inos = new WeakMap<Node, Ino>();
  private nextIno: Ino = 2;
  private readonly inodes: InodeTable<MemInode>;
  private readonly handles = new HandleTable<MemHandle>();
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
    this.inodes = new InodeTable(this.rootIno, { node: this.core.root.node, link: this.core.root });
    this.capacity = options.capacity ?? 256 << 20;
    this.maxInodes = options.maxInodes ?? 65536;
  }

  async lookup(parent: Ino, name: string): Promise<FileAttr> {
    checkName(name);
    const dir = this.inodes.get(parent);
    if (!dir.node.isDirectory()) throw new FsError(ENOTDIR, `lookup in inode ${parent}`);
    // children.get, not Link.getChild, which would touch the directory's atime.
    const link = dir.link.children.get(name);
    if (link === undefined) throw new FsError(ENOENT, name);
    const ino = this.inoOf(link.node);
    this.inodes.ref(ino, { node: link.node, link });
    return this.attr(ino, link);
  }

  async forget(ino: Ino, nlookup: number): Promise<void> {
    this.inodes.forget(ino, nlookup);
  }

  async getattr(ino: Ino): Promise<FileAttr> {
    return this.attr(ino, this.inodes.get(ino).link);
  }

  async readlink(ino: Ino): Promise<string> {
    const { node } = this.inodes.get(ino);
    if (!node.isSymlink()) throw new FsError(EINVAL, `readlink of inode ${ino}`);
    return node.symlink;
  }

  async access(ino: Ino, mask: number): Promise<void> {
    this.inodes.get(ino);
    checkReadOnlyAccess(mask);
  }

  async statfs(ino: Ino): Promise<StatFs> {
    this.inodes.get(ino);
    const nodes = Object.values(this.core.inodes);
    const used = nodes.reduce((sum, node) => sum + Math.ceil(node.getSize() / BLOCK_SIZE), 0);
    const blocks = Math.ceil(this.capacity / BLOCK_SIZE);
    const bfree = Math.max(0, blocks - used);
    const ffree = Math.max(0, this.maxInodes - nodes.length);
    return { blocks, bfree, bavail: bfree, files: this.maxInodes, ffree, bsize: BLOCK_SIZE, namelen: NAME_MAX, frsize: BLOCK_SIZE };
  }

  async open(ino: Ino, flags: number): Promise<Handle> {
    const { node } = this.inodes.get(ino);
    checkOpenType(node.mode & S_IFMT, ino);
    checkReadOnlyOpen(flags);
    return this.handles.add({ kind: "file", node });
  }

  async read(fh: Handle, offset: number, length: number): Promise<Uint8Array> {
    checkRange(offset, length);
    const { node } = this.fileHandle(fh);
    const n = Math.max(0, Math.min(length, node.getSize() - offset));
    const out = new Uint8Array(n);
    if (n > 0) node.read(out, 0, n, offset);
    return out;
  }

  async release(fh: Handle): Promise<void> {
    this.fileHandle(fh);
    this.handles.take(fh);
  }

  async opendir(ino: Ino): Promise<Handle> {
    const { node, link } = this.inodes.get(ino);
    if (!node.isDirectory()) throw new FsError(ENOTDIR, `opendir of inode ${ino}`);
    return this.handles.add({ kind: "dir", stream: new DirStream(async () => this.list(ino, link)) });
  }

  async readdir(dh: Handle, cookie: number, maxEntries?: number): Promise<DirEntry[]> {
    return this.dirHandle(dh).stream.read(cookie, maxEntries);
  }

  async releasedir(dh: Handle): Promise<void> {
    this.dirHandle(dh);
    this.handles.take(dh);
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

  private inoOf(node: Node): Ino {
    let ino = this.inos.get(node);
    if (ino === undefined) {
      ino = this.nextIno++;
      this.inos.set(node, ino);
    }
    return ino;
  }

  private attr(ino: Ino, link: Link): FileAttr {
    const node = link.node;
    const type = node.mode & S_IFMT;
    let size = node.getSize();
    let nlink = node.nlink;
    let mode = node.mode;
    if (type === S_IFDIR) {
      // memfs's own directory link counts are off (the root starts at 3): count "." plus ".." of each subdirectory.
      nlink = 2;
      for (const [name, child] of link.children) {
        if (child !== undefined && name !== "." && name !== ".." && child.node.isDirectory()) nlink++;
      }
      size = BLOCK_SIZE;
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
      blocks: Math.ceil(size / 512),
      blksize: BLOCK_SIZE,
      atime: timespec(node.atime),
      mtime: timespec(node.mtime),
      ctime: timespec(node.ctime),
    };
  }

  private fileHandle(fh: Handle): Extract<MemHandle, { kind: "file" }> {
    const h = this.handles.get(fh);
    if (h.kind !== "file") throw new FsError(EBADF, `handle ${fh} is a directory`);
    return h;
  }

  private dirHandle(dh: Handle): Extract<MemHandle, { kind: "dir" }> {
    const h = this.handles.get(dh);
    if (h.kind !== "dir") throw new FsError(EBADF, `handle ${dh} is not a directory`);
    return h;
  }
}

function timespec(date: Date): Timespec {
  const ms = date.getTime();
  const sec = Math.floor(ms / 1000);
  return { sec, nsec: (ms - sec * 1000) * 1_000_000 };
}

const SAMPLE_README = `This directory lives in your browser.

The Linux kernel running in this emulated PC (v86) mounted it with its own virtio-fs driver,
virtiofs.ko. Every ls, cat or stat you run here turns into FUSE requests that travel over a
virtqueue to an emulated PCI device, where a FUSE server written in TypeScript answers them
from an in-memory tree (memfs). Nothing here touches your disk, and a reload starts afresh.

Things to try:
  ls -la                                  modes, owners, sizes, times, symlinks
  cat hello.txt
  ./bin/hello.sh                          an executable script
  ls -li hello.txt docs/hello-again.txt   two names, one inode (a hard link)
  cat deepest/bottom.txt                  through a symlink to a nested directory
  ls "odd names"                          spaces and UTF-8 in names
  sha256sum data/random-1MiB.bin          should print
      b13261ceffb27a120f88c3466a3917bfb2875493d5f802422b433a3599407be6
  mount | grep virtiofs
`;

const SAMPLE_VIRTIO_FS = `How a read reaches this file

1. read(2) in the guest goes through the VFS to fuse.ko, which builds a FUSE_READ request.
2. virtiofs.ko places the request and an empty reply buffer on a virtqueue and kicks the device.
3. The emulated virtio-fs PCI device pops the descriptor chain from guest memory.
4. The FUSE server decodes the request and asks the filesystem backend for the bytes.
5. The reply is written into the chain's writable descriptors and the device raises an interrupt.
6. fuse.ko wakes the reader, and the bytes land in its buffer.
`;

/**
 * A small tree for the demo: a README for whoever looks, text files, nested directories, symlinks, a hard
 * link, an executable script, 1 MiB of deterministic bytes, and names with spaces and UTF-8. Owned by root.
 */
export function createSampleTree(): Volume {
  const vol = new Volume();
  const dirs = ["/bin", "/docs/deep/deeper/deepest", "/data", "/odd names", "/empty"];
  for (const dir of dirs) vol.mkdirSync(dir, { recursive: true, mode: 0o755 });
  const files: [string, string | Uint8Array, number][] = [
    ["/README", SAMPLE_README, 0o644],
    ["/hello.txt", "Hello from the browser!\n", 0o644],
    ["/bin/hello.sh", '#!/bin/sh\necho "Hello from $(uname -sm), running $0 over virtio-fs"\n', 0o755],
    ["/docs/virtio-fs.txt", SAMPLE_VIRTIO_FS, 0o644],
    ["/docs/deep/deeper/deepest/bottom.txt", "You found the bottom.\n", 0o644],
    ["/data/random-1MiB.bin", xorshiftBytes(1 << 20), 0o644],
    ["/data/empty.txt", "", 0o644],
    ["/odd names/with spaces.txt", "A name with spaces.\n", 0o644],
    ["/odd names/ünïcødé.txt", "A name with accented letters.\n", 0o644],
    ["/odd names/日本語.txt", "こんにちは\n", 0o644],
    ["/odd names/penguin 🐧.txt", "A name outside the Basic Multilingual Plane.\n", 0o644],
  ];
  for (const [path, data, mode] of files) vol.writeFileSync(path, data, { mode });
  vol.linkSync("/hello.txt", "/docs/hello-again.txt");
  vol.symlinkSync("README", "/README.link");
  vol.symlinkSync("docs/deep/deeper/deepest", "/deepest");
  vol.symlinkSync("../hello.txt", "/docs/hello.link");
  const root = vol._core.root;
  root.node.mode = S_IFDIR | 0o755; // memfs's root is 0777
  root.node.uid = 0;
  root.node.gid = 0;
  chownTree(root);
  return vol;
}

/** memfs gives new nodes the creating process's ids; the sample belongs to root. */
function chownTree(dir: Link): void {
  for (const [name, link] of dir.children) {
    if (link === undefined || name === "." || name === "..") continue;
    link.node.uid = 0;
    link.node.gid = 0;
    if (link.node.isDirectory()) chownTree(link);
  }
}

/** xorshift32 output, one byte per step: reproducible bytes whose checksum the README quotes. */
function xorshiftBytes(length: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = 0x9e3779b9;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}
