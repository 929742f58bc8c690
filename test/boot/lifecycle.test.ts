// The lifecycle soak of bench/lifecycle.ts with small counts (npm run soak runs the full ones): one guest
// with a memfs, a host-directory and a DAX share, rebooted and remounted, every table back at its
// baseline after each cycle.
import { expect, it } from "vitest";
import { runLifecycle } from "../../bench/lifecycle.ts";

it("5 reboots and 20 umount/mount cycles leave no node id, handle, DAX mapping, host fd or heap behind", { timeout: 900_000 }, async () => {
  const r = await runLifecycle({ reboots: 5, remounts: 20, seed: 18 });
  expect(r.deviations).toEqual([]);
  // After the first boot each server holds its root alone and no handle; the heap stays within the bound.
  expect(r.baseline.nodes).toEqual([1, 1, 1]);
  expect(r.baseline.handles).toEqual([0, 0, 0]);
  expect(r.heapEndMiB - r.heapStartMiB).toBeLessThan(48);
});
