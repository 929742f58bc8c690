import { expect, test } from "@playwright/test";
import { boot, run } from "./page.ts";

test("the inspector shows the LOOKUP, OPEN and READ of a cat, and the walkthrough follows it", async ({ page }, info) => {
  await boot(page);
  await page.locator("#tab-inspector").click();
  await run(page, "cat /mnt/docs/virtio-fs.txt > /dev/null");
  const log = page.locator("#log tbody");
  const lookup = log.locator('tr[data-op="FUSE_LOOKUP"]', { hasText: 'name="virtio-fs.txt"' });
  await expect(lookup).toBeVisible();
  await expect(lookup).toContainText("OK");
  const open = log.locator('tr[data-op="FUSE_OPEN"]').last();
  await expect(open).toContainText("O_RDONLY");
  await expect(open).toContainText("ENOSYS"); // zero-message open from now on
  const read = log.locator('tr[data-op="FUSE_READ"]').last();
  await expect(read).toContainText("offset=0");
  await expect(read.locator("td").nth(5)).toHaveText("563"); // fuse_out_header + the file's 547 bytes
  await expect(page.locator("#queues tbody tr")).toHaveCount(2);
  await expect(page.locator("#counts")).toContainText("LOOKUP");

  // Filtering narrows the log to what matches.
  await page.locator("#log-filter").fill("virtio-fs.txt");
  await expect(log.locator("tr:visible")).toHaveCount(1);
  await page.locator("#log-filter").fill("");
  await page.screenshot({ path: info.outputPath("inspector.png") });

  // Paused, the device holds the guest's requests until Step lets them through one at a time.
  await page.locator("#btn-pause").click();
  await page.locator(".xterm").click();
  await page.keyboard.type("cat /mnt/hello.txt\n");
  await expect(page.locator("#device-state")).toContainText("1 held", { timeout: 10_000 });
  for (let i = 0; i < 20 && !(await page.locator(".xterm-rows").innerText()).includes("Hello from the browser!"); i++) {
    await page.locator("#btn-step").click();
    await page.waitForTimeout(150);
  }
  await page.locator("#btn-resume").click();
  await expect(page.locator(".xterm-rows")).toContainText("Hello from the browser!");

  // The walkthrough drops the guest's caches first, so the cat starts with a LOOKUP and reads from the
  // device. Its open sends nothing: the session's first OPEN (above) was answered ENOSYS.
  await page.locator("#tab-how").click();
  await page.locator("#btn-run-cat").click();
  for (const step of ["lookup", "open", "read", "release"]) {
    await expect(page.locator(`li[data-step="${step}"]`)).toHaveClass(/done/);
  }
  await expect(page.locator('li[data-step="open"] .live')).toContainText("zero-message open");
  await expect(page.locator('li[data-step="read"] .live')).toContainText("fh 0");
  await page.screenshot({ path: info.outputPath("how-it-works.png") });
});
