// The snapshot file: a running guest with its shares, as Guest.saveState writes it and Guest.restore reads
// it. One self-describing, versioned blob:
//
//   "VFSWSNAP" | u32 format version | sha256 of what follows (32 bytes) | gzip(encodeState(SnapshotContents))
//
// The checksum comes first so that a truncated or damaged file is refused before anything is parsed; the
// contents name the guest images by sha256 so that a snapshot is never resumed over another kernel.
// v86's own state holds guest RAM (its zero pages left out) and v86's devices; gzip takes the rest of it
// down (a fresh 256 MiB guest: see the README's snapshot figures).
import { StateError, bool, bytes, decodeState, encodeState, int, list, record, str, type Saved } from "../vfs/state.ts";
import { CACHE_MODES, LOCK_MODES, type CacheMode, type LockMode } from "../fuse/session.ts";
import { IMAGE_NAMES, sha256Hex, type GuestImages, type ImageName } from "./images.ts";

const MAGIC = new TextEncoder().encode("VFSWSNAP");
export const SNAPSHOT_VERSION = 2;
const HEADER = MAGIC.length + 4 + 32;

/** A file that is not a snapshot this build can resume: damaged, truncated, foreign or for other images. */
export class SnapshotError extends Error {
  override readonly name = "SnapshotError";
}

/** How a share was attached: a restore must attach it the same way (the guest negotiated with it). */
export interface SnapshotShare {
  tag: string;
  mountPoint: string;
  cache: CacheMode;
  writeback: boolean;
  numRequestQueues: number;
  locks: LockMode;
  /** The DAX window's size, or null without one. */
  daxMiB: number | null;
  /** The window's dax=inode size line, or null (dax=always, or no window). */
  daxInodeMinSize: number | null;
}

export interface SnapshotContents {
  /** When it was taken (ISO 8601). */
  created: string;
  /** sha256 of each guest image the guest booted from. */
  images: Record<ImageName, string>;
  /** The machine as it was built: v86's memory_size, the kernel command line (it holds the console nonce). */
  memoryBytes: number;
  cmdline: string;
  nonce: string;
  mode: "agent" | "shell";
  ninep: boolean;
  /** Guest uptime (s) when init was first ready. */
  uptimeAtReady: number;
  v86: Uint8Array;
  shares: SnapshotShare[];
  /** The shares' devices, FUSE sessions and backends (VirtioFsAttachment.saveState). */
  virtiofs: Uint8Array;
}

export async function imageHashes(images: GuestImages): Promise<Record<ImageName, string>> {
  const sums = await Promise.all(IMAGE_NAMES.map((n) => sha256Hex(images[n])));
  return Object.fromEntries(IMAGE_NAMES.map((n, i) => [n, sums[i]!])) as Record<ImageName, string>;
}

export async function packSnapshot(c: SnapshotContents): Promise<Uint8Array> {
  const body = await pipe(encodeState(c as unknown as Saved), new CompressionStream("gzip"));
  const out = new Uint8Array(HEADER + body.length);
  out.set(MAGIC, 0);
  new DataView(out.buffer).setUint32(MAGIC.length, SNAPSHOT_VERSION, true);
  out.set(new Uint8Array(await crypto.subtle.digest("SHA-256", body)), MAGIC.length + 4);
  out.set(body, HEADER);
  return out;
}

/**
 * Checks a snapshot file's header and checksum without decompressing it (cheap: a page can refuse a
 * damaged file before it gives up the guest it runs); resolves to the compressed body.
 */
export async function checkSnapshot(file: Uint8Array): Promise<Uint8Array<ArrayBuffer>> {
  if (file.length < HEADER || MAGIC.some((b, i) => file[i] !== b)) throw new SnapshotError("not a virtiofs-web snapshot");
  const version = new DataView(file.buffer, file.byteOffset).getUint32(MAGIC.length, true);
  if (version !== SNAPSHOT_VERSION) throw new SnapshotError(`snapshot format ${version}; this virtiofs-web reads format ${SNAPSHOT_VERSION}`);
  const body = file.subarray(HEADER) as Uint8Array<ArrayBuffer>; // a file's bytes, never shared memory
  const sum = new Uint8Array(await crypto.subtle.digest("SHA-256", body));
  if (sum.some((b, i) => file[MAGIC.length + 4 + i] !== b)) throw new SnapshotError("snapshot is truncated or damaged (checksum mismatch)");
  return body;
}

/** The contents of a snapshot file; SnapshotError naming what is wrong with it. */
export async function unpackSnapshot(file: Uint8Array): Promise<SnapshotContents> {
  const body = await checkSnapshot(file);
  try {
    return readContents(decodeState(await pipe(body, new DecompressionStream("gzip"))));
  } catch (e) {
    if (e instanceof StateError) throw new SnapshotError(`snapshot is not readable: ${e.message}`);
    throw new SnapshotError(`snapshot is not readable: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** The chunks gathered by hand: Response.arrayBuffer() over the stream took a third longer (Chromium, Node). */
async function pipe(bytes: Uint8Array<ArrayBuffer>, through: CompressionStream | DecompressionStream): Promise<Uint8Array<ArrayBuffer>> {
  const reader = new Blob([bytes]).stream().pipeThrough(through).getReader();
  const parts: Uint8Array[] = [];
  let length = 0;
  for (let r = await reader.read(); !r.done; r = await reader.read()) {
    parts.push(r.value);
    length += r.value.length;
  }
  const out = new Uint8Array(length);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function readContents(v: Saved): SnapshotContents {
  const c = record(v, "snapshot");
  const images = record(c.images, "images");
  const mode = str(c.mode, "mode");
  if (mode !== "agent" && mode !== "shell") throw new StateError(`mode ${mode}`);
  return {
    created: str(c.created, "created"),
    images: Object.fromEntries(IMAGE_NAMES.map((n) => [n, str(images[n], `images.${n}`)])) as Record<ImageName, string>,
    memoryBytes: int(c.memoryBytes, "memoryBytes", 1),
    cmdline: str(c.cmdline, "cmdline"),
    nonce: str(c.nonce, "nonce"),
    mode,
    ninep: bool(c.ninep, "ninep"),
    uptimeAtReady: typeof c.uptimeAtReady === "number" ? c.uptimeAtReady : NaN,
    v86: bytes(c.v86, "v86 state"),
    shares: list(c.shares, "shares").map((s, i) => readShare(s, i)),
    virtiofs: bytes(c.virtiofs, "virtio-fs state"),
  };
}

function readShare(v: Saved, i: number): SnapshotShare {
  const s = record(v, `shares[${i}]`);
  return {
    tag: str(s.tag, "tag"),
    mountPoint: str(s.mountPoint, "mountPoint"),
    cache: oneOf(CACHE_MODES, s.cache, "cache"),
    writeback: bool(s.writeback, "writeback"),
    numRequestQueues: int(s.numRequestQueues, "numRequestQueues", 1),
    locks: oneOf(LOCK_MODES, s.locks, "locks"),
    daxMiB: s.daxMiB === null ? null : int(s.daxMiB, "daxMiB", 1),
    // Absent in snapshots from before the size line: dax=always.
    daxInodeMinSize: s.daxInodeMinSize === undefined || s.daxInodeMinSize === null ? null : int(s.daxInodeMinSize, "daxInodeMinSize", 0),
  };
}

function oneOf<T extends string>(values: readonly T[], v: Saved | undefined, what: string): T {
  const s = str(v, what);
  if (!(values as readonly string[]).includes(s)) throw new StateError(`${what} ${s}`);
  return s as T;
}
