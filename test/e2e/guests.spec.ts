import { expect, test } from "@playwright/test";
import { boot, run } from "./page.ts";

const second = "#terminal-1";

test("two guests on one OPFS tree: a second terminal, files and locks shared, both in the inspector", async ({ page }, info) => {
  test.setTimeout(180_000); // two boots, one after the other, on a Worker they share
  await boot(page, "?backend=opfs");
  await page.locator("#btn-second-guest").click();
  await expect(page.locator(second)).toBeVisible();
  await expect(page.locator("body")).toHaveAttribute("data-second-guest", "ready", { timeout: 60_000 });
  await expect(page.locator(`${second} .xterm-rows`)).toContainText("[1] ", { timeout: 10_000 });
  await expect(page.locator("#btn-second-guest")).toBeDisabled();
  // The first guest restarted, so that its locks too are kept by the device.
  await expect(page.locator("body")).toHaveAttribute("data-boots", "2", { timeout: 60_000 });
  await expect(page.locator("#terminal .xterm-rows")).toContainText("# ", { timeout: 10_000 });

  expect(await run(page, "echo guest=$GUEST", 20_000, second)).toContain("guest=1");
  const token = `both-${Date.now()}`;
  await run(page, `echo ${token} > /mnt/two.txt`);
  expect(await run(page, "cat /mnt/two.txt", 20_000, second)).toContain(token);
  await run(page, `echo back-${token} >> /mnt/two.txt`, 20_000, second);
  expect(await run(page, "cat /mnt/two.txt")).toContain(`back-${token}`);

  // An exclusive flock in the first guest holds in the second, until its holder goes.
  await run(page, "flock -x /mnt/two.lock sleep 1000 & sleep 1");
  expect(await run(page, "flock -n /mnt/two.lock true; echo rc=$?", 20_000, second)).toContain("rc=1");
  await run(page, "kill %1; wait");
  expect(await run(page, "flock -n /mnt/two.lock true; echo rc=$?", 20_000, second)).toContain("rc=0");

  // The inspector shows both sessions: the second guest's requests and both guests' queues.
  await page.locator("#tab-inspector").click();
  await run(page, "ls /mnt > /dev/null", 20_000, second);
  await expect(page.locator('#log tbody tr[data-guest="1"]').first()).toBeAttached({ timeout: 10_000 });
  await expect(page.locator("#queues tbody")).toContainText("guest 1 · 1 · requests");
  await expect(page.locator("#queues tbody")).toContainText("guest 0 · 1 · requests");
  await page.screenshot({ path: info.outputPath("two-guests.png") });
});
