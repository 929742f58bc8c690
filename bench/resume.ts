// Resuming a snapshot against booting, side by side in one run: in Node, bootGuest against restoreGuest of
// the same guest (the demo's sample tree on memfs), to the first command's answer; in headless Chromium,
// page to shell on the built site (what a user gets), a first visit against a visit that resumes the
// kept snapshot. Samples interleave, so both see the same machine load.
import { chromium, type Page } from "@playwright/test";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build, preview } from "vite";
import { bootGuest, CHROMIUM_ARGS, CHROMIUM_PATH, createSampleTree, MemFs, restoreGuest, type Guest, type GuestShare } from "../src/node.ts";

export interface ResumeResults {
  /** Wall time (ms) per sample. */
  node: { boot: number[]; resume: number[]; snapshotBytes: number };
  browser?: { boot: number[]; resume: number[]; snapshotBytes: number };
}

const sampleShare = async (): Promise<GuestShare> => {
  const fs = new MemFs();
  await createSampleTree(fs);
  return { tag: "share", fs, mountPoint: "/mnt" };
};

async function answered(guest: Guest): Promise<void> {
  const r = await guest.run("cat /mnt/hello.txt");
  if (r.status !== 0) throw new Error(`the guest did not answer: exit ${r.status}`);
}

async function timed(start: () => Promise<Guest>): Promise<number> {
  const t0 = performance.now();
  const guest = await start();
  await answered(guest);
  const ms = performance.now() - t0;
  await guest.shutdown();
  return ms;
}

export async function resumeInNode(reps: number, log: (line: string) => void): Promise<ResumeResults["node"]> {
  const first = await bootGuest({ shares: [await sampleShare()] });
  await answered(first);
  const snapshot = await first.saveState();
  await first.shutdown();
  const out = { boot: [] as number[], resume: [] as number[], snapshotBytes: snapshot.length };
  for (let i = 0; i < reps; i++) {
    out.boot.push(await timed(async () => bootGuest({ shares: [await sampleShare()] })));
    out.resume.push(await timed(() => restoreGuest({ snapshot, shares: (saved) => saved.map((s) => ({ ...s, fs: new MemFs() })) })));
    log(`resume, Node ${i + 1}/${reps}: boot ${out.boot[i]!.toFixed(0)} ms, resume ${out.resume[i]!.toFixed(0)} ms`);
  }
  return out;
}

const root = fileURLToPath(new URL("..", import.meta.url));

/** Page to shell in ms, as the page measures it (from navigation). */
async function pageToShell(page: Page, url: string): Promise<number> {
  await page.goto(url);
  await page.waitForSelector("body[data-state=ready]", { timeout: 300_000 });
  return Number(await page.getAttribute("body", "data-page-ms"));
}

/** Builds the site into a temporary directory, serves it as `vite preview` does, and times visits in Chromium. */
export async function resumeInBrowser(reps: number, log: (line: string) => void): Promise<NonNullable<ResumeResults["browser"]>> {
  const outDir = await mkdtemp(join(tmpdir(), "vfsw-site-"));
  try {
    await build({ configFile: join(root, "vite.config.ts"), build: { outDir, emptyOutDir: true }, logLevel: "error" });
    const server = await preview({ configFile: join(root, "vite.config.ts"), build: { outDir }, preview: { port: 0, host: "127.0.0.1" }, logLevel: "error" });
    const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
    try {
      const url = server.resolvedUrls?.local[0];
      if (!url) throw new Error("vite preview has no local URL");
      // One context keeps the snapshot in its OPFS; each first visit gets a new context (nothing cached).
      const keeper = await browser.newContext();
      let page = await keeper.newPage();
      await pageToShell(page, url);
      const download = page.waitForEvent("download");
      await page.click("#btn-save");
      const snapshotBytes = (await readFile(await (await download).path())).length;
      await page.waitForSelector("#notices :text('the next visit resumes it')", { timeout: 60_000 });
      const out = { boot: [] as number[], resume: [] as number[], snapshotBytes };
      for (let i = 0; i < reps; i++) {
        const cold = await browser.newContext();
        out.boot.push(await pageToShell(await cold.newPage(), url));
        await cold.close();
        const next = await keeper.newPage();
        await page.close();
        page = next;
        out.resume.push(await pageToShell(page, url));
        if ((await page.getAttribute("body", "data-restored")) !== "kept") throw new Error("the visit booted instead of resuming the kept snapshot");
        log(`resume, Chromium ${i + 1}/${reps}: boot ${out.boot[i]!.toFixed(0)} ms, resume ${out.resume[i]!.toFixed(0)} ms`);
      }
      return out;
    } finally {
      await browser.close();
      await server.close();
    }
  } finally {
    await rm(outDir, { recursive: true, force: true });
  }
}
