import { readFileSync } from "node:fs";
import { expect, test } from "@playwright/test";
import { FuseOpcode, fuse_in_header } from "../../src/index.ts";
import { boot, docsShot, run } from "./page.ts";

test("the inspector keeps the traffic from boot on and shows a request's chain and bytes", async ({ page }, info) => {
  await page.setViewportSize({ width: 1280, height: 1500 }); // room for the byte view in the screenshots
  await boot(page);
  // Opened only now: INIT went by during the boot (the mount's only request), and is there all the same.
  await page.locator("#tab-inspector").click();
  const log = page.locator("#log tbody");
  const init = log.locator('tr[data-op="FUSE_INIT"]').first();
  await expect(init).toContainText("version=7.38");
  await expect(page.locator("#history-size")).toContainText("2000");

  // Keyboard: focus the first row, walk down to INIT with the arrow keys, open it with Enter.
  await log.locator("tr[data-key]").first().focus();
  const rows = await log.locator("tr[data-key]").evaluateAll((trs) => trs.map((tr) => (tr as HTMLElement).dataset.op));
  for (let i = 0; i < rows.indexOf("FUSE_INIT"); i++) await page.keyboard.press("ArrowDown");
  await expect(init).toBeFocused();
  await page.keyboard.press("Enter");
  const detail = page.locator("#detail");
  await expect(detail.locator("h3")).toContainText("FUSE_INIT");
  const request = detail.locator(".dump.request");
  const value = (dump: typeof request, name: string) => dump.locator(`tr[data-name="${name}"] td`).nth(3);
  await expect(value(request, "fuse_in_header.opcode")).toHaveText("26 FUSE_INIT");
  await expect(value(request, "fuse_init_in.major")).toHaveText("7");
  await expect(value(request, "fuse_init_in.minor")).toHaveText("38");
  await expect(value(request, "fuse_init_in.max_readahead")).toHaveText(/^\d+$/);
  await expect(value(request, "fuse_init_in.flags")).toContainText("FUSE_ASYNC_READ");
  await expect(value(request, "fuse_init_in.flags")).toContainText("FUSE_INIT_EXT");
  // The raw bytes: fuse_in_header.len 104 (0x68) and opcode 26 (0x1a), little-endian, the first row.
  await expect(request.locator(".hex .row").first()).toContainText("0000680000001a000000", { useInnerText: false });
  // Hovering a byte names its field and value.
  await expect(request.locator('.b[data-field]').nth(4)).toHaveAttribute("title", "fuse_in_header.opcode = 26 FUSE_INIT");
  await expect(value(detail.locator(".dump.reply"), "fuse_init_out.max_write")).toHaveText(/^\d+$/);
  await page.locator("#side").screenshot({ path: docsShot(info, "inspector-bytes.png") });

  // A cat's READ: the chain virtiofs.ko built (an indirect table: fuse_in_header and fuse_read_in for the
  // device to read, fuse_out_header and the pages for it to write).
  await run(page, "echo 3 > /proc/sys/vm/drop_caches; cat /mnt/hello.txt");
  const read = log.locator('tr[data-op="FUSE_READ"]').last();
  await expect(read).toContainText("OK");
  const args = (await read.locator("td").nth(3).innerText()).trim();
  await read.click();
  await expect(detail.locator("h3")).toContainText("FUSE_READ");
  await expect(detail.locator(".desc.readable").first()).toContainText("device-readable");
  await expect(detail.locator(".desc.writable").first()).toContainText("device-writable");
  info.annotations.push({ type: "READ chain", description: (await detail.locator(".desc").allInnerTexts()).join(" / ") });
  // The decoded fields are what the log's row says the request carried.
  const readRequest = detail.locator(".dump.request");
  for (const [k, v] of args.split(" ").map((kv) => kv.split("="))) await expect(value(readRequest, `fuse_read_in.${k}`)).toHaveText(v!);
  await expect(detail.locator(".dump.reply h4")).toContainText("bytes");
  await page.locator("#side").screenshot({ path: docsShot(info, "inspector-read-chain.png") });
  await expect(detail.locator(".dump.reply .hex")).toContainText("48656c6c6f", { useInnerText: false }); // "Hello"

  // The log goes out as JSON and comes back in, read without the guest.
  const shown = await log.locator("tr[data-key]").count();
  const download = page.waitForEvent("download");
  await page.locator("#btn-export").click();
  const file = info.outputPath("trace.json");
  await (await download).saveAs(file);
  const saved = JSON.parse(readFileSync(file, "utf8")) as { records: { request: string }[] };
  // Every request the log showed, the boot's INIT and the cat's READ among them (fuse_in_header.opcode's low byte).
  expect(saved.records.length).toBeGreaterThanOrEqual(shown);
  const at = 2 * fuse_in_header.opcode;
  const opcodes = saved.records.map((r) => parseInt(r.request.slice(at, at + 2), 16));
  expect(opcodes).toContain(FuseOpcode.FUSE_INIT);
  expect(opcodes).toContain(FuseOpcode.FUSE_READ);
  await page.locator("#import-input").setInputFiles(file);
  await expect(page.locator("#replay-note")).toContainText(`${saved.records.length} requests`);
  await log.locator('tr[data-op="FUSE_INIT"]').first().click();
  await expect(value(detail.locator(".dump.request"), "fuse_init_in.minor")).toHaveText("38");
  await page.locator("#btn-live").click();
  await expect(page.locator("#replay-note")).toHaveText("");
  await expect(log.locator('tr[data-op="FUSE_INIT"]')).not.toHaveCount(0);
});

test("the split ring view follows the device, one request at a time while paused", async ({ page }, info) => {
  await page.setViewportSize({ width: 1280, height: 1500 });
  await boot(page);
  await page.locator("#tab-inspector").click();
  await page.locator("#rings-box summary").click();
  const ring = page.locator('.ring[data-guest="0"][data-queue="1"]');
  await expect(ring).toContainText("last_avail_idx");
  await expect(ring).toContainText(/interrupts\s*\d+ sent · \d+ suppressed/);
  const usedIdx = async () => Number(/used ring\s*flags \d+ · idx (\d+)/.exec(await ring.innerText())![1]);

  // Paused, the device takes the cat's first chain off the avail ring and holds it.
  await page.locator("#btn-pause").click();
  await page.locator(".xterm").click();
  await page.keyboard.type("echo 3 > /proc/sys/vm/drop_caches; cat /mnt/hello.txt\n");
  await expect(ring).toContainText("1 held (paused)", { timeout: 10_000 });
  await expect(ring.locator(".slot.held").first()).toBeVisible();
  const before = await usedIdx();
  await page.locator("#rings-box").screenshot({ path: docsShot(info, "inspector-rings.png") });
  // Step: that chain is served and goes on the used ring; the guest's next request is held in its turn.
  await page.locator("#btn-step").click();
  await expect.poll(usedIdx).toBe(before + 1);
  await page.locator("#btn-resume").click();
  await expect(page.locator(".xterm-rows")).toContainText("Hello from the browser!");
  await expect(ring.locator(".slot.held")).toHaveCount(0);
});
