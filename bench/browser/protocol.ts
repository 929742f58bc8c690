// Between the bench page and its Worker, and what the page offers bench/chromium.ts.
import type { FsResults } from "../fs.ts";
import type { RootSample } from "../root.ts";

/**
 * Page → Worker, from the page's URL: the file-system workloads (bench/fs.ts names), targets (ids) and
 * rounds (?workloads=a,b&targets=c,d&reps=n), or the Debian root's (?root&v86=DIR&reps=n: DIR is v86's
 * basefs tree on the server's disk, served through Vite's /@fs/).
 */
export type BenchRequest = { kind: "fs"; workloads: string[]; targets: string[]; reps: number } | { kind: "root"; v86Dir: string; reps: number };

export type BenchResults = { kind: "fs"; fs: FsResults } | { kind: "root"; root: Record<string, RootSample[]> };

/** Worker → page. */
export type BenchMessage = { type: "log"; line: string } | { type: "done"; results: BenchResults } | { type: "error"; message: string };

/** The page's global that Playwright awaits. */
export interface BenchWindow {
  bench: Promise<BenchResults>;
}
