// Boot timing in Node (the Guest handle) and in headless Chromium (the demo page served by Vite).
import { bootGuest } from "../src/node.ts";
import { withPage } from "./chromium.ts";

export interface BootSample {
  /** Guest /proc/uptime when init was ready, seconds. */
  uptime: number;
  wallMs: number;
}

export async function bootInNode(): Promise<BootSample> {
  const t0 = performance.now();
  const guest = await bootGuest();
  const wallMs = performance.now() - t0;
  await guest.shutdown();
  return { uptime: guest.uptimeAtReady, wallMs };
}

export function bootInBrowser(): Promise<BootSample> {
  return withPage({}, async (page, url) => {
    const t0 = performance.now();
    await page.goto(url);
    await page.waitForSelector("body[data-state=ready]", { timeout: 120_000 });
    const wallMs = performance.now() - t0;
    const uptime = Number(await page.getAttribute("body", "data-uptime"));
    return { uptime, wallMs };
  });
}
