import { expect, test } from "@playwright/test";
import { boot, docsShot } from "./page.ts";

test("How it works: a write made durable with fsync, step by step", async ({ page }) => {
  await boot(page);
  await page.locator("#tab-how").click();
  await page.locator('button[data-story="write"]').click();
  await expect(page.locator('li[data-step="w-fsync"]')).toHaveClass(/done/, { timeout: 20_000 });
  for (const step of ["w-create", "w-write"]) await expect(page.locator(`li[data-step="${step}"]`)).toHaveClass(/done/);
  await expect(page.locator('li[data-step="w-create"] .live')).toContainText('name="note.txt"');
  await expect(page.locator('li[data-step="w-write"] .live')).toContainText("size=6");
  await expect(page.locator('li[data-step="w-fsync"] .live')).toContainText("OK");
  // Without a DAX window the DAX story says what it needs.
  await page.locator('button[data-story="dax"]').click();
  await expect(page.locator('button[data-story="dax"] + .story-note')).toContainText("DAX window");
});

test("How it works: a read through the DAX window maps the file instead of reading it", async ({ page }, info) => {
  await page.setViewportSize({ width: 1280, height: 1200 });
  await boot(page, "?dax=64");
  await page.locator("#tab-how").click();
  const run = page.locator('button[data-story="dax"]');
  await run.click();
  await expect(page.locator('li[data-step="d-map"]')).toHaveClass(/done/, { timeout: 20_000 });
  await expect(page.locator('li[data-step="d-map"] .live')).toContainText("moffset=");
  await expect(page.locator('li[data-step="d-load"] .live')).toContainText("no FUSE_READ");
  // Again: dropping the caches evicts the inode, so its mapping goes first.
  await run.click();
  await expect(page.locator('li[data-step="d-remove"]')).toHaveClass(/done/, { timeout: 20_000 });
  await expect(page.locator('li[data-step="d-map"]')).toHaveClass(/done/, { timeout: 20_000 });
  await page.locator("section.story", { has: run }).screenshot({ path: docsShot(info, "story-dax.png") });
});
