// Messages between the page and the emulator Worker.
import type { ArgValue, QueueState } from "../src/index.ts";

/** Where the guest's /mnt comes from. */
export type Backend = "memfs" | "opfs" | "local";
export const BACKENDS: readonly Backend[] = ["memfs", "opfs", "local"];

export type DeviceAction = "pause" | "step" | "resume";

export type ToWorker =
  /** `daxMiB`: give the share a DAX window of that size, mounted with dax=always. */
  | { type: "start"; backend: Backend; folder?: FileSystemDirectoryHandle; memoryMiB: number; daxMiB?: number; append?: string }
  /** Keys for guest `guest`'s console (0, or 1 once the second guest runs). */
  | { type: "input"; guest: number; data: Uint8Array }
  /** Boot a second guest on the same share, beside the first (no DAX window). */
  | { type: "second-guest" }
  /** The inspector or the walkthrough is on screen: decode and send FUSE traffic (off, only counting). */
  | { type: "inspect"; on: boolean }
  | { type: "device"; action: DeviceAction }
  /** Paths are relative to the share's root, "" being the root itself. */
  | { type: "upload"; dir: string; name: string; data: ArrayBuffer }
  | { type: "download"; path: string }
  | { type: "delete"; path: string };

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

/** One FUSE request, and its reply once there is one. */
export interface TraceEvent {
  /** Which guest sent it: uniques are per guest. */
  guest: number;
  unique: number;
  queue: number;
  opcode: number;
  /** fuse.h's opcode name. */
  op: string;
  nodeid: number;
  args: Record<string, ArgValue>;
  text: string;
  /** Milliseconds since the Worker started, when the request reached the server. */
  at: number;
  reply?: { error: number; errno: string; bytes: number; ms: number };
}

/** One guest's traffic since its last batch, and its device's state. */
export interface InspectBatch {
  guest: number;
  /** New requests, and replies to requests sent in this or an earlier batch (`reply` set). */
  events: TraceEvent[];
  /** Events left out because the page could not have kept up. */
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
  | { type: "tree"; entries: TreeEntry[]; truncated: boolean }
  | ({ type: "inspect" } & InspectBatch)
  /** The share has a DAX window: sent once the guest is up. */
  | ({ type: "dax-window" } & DaxWindowInfo)
  /** The window's state, when the page cannot read it live. */
  | ({ type: "dax-copy" } & DaxCopy)
  /** What the window maps, whenever that changed while the inspector is on screen. */
  | { type: "dax-mappings"; mappings: DaxMapped[] }
  | { type: "file"; name: string; data: ArrayBuffer }
  | { type: "notice"; level: "info" | "error"; message: string };
