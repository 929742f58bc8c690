// The POSIX metadata OPFS cannot hold (modes, owners, times, symlink targets, device numbers, xattrs,
// inode numbers, which names are hard links of one inode), as a snapshot kept in two slot files, and the
// conversion between the backend's inodes (node.ts) and that snapshot.
//
// Crash safety: a save writes the slot the newest valid snapshot is not in, so a save cut short (the tab
// closed, the quota ran out) leaves the previous snapshot intact; each slot carries a generation number,
// its length and a CRC-32, and loading takes the valid slot of the highest generation.

import { EIO } from "../../vfs/errno.ts";
import { FsError } from "../../vfs/filesystem.ts";
import type { Ino } from "../../vfs/filesystem.ts";
import { openSyncHandle, type OpfsFileHandle } from "./data.ts";
import { isDir, newNode, type Node } from "./node.ts";

export interface InodeRecord {
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  rdev: number;
  /** [seconds, nanoseconds] */
  atime: [number, number];
  mtime: [number, number];
  ctime: [number, number];
  /** Symlink target. */
  target?: string;
  /** The data lives in the inode store under the ino, not at a name in the tree (hard links, O_TMPFILE). */
  stored?: boolean;
  /** [name, base64 value] */
  xattrs?: [string, string][];
}

export interface MetaSnapshot {
  /** The next inode number to issue: numbers are never reused, across reloads too. */
  nextIno: number;
  inodes: InodeRecord[];
  /** [directory ino, [name, ino][]]: the names whose inode the backend knows. */
  dirs: [number, [string, number][]][];
}

const MAGIC = 0x5746_5356; // "VSFW" little-endian
const VERSION = 1;
const HEADER = 24; // magic u32, version u32, generation f64, length u32, crc32 u32
const SLOTS = ["meta.0", "meta.1"] as const;

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export function encodeSnapshot(s: MetaSnapshot, generation: number): Uint8Array<ArrayBuffer> {
  const body = new TextEncoder().encode(JSON.stringify(s));
  const out = new Uint8Array(HEADER + body.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, MAGIC, true);
  v.setUint32(4, VERSION, true);
  v.setFloat64(8, generation, true);
  v.setUint32(16, body.length, true);
  v.setUint32(20, crc32(body), true);
  out.set(body, HEADER);
  return out;
}

/** The snapshot and its generation, or undefined for a slot that is empty, torn or corrupt. */
export function decodeSnapshot(bytes: Uint8Array): { snapshot: MetaSnapshot; generation: number } | undefined {
  if (bytes.length < HEADER) return undefined;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (v.getUint32(0, true) !== MAGIC || v.getUint32(4, true) !== VERSION) return undefined;
  const length = v.getUint32(16, true);
  const body = bytes.subarray(HEADER, HEADER + length);
  if (body.length !== length || crc32(body) !== v.getUint32(20, true)) return undefined;
  try {
    return { snapshot: JSON.parse(new TextDecoder().decode(body)) as MetaSnapshot, generation: v.getFloat64(8, true) };
  } catch {
    return undefined;
  }
}

/** The two slots in the metadata directory, and the lock file that keeps a second tab out. */
export class MetaStore {
  private generation = 0;
  private next: 0 | 1 = 0;

  private constructor(
    private readonly dir: FileSystemDirectoryHandle,
    private readonly lock: { close(): void } | undefined,
  ) {}

  /**
   * Takes the share's lock (a sync access handle held open, where the API exists) and reads the newest
   * snapshot. Fails with EIO if another tab or Worker keeps the share open.
   */
  static async open(dir: FileSystemDirectoryHandle): Promise<{ store: MetaStore; snapshot: MetaSnapshot | undefined }> {
    const lockFile = (await dir.getFileHandle("lock", { create: true })) as OpfsFileHandle;
    let lock: { close(): void } | undefined;
    if (lockFile.createSyncAccessHandle) {
      try {
        lock = await openSyncHandle(lockFile);
      } catch (e) {
        if (e instanceof DOMException && e.name === "NoModificationAllowedError") throw new FsError(EIO, "the share is open in another tab");
        throw e;
      }
    }
    const store = new MetaStore(dir, lock);
    let best: { snapshot: MetaSnapshot; generation: number; slot: number } | undefined;
    for (let slot = 0; slot < SLOTS.length; slot++) {
      const found = decodeSnapshot(await store.readSlot(slot));
      if (found && (!best || found.generation > best.generation)) best = { ...found, slot };
    }
    if (best) {
      store.generation = best.generation;
      store.next = best.slot === 0 ? 1 : 0;
    }
    return { store, snapshot: best?.snapshot };
  }

