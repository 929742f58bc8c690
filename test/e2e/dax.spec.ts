import { expect, test } from "@playwright/test";
import { boot, run } from "./page.ts";

test("with a DAX window, the inspector draws the ranges a cat maps and the pages a store dirties", async ({ page }, info) => {
  await boot(page, "?dax=64");
  await expect(page.locator("#dax-on")).toBeChecked();
  expect(await run(page, "grep ' /mnt ' /proc/mounts")).toMatch(/virtiofs .*dax=/);
  await page.locator("#tab-inspector").click();
  const canvas = page.locator("#dax");
  await expect(canvas).toHaveAttribute("data-state", "attached");
  await expect(canvas).toHaveAttribute("data-mapped-ranges", "0");

  await run(page, "cat /mnt/docs/virtio-fs.txt > /dev/null");
  await expect(canvas).toHaveAttribute("data-mapped-ranges", "1");
  await expect(page.locator("#dax-counts")).toContainText("1 of 32 ranges mapped · 1 file");
  // fs/fuse/dax.c hands out free ranges in window order: the first mapping is range 0, the top left cell.
  await canvas.hover({ position: { x: 4, y: 4 } });
  await expect(page.locator("#dax-info")).toContainText("range 0");
  await expect(page.locator("#dax-info")).toContainText("/mnt/docs/virtio-fs.txt");
  await expect(page.locator("#dax-info")).toContainText("read-only");

  // An overwrite in place is a store into the window: the page stays dirty while the descriptor is open
  // (the group holds it for 8 s), and close(2) writes it back (FLUSH).
  await run(page, "{ printf J; sleep 8; } 1<>/mnt/hello.txt & :");
  await expect(canvas).toHaveAttribute("data-mapped-ranges", "2");
  await expect(canvas).toHaveAttribute("data-dirty-pages", "1");
  await page.screenshot({ path: info.outputPath("dax.png") });
  await expect(canvas).toHaveAttribute("data-dirty-pages", "0", { timeout: 20_000 });
  expect(await run(page, "cat /mnt/hello.txt")).toContain("Jello from the browser!");
});
