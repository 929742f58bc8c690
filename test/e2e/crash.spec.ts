// Crash safety on OPFS (bench/opfs-reload.ts with a small count; npm run soak -- --reloads N runs more):
// the page is reloaded while its guest writes, renames and syncs; after each reload every file whose
// sync returned is whole and at least as new as reported.
import { expect, test } from "@playwright/test";
import { runOpfsReloads } from "../../bench/opfs-reload.ts";

test("OPFS: 3 reloads during writes, renames and syncs lose no synced byte", async ({ page }) => {
  test.setTimeout(400_000);
  // Reloads from 10 s on, so that some rounds (seconds each on a loaded machine) have synced.
  const r = await runOpfsReloads(page, "/", { reloads: 3, seed: 18, minMs: 10_000, maxMs: 25_000 });
  expect(r.problems).toEqual([]);
  expect(r.reported).toBeGreaterThan(0);
  expect(r.checked).toBeGreaterThanOrEqual(r.reported);
});