  async save(s: MetaSnapshot): Promise<void> {
    const bytes = encodeSnapshot(s, this.generation + 1);
    const file = (await this.dir.getFileHandle(SLOTS[this.next], { create: true })) as OpfsFileHandle;
    if (file.createSyncAccessHandle) {
      const h = await openSyncHandle(file);
      try {
        let done = 0;
        while (done < bytes.length) done += h.write(bytes.subarray(done), { at: done });
        h.truncate(bytes.length);
        h.flush();
      } finally {
        h.close();
      }
    } else {
      const w = await file.createWritable();
      await w.write(bytes);
      await w.close();
    }
    this.generation++;
    this.next = this.next === 0 ? 1 : 0;
  }

  close(): void {
    this.lock?.close();
  }

  private async readSlot(slot: number): Promise<Uint8Array> {
    try {
      const file = await this.dir.getFileHandle(SLOTS[slot]!);
      return new Uint8Array(await (await file.getFile()).arrayBuffer());
    } catch (e) {
      if (e instanceof DOMException && e.name === "NotFoundError") return new Uint8Array(0);
      throw e;
    }
  }
}

/** Every inode reachable from the root, and the names that reach them. */
export function snapshotOf(nodes: ReadonlyMap<Ino, Node>, rootIno: Ino, nextIno: Ino): MetaSnapshot {
  const inodes: InodeRecord[] = [];
  const dirs: MetaSnapshot["dirs"] = [];
  const seen = new Set<Ino>();
  const visit = (node: Node): void => {
    if (seen.has(node.ino)) return;
    seen.add(node.ino);
    const r: InodeRecord = {
      ino: node.ino,
      mode: node.mode,
      uid: node.uid,
      gid: node.gid,
      rdev: node.rdev,
      atime: [node.atime.sec, node.atime.nsec],
      mtime: [node.mtime.sec, node.mtime.nsec],
      ctime: [node.ctime.sec, node.ctime.nsec],
    };
    if (node.target !== undefined) r.target = node.target;
    if (node.stored) r.stored = true;
    if (node.xattrs.size) r.xattrs = [...node.xattrs].map(([k, v]) => [k, b64(v)]);
    inodes.push(r);
    if (!node.children) return;
    const names: [string, number][] = [];
    for (const [name, ino] of node.children) {
      const child = nodes.get(ino);
      if (!child) continue;
      names.push([name, ino]);
      visit(child);
    }
    dirs.push([node.ino, names]);
  };
  visit(nodes.get(rootIno)!);
  return { nextIno: nextIno, inodes, dirs };
}

/** Takes a snapshot's inodes and names into `nodes`, making the inodes not there yet. */
export function restoreSnapshot(s: MetaSnapshot, nodes: Map<Ino, Node>, rootIno: Ino): void {
  for (const r of s.inodes) {
    let node = nodes.get(r.ino);
    if (!node) nodes.set(r.ino, (node = newNode(r.ino, r.mode, r, 0, "")));
    Object.assign(node, {
      mode: r.mode,
      uid: r.uid,
      gid: r.gid,
      rdev: r.rdev,
      atime: { sec: r.atime[0], nsec: r.atime[1] },
      mtime: { sec: r.mtime[0], nsec: r.mtime[1] },
      ctime: { sec: r.ctime[0], nsec: r.ctime[1] },
      stored: r.stored === true,
      nlink: r.ino === rootIno ? 1 : 0,
    });
    if (r.target !== undefined) node.target = r.target;
    for (const [k, v] of r.xattrs ?? []) node.xattrs.set(k, unb64(v));
  }
  for (const [dirIno, names] of s.dirs) {
    const dir = nodes.get(dirIno);
    if (!dir?.children) continue;
    for (const [name, ino] of names) {
      const node = nodes.get(ino);
      if (!node) continue;
      dir.children.set(name, ino);
      node.nlink++;
      if (isDir(node) || !node.stored) {
        node.parent = dirIno;
        node.name = name;
      }
    }
  }
}

const b64 = (bytes: Uint8Array): string => {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
};
const unb64 = (s: string): Uint8Array => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
