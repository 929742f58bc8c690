// Messages between the page and the emulator Worker.

export type ToWorker =
  | { type: "start"; memoryMiB: number; append?: string }
  | { type: "input"; data: Uint8Array };

export type FromWorker =
  | { type: "progress"; phase: "download" | "boot"; loaded: number; total: number }
  | { type: "serial"; data: Uint8Array }
  | { type: "ready"; uptime: number; bootMs: number }
  | { type: "halted" }
  | { type: "error"; message: string };
