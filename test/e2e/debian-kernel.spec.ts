// ?kernel=debian: the page boots Debian 12's stock kernel (public/guest-debian/, npm run guest:debian-kernel)
// with its own modules, loaded by modalias, and the share works as on the project's kernel.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { expect, test } from "@playwright/test";
import { DEBIAN_IMAGES_DIR } from "../../src/machine/node-images.ts";
import { run } from "./page.ts";

const absent = !existsSync(join(DEBIAN_IMAGES_DIR, "manifest.json"));
const why = `no ${DEBIAN_IMAGES_DIR} (run npm run guest:debian-kernel)`;
if (absent) console.warn(`test/e2e/debian-kernel.spec.ts skipped: ${why}`);

test("?kernel=debian boots Debian's stock kernel, its virtio-fs modules loaded by modalias", async ({ page }) => {
  test.skip(absent, why);
  test.setTimeout(300_000);
  await page.goto("/?kernel=debian");
  await expect(page.locator("body")).toHaveAttribute("data-state", "ready", { timeout: 240_000 });
  await expect(page.locator("#dax-on")).toBeDisabled();
  const out = await run(page, "uname -r; grep -o '^virtio_pci\\|^virtiofs' /proc/modules; echo hi > /mnt/k && cat /mnt/k", 60_000);
  expect(out).toMatch(/^6\.1\.0-\d+-686\r?$/m);
  expect(out).toMatch(/^virtio_pci\r?$/m);
  expect(out).toMatch(/^virtiofs\r?$/m);
  expect(out).toMatch(/^hi\r?$/m);
});
