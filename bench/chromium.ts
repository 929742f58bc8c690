// Headless Chromium on a page of a Vite dev server, for the browser half of the benchmarks: the demo
// (web/) for boot timing, bench/browser/ for the file-system workloads. Debian's Chromium, as the tests
// launch it; Playwright never downloads one.
import { chromium, type Page } from "@playwright/test";
import { fileURLToPath } from "node:url";
import { createServer, type InlineConfig } from "vite";
import { join } from "node:path";
import { CHROMIUM_ARGS, CHROMIUM_PATH, debianRootDir } from "../src/node.ts";
import type { BenchResults, BenchWindow } from "./browser/protocol.ts";
import type { FsResults, Target, Workload } from "./fs.ts";
import type { RootSample } from "./root.ts";

const path = (rel: string) => fileURLToPath(new URL(rel, import.meta.url));

/** Serves bench/browser/ with web's config (isolation headers, node polyfills) and public/ (the guest images). */
const BENCH_SITE: InlineConfig = {
  root: path("browser/"),
  publicDir: path("../public/"),
  // Its own dependency cache: the cache is keyed on the root, so sharing web's would have each server
  // re-optimize over the other's (the demo's or the e2e tests' server may be running).
  cacheDir: path("../node_modules/.vite-bench/"),
  // The worker's dependencies (v86, memfs) are found up front: finding them late reloads the page mid-run.
  optimizeDeps: { entries: ["index.html", "bench.worker.ts"] },
};

/** Starts a Vite dev server (web/ unless `site` overrides it) and Chromium, and hands `use` a blank page and the server's URL. */
export async function withPage<T>(site: InlineConfig, use: (page: Page, url: string) => Promise<T>): Promise<T> {
  // Unwatched: an edit to the tree during a run would otherwise reload the page and start the guest over.
  const server = await createServer({ configFile: path("../vite.config.ts"), ...site, server: { ...site.server, port: 0, host: "127.0.0.1", watch: null }, logLevel: "error" });
  await server.listen();
  try {
    const url = server.resolvedUrls?.local[0];
    if (!url) throw new Error("the Vite dev server has no local URL");
    const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
    try {
      return await use(await browser.newPage(), url);
    } finally {
      await browser.close();
    }
  } finally {
    await server.close();
  }
}

/** Runs the bench page's Worker with these URL parameters; its progress lines arrive as console messages. */
function runInBenchPage(site: InlineConfig, params: Record<string, string>, log: (line: string) => void): Promise<BenchResults> {
  return withPage(site, async (page, url) => {
    page.on("console", (m) => {
      if (m.type() !== "debug") log(m.text()); // debug is Vite's client chatter
    });
    page.on("pageerror", (e) => log(`page error: ${e.message}`));
    await page.goto(`${url}?${new URLSearchParams(params)}`);
    return page.evaluate(() => (window as unknown as BenchWindow).bench);
  });
}

/** bench/fs.ts's runFsBench in a Worker of the bench page. */
export async function runFsBenchInBrowser(workloads: Workload[], targets: Target[], reps: number, log: (line: string) => void): Promise<FsResults> {
  const r = await runInBenchPage(BENCH_SITE, { workloads: workloads.map((w) => w.name).join(","), targets: targets.map((t) => t.id).join(","), reps: String(reps) }, log);
  if (r.kind !== "fs") throw new Error("the bench page answered another bench");
  return r.fs;
}

/** bench/root.ts's runRootBench in a Worker of the bench page: the image over HTTP as ?root=debian reads it, v86's basefs through Vite's /@fs/. */
export async function runRootBenchInBrowser(reps: number, log: (line: string) => void): Promise<Record<string, RootSample[]>> {
  const v86Dir = join(debianRootDir(), "v86");
  const site: InlineConfig = { ...BENCH_SITE, server: { fs: { allow: [path("../"), v86Dir] } } };
  const r = await runInBenchPage(site, { root: "", v86: v86Dir, reps: String(reps) }, log);
  if (r.kind !== "root") throw new Error("the bench page answered another bench");
  return r.root;
}
