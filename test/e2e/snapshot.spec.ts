// Snapshots on the page: Save downloads one and keeps it in OPFS, the next visit resumes it (the guest's
// processes, open files and the share as they were), bad files get one message, "Boot fresh" boots.
import { readFile } from "node:fs/promises";
import { expect, test, type Page } from "@playwright/test";
import { boot, run } from "./page.ts";

const banner = "#snapshot-banner";
const sums = (text: string): string[] => [...text.matchAll(/\b[0-9a-f]{64}\b/g)].map((m) => m[0]).sort();

/** Saves the guest; resolves to the downloaded snapshot file, once the Worker has kept it too. */
async function save(page: Page): Promise<Buffer> {
  const download = page.waitForEvent("download");
  await page.locator("#btn-save").click();
  const file = await readFile(await (await download).path());
  await expect(page.locator("#notices")).toContainText("the next visit resumes it", { timeout: 30_000 });
  return file;
}

/** Opens the page again in the same browser context (the same OPFS), the old one closed. */
async function revisit(page: Page, query = ""): Promise<Page> {
  const next = await page.context().newPage();
  await page.close();
  await boot(next, query);
  return next;
}

test("Save, then the next visit resumes the guest: processes, open files, the share", async ({ page }, info) => {
  test.setTimeout(240_000);
  await boot(page);
  await expect(page.locator("#btn-save")).toBeEnabled();
  const before = await run(page, "echo one > /mnt/a.txt && head -c 50000 /dev/urandom > /mnt/docs/r.bin && sha256sum /mnt/a.txt /mnt/docs/r.bin /mnt/hello.txt", 60_000);
  expect(sums(before)).toHaveLength(3);
  // A writer holding /mnt/w.log open, one line a second, and a sleeper.
  await run(page, "(i=0; while [ $i -lt 100000 ]; do echo line-$i; i=$((i+1)); sleep 1; done) > /mnt/w.log & sleep 1000 & echo sleeper=$!");
  const sleeper = /sleeper=(\d+)/.exec(await page.locator("#terminal .xterm-rows").innerText())?.[1];
  expect(sleeper).toBeDefined();
  await page.waitForTimeout(2000);

  const file = await save(page);
  expect(file.subarray(0, 8).toString("latin1")).toBe("VFSWSNAP");
  const linesAtSave = Number(/lines=(\d+)/.exec(await run(page, "wc -l < /mnt/w.log | sed 's/^/lines=/'"))?.[1]);
  expect(linesAtSave).toBeGreaterThan(0);

  page = await revisit(page);
  await expect(page.locator(banner)).toContainText("restored from snapshot of");
  await expect(page.locator("body")).toHaveAttribute("data-restored", "kept");
  info.annotations.push({ type: "page to shell (restored)", description: `${await page.locator("body").getAttribute("data-page-ms")} ms` });
  await page.screenshot({ path: info.outputPath("restored.png") });

  expect(sums(await run(page, "sha256sum /mnt/a.txt /mnt/docs/r.bin /mnt/hello.txt"))).toEqual(sums(before));
  expect(await run(page, `kill -0 ${sleeper} && echo sleeper-alive`)).toContain("sleeper-alive");
  // The writer goes on where it was, in the same file: every line once, in order.
  await page.waitForTimeout(3000);
  const log = await run(page, `awk '{ if ($0 != "line-" NR-1) bad++ } END { print "n=" NR " bad=" bad+0 }' /mnt/w.log`);
  expect(log).toContain(" bad=0");
  expect(Number(/n=(\d+)/.exec(log)?.[1])).toBeGreaterThan(linesAtSave);
  // The restored tree is the backend's: the panel lists it, and new writes reach it.
  await expect(page.locator('#file-tree li[data-path="a.txt"]')).toBeVisible({ timeout: 10_000 });
  await run(page, "echo after > /mnt/after.txt");
  await expect(page.locator('#file-tree li[data-path="after.txt"]')).toBeVisible({ timeout: 10_000 });

  // A truncated file: one message, and the running guest goes on.
  await page.locator("#restore-input").setInputFiles({ name: "cut.vfsw", mimeType: "application/octet-stream", buffer: file.subarray(0, file.length >> 1) });
  await expect(page.locator(banner)).toContainText("cut.vfsw cannot be restored: snapshot is truncated or damaged");
  expect(await run(page, "cat /mnt/after.txt")).toContain("after");
  await page.locator("#restore-input").setInputFiles({ name: "junk.vfsw", mimeType: "application/octet-stream", buffer: Buffer.from("not a snapshot at all") });
  await expect(page.locator(banner)).toContainText("junk.vfsw cannot be restored: not a virtiofs-web snapshot");

  // The saved file through Restore…: the guest as it was saved.
  await page.locator("#restore-input").setInputFiles({ name: "saved.vfsw", mimeType: "application/octet-stream", buffer: file });
  await expect(page.locator(banner)).toContainText("restored from saved.vfsw, a snapshot of", { timeout: 50_000 });
  await expect(page.locator("body")).toHaveAttribute("data-state", "ready");
  expect(await run(page, "ls /mnt/after.txt 2>&1")).toContain("No such file");
  expect(sums(await run(page, "sha256sum /mnt/a.txt /mnt/docs/r.bin /mnt/hello.txt"))).toEqual(sums(before));
});

