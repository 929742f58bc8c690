import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { expect, test } from "@playwright/test";
import { boot, run } from "./page.ts";

test("a file dropped into the file panel is readable in the guest", async ({ page }, info) => {
  await boot(page);
  const text = `dropped at ${Date.now()}`;
  // A drop as the browser delivers it: a DataTransfer holding a File, on the file panel.
  await page.locator("#panel-files").evaluate((panel, content) => {
    const dt = new DataTransfer();
    dt.items.add(new File([content], "dropped.txt", { type: "text/plain" }));
    panel.dispatchEvent(new DragEvent("dragover", { dataTransfer: dt, bubbles: true, cancelable: true }));
    panel.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, text);
  await expect(page.locator('#file-tree li[data-path="dropped.txt"]')).toBeVisible({ timeout: 10_000 });
  expect(await run(page, "cat /mnt/dropped.txt")).toContain(text);

  // The picker works too, into the directory selected in the panel.
  await page.locator('#file-tree li[data-path="docs"]').click();
  await page.locator("#upload-input").setInputFiles({ name: "picked.bin", mimeType: "application/octet-stream", buffer: Buffer.from([0, 1, 2, 255]) });
  await expect(page.locator('#file-tree li[data-path="docs/picked.bin"]')).toBeVisible({ timeout: 10_000 });
  expect(await run(page, "od -An -tx1 /mnt/docs/picked.bin")).toContain("00 01 02 ff");
  await page.screenshot({ path: info.outputPath("dropped.png") });
});

test("a file written in the guest appears in the panel and downloads with the same bytes", async ({ page }, info) => {
  await boot(page);
  const out = await run(page, "head -c 100000 /dev/urandom > /mnt/from-guest.bin && sha256sum < /mnt/from-guest.bin");
  const guestSum = /\b([0-9a-f]{64})\b/.exec(out)?.[1];
  expect(guestSum).toBeDefined();
  const row = page.locator('#file-tree li[data-path="from-guest.bin"]');
  await expect(row).toBeVisible({ timeout: 10_000 }); // no reload: the panel follows the guest
  await expect(row.locator(".size")).toHaveText("98 KiB");
  const download = page.waitForEvent("download");
  await row.locator('button[data-action="download"]').click();
  const file = await (await download).path();
  const bytes = await readFile(file);
  expect(bytes.length).toBe(100_000);
  expect(createHash("sha256").update(bytes).digest("hex")).toBe(guestSum);
  await page.screenshot({ path: info.outputPath("written-in-guest.png") });
});
