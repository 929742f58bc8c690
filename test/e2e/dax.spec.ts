import { expect, test, type Page } from "@playwright/test";
import { boot, run } from "./page.ts";

const FILE_START = "How a read reaches this file";

/** Keeps the Worker's dax-window message where the test can look at it (window.daxWindow). */
async function catchDaxWindow(page: Page): Promise<void> {
  await page.addInitScript(() => {
    const Native = Worker;
    window.Worker = class extends Native {
      constructor(url: string | URL, options?: WorkerOptions) {
        super(url, options);
        this.addEventListener("message", (e: MessageEvent<{ type?: string }>) => {
          if (e.data.type === "dax-window") (window as unknown as { daxWindow: unknown }).daxWindow = e.data;
        });
      }
    };
  });
}

const count = (page: Page, attribute: string) => async (): Promise<number> => Number(await page.locator("#dax").getAttribute(attribute));

test("with a DAX window, the inspector draws it live from v86's shared memory: mappings, activity, dirty pages", async ({ page }, info) => {
  await catchDaxWindow(page);
  await boot(page, "?dax=16");
  await expect(page.locator("#dax-on")).toBeChecked();
  await expect(page.locator("#dax-size")).toHaveValue("16");
  expect(await run(page, "grep ' /mnt ' /proc/mounts")).toMatch(/virtiofs .*dax=always/);
  await page.locator("#tab-inspector").click();
  const canvas = page.locator("#dax");
  await expect(canvas).toHaveAttribute("data-state", "attached");
  await expect(canvas).toHaveAttribute("data-source", "live");
  await expect(canvas).toHaveAttribute("data-mapped-ranges", "0");
  await expect(page.locator("#dax-source")).toContainText("live from v86's memory");

  await run(page, "cat /mnt/docs/virtio-fs.txt > /dev/null");
  await expect(canvas).toHaveAttribute("data-mapped-ranges", "1");
  await expect(page.locator("#dax-counts")).toContainText("1 of 8 ranges mapped · 1 file");
  // The fill (FUSE_SETUPMAPPING) changed the window's bytes: the page saw it in the shared memory.
  await expect.poll(count(page, "data-page-changes")).toBeGreaterThan(0);
  // fs/fuse/dax.c hands out free ranges in window order: the file is at the window's start, in the very
  // SharedArrayBuffer the Worker posted, which is v86's memory.
  const posted = await page.evaluate((length) => {
    const m = (window as unknown as { daxWindow: { size: number; live?: { memory: unknown; offset: number } } }).daxWindow;
    const memory = m.live?.memory;
    if (!(memory instanceof SharedArrayBuffer)) return { shared: false, size: m.size, start: "" };
    return { shared: true, size: m.size, start: new TextDecoder().decode(new Uint8Array(memory, m.live!.offset, length).slice()) };
  }, FILE_START.length);
  expect(posted).toEqual({ shared: true, size: 16 << 20, start: FILE_START });
  await canvas.hover({ position: { x: 4, y: 4 } });
  await expect(page.locator("#dax-info")).toContainText("range 0");
  await expect(page.locator("#dax-info")).toContainText("/mnt/docs/virtio-fs.txt");
  await expect(page.locator("#dax-info")).toContainText("read-only");

  // Guest stores through the window, once a second until killed: the pages light up as they change.
  await run(page, "dd if=/dev/zero of=/mnt/activity bs=4096 count=8 2>/dev/null; while :; do dd if=/dev/urandom of=/mnt/activity bs=4096 count=8 conv=notrunc 2>/dev/null; sleep 1; done & :");
  await expect.poll(count(page, "data-changed-pages"), { timeout: 20_000 }).toBeGreaterThan(0);
  await expect(page.locator("#dax-counts")).toContainText(/[1-9]\d* pages? changed in the last second/, { timeout: 10_000 });
  await page.screenshot({ path: info.outputPath("dax-activity.png") });
  await run(page, "kill $!; wait");

  // An overwrite in place is a store into the window: the page stays dirty while the descriptor is open
  // (the group holds it for 8 s), and close(2) writes it back (FLUSH).
  await run(page, "{ printf J; sleep 8; } 1<>/mnt/hello.txt & :");
  await expect.poll(count(page, "data-dirty-pages")).toBeGreaterThanOrEqual(1);
  await page.screenshot({ path: info.outputPath("dax.png") });
  await expect(canvas).toHaveAttribute("data-dirty-pages", "0", { timeout: 30_000 });
  expect(await run(page, "cat /mnt/hello.txt")).toContain("Jello from the browser!");
});

test("without cross-origin isolation v86's memory is not shared, and the DAX window still works, drawn from copies", async ({ page }) => {
  // The same page without COOP/COEP: no SharedArrayBuffer anywhere on it.
  await page.route("**/*", async (route) => {
    if (route.request().resourceType() !== "document") return route.continue();
    const response = await route.fetch();
    const headers = { ...response.headers() };
    delete headers["cross-origin-opener-policy"];
    delete headers["cross-origin-embedder-policy"];
    await route.fulfill({ response, headers });
  });
  await boot(page, "?dax=16");
  expect(await page.evaluate(() => crossOriginIsolated)).toBe(false);
  await expect(page.locator("#isolation")).toBeVisible();
  await expect(page.locator("#isolation")).toContainText("v86 runs without shared memory");
  await expect(page.locator("#dax-on")).toBeEnabled();
  await expect(page.locator("#dax-on")).toBeChecked();
  await page.locator("#tab-inspector").click();
  const canvas = page.locator("#dax");
  await expect(canvas).toHaveAttribute("data-source", "copy");
  await expect(page.locator("#dax-source")).toContainText("without shared memory");

  expect(await run(page, "cat /mnt/docs/virtio-fs.txt")).toContain(FILE_START);
  await expect(canvas).toHaveAttribute("data-mapped-ranges", "1");
  await expect.poll(count(page, "data-page-changes")).toBeGreaterThan(0);
});
