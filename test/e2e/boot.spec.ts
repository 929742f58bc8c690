import { expect, test } from "@playwright/test";

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
