// Messages between the page and the emulator Worker.
import type { ChainDescriptor, QueueState } from "../src/index.ts";

/** Where the guest's /mnt comes from. */
export type Backend = "memfs" | "opfs" | "local";
export const BACKENDS: readonly Backend[] = ["memfs", "opfs", "local"];

/**
 * ?root=NAME: boot from the server's lazy image rootfs/NAME/ under an overlay, its changes kept in OPFS or
 * in memory.
 */
export interface RootSettings {
  name: string;
  overlay: "opfs" | "memfs";
}

export type DeviceAction = "pause" | "step" | "resume";

/**
 * What a start does with snapshots: restore the one kept in OPFS for this backend if there is one (a page
 * load), ignore it (a restart for another backend or DAX window), drop it and boot ("Boot fresh"), or
 * restore a file the user gave ("Restore…").
 */
export type SnapshotChoice = "kept" | "ignore" | "drop" | { name: string; data: ArrayBuffer };

export type ToWorker =
  /** `daxMiB`: give the share a DAX window of that size, mounted with dax=always. */
  | { type: "start"; backend: Backend; folder?: FileSystemDirectoryHandle; memoryMiB: number; daxMiB?: number; append?: string; snapshot: SnapshotChoice; root?: RootSettings; kernel?: "debian" }
  /** Keys for guest `guest`'s console (0, or 1 once the second guest runs). */
  | { type: "input"; guest: number; data: Uint8Array }
  /** Boot a second guest on the same share, beside the first (no DAX window). */
  | { type: "second-guest" }
  /** The inspector or the walkthrough is on screen: send the history kept since boot, then FUSE traffic as it comes. */
  | { type: "inspect"; on: boolean }
  | { type: "device"; action: DeviceAction }
  /** Paths are relative to the share's root, "" being the root itself. */
  | { type: "upload"; dir: string; name: string; data: ArrayBuffer }
  | { type: "download"; path: string }
  | { type: "delete"; path: string }
  /** Save the running guest: "saved" or "save-failed" answers. */
  | { type: "save" };

export interface TreeEntry {
  path: string;
  name: string;
  depth: number;
  kind: "dir" | "file" | "symlink" | "special";
  mode: number;
  size: number;
  /** Symlinks: where they point. */
  target?: string;
}

/** Requests each guest's Worker history keeps from boot on (the oldest go first). */
export const HISTORY_SIZE = 2000;
/** Bytes kept of each request and of each reply: every struct, names, and the start of a payload. */
export const BYTES_KEPT = 512;

/** One FUSE request as the device saw it, and its reply once there is one: raw, the page decodes it. */
export interface TraceRecord {
  /** Which guest sent it: uniques are per guest. */
  guest: number;
  /** This guest's records in order from 0 (uniques start again when the guest mounts again). */
  seq: number;
  queue: number;
  /** Milliseconds since the Worker started, when the request reached the server. */
  at: number;
  /** fuse_in_header and the arguments, as read from the chain: the first BYTES_KEPT bytes. */
  request: Uint8Array;
  /** The request's whole length (fuse_in_header.len). */
  requestLength: number;
  /** The chain's descriptors, as the device walked them. */
  chain: readonly ChainDescriptor[];
  reply?: {
    error: number;
    /** Bytes the server wrote into the chain (fuse_out_header.len). */
    length: number;
    ms: number;
    /** fuse_out_header and the payload as written: the first BYTES_KEPT bytes. */
    bytes: Uint8Array;
  };
}

/** One guest's traffic since its last batch, and its device's state. */
export interface InspectBatch {
  guest: number;
  /** New requests, and requests of an earlier batch again once their reply is in (`reply` set). */
  records: TraceRecord[];
  /** Records left out because the page could not have kept up (the history still has them). */
  dropped: number;
  queues: QueueState[];
  counts: [op: string, n: number][];
  paused: boolean;
}

/** The share's DAX window, posted once. */
export interface DaxWindowInfo {
  /** The window's size in bytes. */
  size: number;
  /** Where v86's memory is shared (a cross-origin isolated page): the page reads the window there, live. */
  live?: DaxLive;
}

/** Views of the Worker's SharedArrayBuffers: posting them shares the memory, so the page sees every change. */
export interface DaxLive {
  /** v86's memory; the window is `size` bytes of it from `offset` (where guest RAM starts + the BAR's address). */
  memory: SharedArrayBuffer;
  offset: number;
  /** Per 4 KiB page: DAX_PAGE_MAPPED | DAX_PAGE_WRITABLE (device/dax-window.ts). */
  pageState: Uint8Array;
  /** Per page: 1 while the guest's stores to it have not been written back (found as the Worker polls). */
  dirty: Uint8Array;
}

/** Unshared memory: the window's state as it was (copies), posted once a second while the inspector is on. */
export interface DaxCopy {
  pageState: Uint8Array<ArrayBuffer>;
  dirty: Uint8Array<ArrayBuffer>;
  /** Per page: pageSignature (dax-signature.ts). */
  signatures: Int32Array<ArrayBuffer>;
}

/** One mapped extent of the DAX window: which file range sits where. */
export interface DaxMapped {
  /** Window offset and length in bytes. */
  moffset: number;
  length: number;
  /** The file offset shown at `moffset`. */
  foffset: number;
  writable: boolean;
  /** The guest's node id of the file, while it holds one. */
  nodeid?: number;
  /** The file's path in the share, when the file panel's listing knows the inode. */
  path?: string;
}

export type FromWorker =
  | { type: "progress"; phase: "download" | "boot"; loaded: number; total: number }
  | { type: "serial"; guest: number; data: Uint8Array }
  | { type: "ready"; guest: number; uptime: number; bootMs: number }
  | { type: "halted"; guest: number }
  | { type: "error"; message: string }
  /** The share is attached: what serves it. */
  | { type: "share"; backend: Backend; label: string }
  /** The guest boots from the root image (`label`: where its changes go), or, `missing` saying why not, without it. */
  | { type: "root"; label: string }
  | { type: "root-missing"; message: string }
  | { type: "tree"; entries: TreeEntry[]; truncated: boolean }
  | ({ type: "inspect" } & InspectBatch)
  /** Every guest's history, oldest first, as the inspector opens; `dropped` went for want of room. */
  | { type: "backlog"; records: TraceRecord[]; dropped: number }
  /** The share has a DAX window: sent once the guest is up. */
  | ({ type: "dax-window" } & DaxWindowInfo)
  /** The window's state, when the page cannot read it live. */
  | ({ type: "dax-copy" } & DaxCopy)
  /** What the window maps, whenever that changed while the inspector is on screen. */
  | { type: "dax-mappings"; mappings: DaxMapped[] }
  | { type: "file"; name: string; data: ArrayBuffer }
  /** The guest resumed from a snapshot taken at `created` (ISO 8601); `kept`: the one kept in OPFS. */
  /** A snapshot was resumed; `daxMiB`: the snapshot's share has a DAX window of that size. */
  | { type: "restored"; created: string; kept: boolean; daxMiB?: number }
  /** A snapshot could not be restored (`message` says why); the page boots fresh in a new Worker. */
  | { type: "restore-failed"; message: string; kept: boolean }
  /** Save's snapshot file; `kept`: also kept in OPFS for the next visit. */
  | { type: "saved"; data: ArrayBuffer; created: string; kept: boolean; ms: number }
  | { type: "save-failed"; message: string }
  | { type: "notice"; level: "info" | "error"; message: string };