test("Boot fresh drops the kept snapshot; a foreign kept snapshot boots fresh with one message", async ({ page }) => {
  test.setTimeout(240_000);
  await boot(page);
  await run(page, "echo kept > /mnt/kept.txt");
  const file = await save(page);
  page = await revisit(page);
  await expect(page.locator(banner)).toContainText("restored from snapshot of");
  expect(await run(page, "cat /mnt/kept.txt")).toContain("kept");

  await page.locator("#btn-boot-fresh").click();
  await expect(page.locator("body")).toHaveAttribute("data-state", "ready", { timeout: 50_000 });
  await expect(page.locator(banner)).toBeHidden();
  expect(await run(page, "ls /mnt/kept.txt 2>&1")).toContain("No such file");
  page = await revisit(page); // nothing kept: a boot
  await expect(page.locator(banner)).toBeHidden();
  expect(await page.locator("body").getAttribute("data-restored")).toBeNull();

  // A kept snapshot of other guest images (its recorded sha256 changed, the checksum made right again).
  const foreign = await foreignImages(file);
  await page.route("**/foreign.vfsw", (r) => r.fulfill({ body: foreign }));
  await page.evaluate(async () => {
    const root = await navigator.storage.getDirectory();
    const out = await (await root.getFileHandle("kept-snapshot.memfs.vfsw", { create: true })).createWritable();
    await out.write(await (await fetch("/foreign.vfsw")).arrayBuffer());
    await out.close();
  });
  page = await revisit(page);
  await expect(page.locator(banner)).toContainText("the snapshot was not restored: the snapshot was taken with another bzImage");
  await expect(page.locator(banner)).toContainText("Booted fresh");
  expect(await run(page, "cat /mnt/hello.txt")).toContain("Hello");

  // Save is for one guest: a second one turns it off, saying why.
  await page.locator("#btn-second-guest").click();
  await expect(page.locator("#btn-save")).toBeDisabled();
  await expect(page.locator("#btn-save")).toHaveAttribute("title", /Two guests share the backend/);
});

