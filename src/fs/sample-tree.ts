// The demo's sample tree, written through the FileSystem contract into any empty, writable backend (the
// CLI's --memfs default and the web demo put it in a MemFs).

import { MAX_IO_SIZE, O_CREAT, O_EXCL, O_WRONLY } from "../vfs/linux.ts";
import type { FileSystem, Ino } from "../vfs/filesystem.ts";

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

const ROOT = { uid: 0, gid: 0 };
/** Parents before children. */
const DIRS = ["bin", "docs", "docs/deep", "docs/deep/deeper", "docs/deep/deeper/deepest", "data", "odd names", "empty"];
const FILES: [string, string | Uint8Array, number][] = [
  ["README", SAMPLE_README, 0o644],
  ["hello.txt", "Hello from the browser!\n", 0o644],
  ["bin/hello.sh", '#!/bin/sh\necho "Hello from $(uname -sm), running $0 over virtio-fs"\n', 0o755],
  ["docs/virtio-fs.txt", SAMPLE_VIRTIO_FS, 0o644],
  ["docs/deep/deeper/deepest/bottom.txt", "You found the bottom.\n", 0o644],
  ["data/random-1MiB.bin", xorshiftBytes(1 << 20), 0o644],
  ["data/empty.txt", "", 0o644],
  ["odd names/with spaces.txt", "A name with spaces.\n", 0o644],
  ["odd names/ünïcødé.txt", "A name with accented letters.\n", 0o644],
  ["odd names/日本語.txt", "こんにちは\n", 0o644],
  ["odd names/penguin 🐧.txt", "A name outside the Basic Multilingual Plane.\n", 0o644],
];
/** [path, target] */
const SYMLINKS: [string, string][] = [
  ["README.link", "README"],
  ["deepest", "docs/deep/deeper/deepest"],
  ["docs/hello.link", "../hello.txt"],
];

/**
 * A small tree for the demo: a README for whoever looks, text files, nested directories, symlinks, a hard
 * link, an executable script, 1 MiB of deterministic bytes, and names with spaces and UTF-8. Owned by root,
 * under a 0755 root directory. `fs` must be empty and writable.
 */
export async function createSampleTree(fs: FileSystem): Promise<void> {
  await fs.setattr(fs.rootIno, { mode: 0o755, uid: ROOT.uid, gid: ROOT.gid });
  // Every name made counts one reference, dropped once the tree is built.
  const made = new Map<string, Ino>([["", fs.rootIno]]);
  const parentOf = (path: string): { dir: Ino; name: string } => {
    const slash = path.lastIndexOf("/");
    return { dir: made.get(path.slice(0, Math.max(0, slash)))!, name: path.slice(slash + 1) };
  };
  for (const path of DIRS) {
    const { dir, name } = parentOf(path);
    made.set(path, (await fs.mkdir(dir, name, 0o755, ROOT)).ino);
  }
  const enc = new TextEncoder();
  for (const [path, data, mode] of FILES) {
    const { dir, name } = parentOf(path);
    const { attr, fh } = await fs.create(dir, name, mode, O_CREAT | O_EXCL | O_WRONLY, ROOT);
    made.set(path, attr.ino);
    const bytes = typeof data === "string" ? enc.encode(data) : data;
    for (let at = 0; at < bytes.length; at += MAX_IO_SIZE) await fs.write(fh, at, bytes.subarray(at, at + MAX_IO_SIZE));
    await fs.release(fh);
  }
  const again = parentOf("docs/hello-again.txt");
  await fs.forget((await fs.link(made.get("hello.txt")!, again.dir, again.name)).ino, 1);
  for (const [path, target] of SYMLINKS) {
    const { dir, name } = parentOf(path);
    await fs.forget((await fs.symlink(dir, name, target, ROOT)).ino, 1);
  }
  for (const [path, ino] of made) if (path !== "") await fs.forget(ino, 1);
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
