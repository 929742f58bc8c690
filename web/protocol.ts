// Messages between the page and the emulator Worker.
import type { QueueState } from "../device/virtio-fs.ts";
import type { ArgValue } from "../src/fuse/describe.ts";

/** Where the guest's /mnt comes from. */
export type Backend = "memfs" | "opfs" | "local";
export const BACKENDS: readonly Backend[] = ["memfs", "opfs", "local"];

export type DeviceAction = "pause" | "step" | "resume";

export type ToWorker =
  | { type: "start"; backend: Backend; folder?: FileSystemDirectoryHandle; memoryMiB: number; append?: string }
  | { type: "input"; data: Uint8Array }
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

export interface InspectBatch {
  /** New requests, and replies to requests sent in this or an earlier batch (`reply` set). */
  events: TraceEvent[];
  /** Events left out because the page could not have kept up. */
  dropped: number;
  queues: QueueState[];
  counts: [op: string, n: number][];
  paused: boolean;
}

export type FromWorker =
  | { type: "progress"; phase: "download" | "boot"; loaded: number; total: number }
  | { type: "serial"; data: Uint8Array }
  | { type: "ready"; uptime: number; bootMs: number }
  | { type: "halted" }
  | { type: "error"; message: string }
  /** The share is attached: what serves it. */
  | { type: "share"; backend: Backend; label: string }
  | { type: "tree"; entries: TreeEntry[]; truncated: boolean }
  | ({ type: "inspect" } & InspectBatch)
  | { type: "file"; name: string; data: ArrayBuffer }
  | { type: "notice"; level: "info" | "error"; message: string };
