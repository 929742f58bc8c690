import { expect, test } from "@playwright/test";
import { boot, run } from "./page.ts";

test("the page boots the guest and the terminal runs a command", async ({ page }, info) => {
  const t0 = Date.now();
  await page.goto("/");
  expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
  await expect(page.locator("#isolation")).toBeHidden();
  await expect(page.locator("body")).toHaveAttribute("data-state", "ready", { timeout: 90_000 });
  const rows = page.locator(".xterm-rows");
  await expect(rows).toContainText("# ", { timeout: 30_000 });
  info.annotations.push({ type: "page load to shell", description: `${Date.now() - t0} ms` });

  await page.locator(".xterm").click();
  await page.keyboard.type("uname -m; echo done-$((6*7))\n");
  await expect(rows).toContainText("done-42", { timeout: 30_000 });
  await expect(rows).toContainText("i686");
  await expect(page.locator("#status")).toContainText("shell ready");
  await page.screenshot({ path: info.outputPath("shell.png") });
});

test("a reboot typed in the terminal brings the guest back with /mnt mounted", async ({ page }) => {
  await boot(page);
  await page.evaluate(() => document.body.removeAttribute("data-state"));
  await page.locator(".xterm").click();
  await page.keyboard.type("reboot -f\n");
  // The Worker says ready again when the rebooted guest's init is up.
  await expect(page.locator("body")).toHaveAttribute("data-state", "ready", { timeout: 60_000 });
  const out = await run(page, "cat /mnt/hello.txt; grep -c ' /mnt virtiofs' /proc/mounts");
  expect(out).toContain("Hello from the browser!");
  expect(out).toMatch(/^1$/m);
});