test("OPFS: the next visit resumes over the tree as it is now; a file removed meanwhile is stale, never another's", async ({ page }) => {
  test.setTimeout(240_000);
  await boot(page, "?backend=opfs");
  const token = `t${Date.now()}`;
  // The shell itself holds gone.txt open (fd 3), unread, so no page of it is cached in the guest.
  await run(page, `echo keep-${token} > /mnt/keep.txt && echo gone-${token} > /mnt/gone.txt && sync && exec 3</mnt/gone.txt`);
  await save(page);
  const origin = await page.context().newPage();
  await page.close();

  // Meanwhile, outside the guest: gone.txt goes, another file comes.
  await origin.goto("/guest/manifest.json");
  await origin.evaluate(async () => {
    const share = await (await navigator.storage.getDirectory()).getDirectoryHandle("share");
    for (let i = 0; ; i++) {
      try {
        await share.removeEntry("gone.txt"); // the closed page's Worker may hold it a moment longer
        break;
      } catch (e) {
        if (i === 50) throw e;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    const out = await (await share.getFileHandle("intruder.txt", { create: true })).createWritable();
    await out.write("intruder\n");
    await out.close();
  });
  await boot(origin, "?backend=opfs");
  page = origin;
  await expect(page.locator(banner)).toContainText("restored from snapshot of");
  expect(await run(page, "cat /mnt/keep.txt")).toContain(`keep-${token}`);
  const held = await run(page, "cat <&3; echo rc=$?");
  expect(held).toContain("Stale file handle");
  expect(held).not.toContain("intruder");
  expect(held).not.toContain(`keep-${token}`);
  expect(await run(page, "cat /mnt/gone.txt 2>&1")).toMatch(/Stale file handle|No such file/);
  expect(await run(page, "cat /mnt/intruder.txt")).toContain("intruder");
  await run(page, `echo new-${token} > /mnt/new.txt && sync`);
  await expect(page.locator('#file-tree li[data-path="new.txt"]')).toBeVisible({ timeout: 10_000 });
});

test("With a DAX window: a program running from the window carries on after the next visit resumes it", async ({ page }) => {
  test.setTimeout(240_000);
  await boot(page, "?dax=16");
  await expect(page.locator("#btn-save")).toBeEnabled();
  // busybox copied onto the share runs from the window (dax=always maps its pages there); it sleeps on.
  const before = await run(page, "cp /bin/busybox /mnt/bb && head -c 300000 /dev/urandom > /mnt/r && sha256sum /mnt/bb /mnt/r", 60_000);
  await run(page, "/mnt/bb sleep 1000 & echo sleeper=$!");
  const sleeper = /sleeper=(\d+)/.exec(await page.locator("#terminal .xterm-rows").innerText())?.[1];
  expect(sleeper).toBeDefined();
  expect(sums(before)).toHaveLength(2);
  await save(page);

  // The kept snapshot is for this window size: a visit without the window boots, one with it resumes.
  page = await revisit(page);
  await expect(page.locator(banner)).toBeHidden();
  expect(await page.locator("body").getAttribute("data-restored")).toBeNull();
  page = await revisit(page, "?dax=16");
  await expect(page.locator(banner)).toContainText("restored from snapshot of");
  await expect(page.locator("#dax-on")).toBeChecked();
  await page.locator("#tab-inspector").click();
  await expect(page.locator("#dax")).toHaveAttribute("data-source", "live");
  // The window's mappings came back with the guest: the sleeper's text pages are still mapped.
  expect(Number(await page.locator("#dax").getAttribute("data-mapped-ranges"))).toBeGreaterThan(0);
  expect(await run(page, `kill -0 ${sleeper} && echo sleeper-alive`)).toContain("sleeper-alive");
  expect(sums(await run(page, "sha256sum /mnt/bb /mnt/r"))).toEqual(sums(before));
  expect(await run(page, "/mnt/bb echo from-the-window")).toContain("from-the-window");
});

/** The snapshot, as if taken with another kernel: the body re-gzipped with bzImage's sha256 changed. */
async function foreignImages(file: Buffer): Promise<Buffer> {
  const { gunzipSync, gzipSync } = await import("node:zlib");
  const { createHash } = await import("node:crypto");
  const body = gunzipSync(file.subarray(44));
  const manifest = JSON.parse(await readFile("public/guest/manifest.json", "utf8")) as { files: { name: string; sha256: string }[] };
  const sum = manifest.files.find((f) => f.name === "bzImage")!.sha256;
  const at = body.indexOf(Buffer.from(sum, "latin1"));
  expect(at).toBeGreaterThan(0);
  body.write("0".repeat(64), at, "latin1");
  const zipped = gzipSync(body);
  return Buffer.concat([file.subarray(0, 12), createHash("sha256").update(zipped).digest(), zipped]);
}
