// Times of memfs nodes: memfs keeps Dates (milliseconds, within ±8.64e15 ms); the guest sets nanoseconds
// and any second, so the backend keeps the exact value beside the Date it set (memfs.ts's side table).

import type { Timespec } from "../../vfs/filesystem.ts";

export type TimeField = "atime" | "mtime" | "ctime";

/** Date's range (ECMAScript's time values stop at ±8.64e15 ms). */
const MAX_DATE_MS = 8.64e15;

export function timespec(date: Date): Timespec {
  const ms = date.getTime();
  const sec = Math.floor(ms / 1000);
  return { sec, nsec: (ms - sec * 1000) * 1_000_000 };
}

/** The Date memfs holds for `time`: truncated to the millisecond, clamped to Date's range. */
export function dateOf(time: Timespec): Date {
  return new Date(Math.max(-MAX_DATE_MS, Math.min(MAX_DATE_MS, time.sec * 1000 + Math.floor(time.nsec / 1e6))));
}
