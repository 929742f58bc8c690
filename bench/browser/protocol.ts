// Between the bench page and its Worker, and what the page offers bench/chromium.ts.
import type { FsResults } from "../fs.ts";

/** Page → Worker: the workloads (bench/fs.ts names), targets (ids) and rounds, from the page's URL (?workloads=a,b&targets=c,d&reps=n). */
export interface FsBenchRequest {
  workloads: string[];
  targets: string[];
  reps: number;
}

/** Worker → page. */
export type FsBenchMessage = { type: "log"; line: string } | { type: "done"; results: FsResults } | { type: "error"; message: string };

/** The page's global that Playwright awaits. */
export interface FsBenchWindow {
  fsBench: Promise<FsResults>;
}
