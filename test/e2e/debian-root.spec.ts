// ?root=debian: the page boots Debian 12 from the lazy image the dev server serves from where
// `npm run guest:rootfs` keeps it, under an overlay in OPFS that keeps the guest's changes across a reload.
// A root the server has no image of gets one notice and the normal guest.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { expect, test, type Page } from "@playwright/test";
import { debianRootDir } from "../../src/machine/node-images.ts";
import { run } from "./page.ts";

const index = join(debianRootDir(), "image", "index.json");
const absent = !existsSync(index);
const why = `no Debian root image at ${index} (run npm run guest:rootfs, as root on Debian 12)`;
if (absent) console.warn(`test/e2e/debian-root.spec.ts: Debian root test skipped: ${why}`);

/** Waits for the shell: a Debian root reads bash and its libraries over HTTP, file by file, as it boots. */
async function shell(page: Page): Promise<void> {
  await expect(page.locator("body")).toHaveAttribute("data-state", "ready", { timeout: 150_000 });
  await expect(page.locator(".xterm-rows")).toContainText("# ", { timeout: 20_000 });
}

test("?root=debian boots Debian 12 from the image, and the OPFS overlay keeps a change across a reload", async ({ page }, info) => {
  test.skip(absent, why);
  test.setTimeout(420_000);
  await page.goto("/?root=debian");
  await shell(page);
  await expect(page.locator("body")).toHaveAttribute("data-root", "up");
  await expect(page.locator("#root-label")).toContainText("OPFS");
  await expect(page.locator("#btn-save")).toBeDisabled();
  const out = await run(page, "cat /etc/debian_version; python3 -c 'print(6*7)'", 60_000);
  expect(out).toMatch(/^12\.\d+\r?$/m);
  expect(out).toMatch(/^42\r?$/m);
  // The /mnt share is there as on the normal page, inside the root.
  expect(await run(page, "cat /mnt/hello.txt")).toContain("Hello");
  await run(page, "echo kept > /root/kept.txt && sync");
  await page.screenshot({ path: info.outputPath("debian-root.png") });

  await page.reload();
  await shell(page);
  await expect(page.locator("body")).toHaveAttribute("data-root", "up");
  expect(await run(page, "cat /root/kept.txt")).toMatch(/^kept\r?$/m);
});

test("a root the server has no image of: one notice, and the normal guest boots", async ({ page }) => {
  await page.goto("/?root=nosuch");
  await expect(page.locator("body")).toHaveAttribute("data-state", "ready", { timeout: 50_000 });
  await expect(page.locator("body")).toHaveAttribute("data-root", "missing");
  await expect(page.locator("#root-banner")).toBeVisible();
  await expect(page.locator("#root-banner")).toContainText("not built");
  expect(await run(page, "cat /mnt/hello.txt")).toContain("Hello");
});
