import { expect, test } from "@playwright/test";
import { boot, run } from "./page.ts";

test("OPFS: what the guest wrote and synced is there after a reload", async ({ page }, info) => {
  await boot(page, "?backend=opfs");
  await expect(page.locator("#share-label")).toContainText("OPFS");
  expect(await run(page, "cat /mnt/hello.txt")).toContain("Hello from OPFS!");
  const token = `kept-${Date.now()}`;
  await run(page, `mkdir -p /mnt/dir && echo ${token} > /mnt/dir/note.txt && chmod 640 /mnt/dir/note.txt && ln -sf dir/note.txt /mnt/note.link && sync`);
  await page.screenshot({ path: info.outputPath("before-reload.png") });

  await page.reload();
  await expect(page.locator("body")).toHaveAttribute("data-state", "ready", { timeout: 50_000 });
  await expect(page.locator("#backend")).toHaveValue("opfs");
  expect(await run(page, "cat /mnt/note.link")).toContain(token);
  expect(await run(page, "stat -c '%A %U' /mnt/dir/note.txt")).toContain("-rw-r----- root");
  expect(await run(page, "readlink /mnt/note.link")).toContain("dir/note.txt");
  await expect(page.locator('#file-tree li[data-path="dir/note.txt"]')).toBeVisible();
  await page.screenshot({ path: info.outputPath("after-reload.png") });
});
