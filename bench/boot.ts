// Boot timing in Node (the Guest handle) and in headless Chromium (the demo page served by Vite).
import { chromium } from "@playwright/test";
import { createServer } from "vite";
import { Guest } from "../src/machine/guest.ts";

export interface BootSample {
  /** Guest /proc/uptime when init was ready, seconds. */
  uptime: number;
  wallMs: number;
}

export async function bootInNode(): Promise<BootSample> {
  const t0 = performance.now();
  const guest = await Guest.boot();
  const wallMs = performance.now() - t0;
  await guest.shutdown();
  return { uptime: guest.uptimeAtReady, wallMs };
}

export const CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-quic", "--disable-sync"];

export async function bootInBrowser(): Promise<BootSample> {
  const server = await createServer({ configFile: new URL("../vite.config.ts", import.meta.url).pathname, server: { port: 0, host: "127.0.0.1" }, logLevel: "error" });
  await server.listen();
  const url = server.resolvedUrls?.local[0];
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium", args: CHROMIUM_ARGS });
  try {
    const page = await browser.newPage();
    const t0 = performance.now();
    await page.goto(url ?? "");
    await page.waitForSelector("body[data-state=ready]", { timeout: 120_000 });
    const wallMs = performance.now() - t0;
    const uptime = Number(await page.getAttribute("body", "data-uptime"));
    return { uptime, wallMs };
  } finally {
    await browser.close();
    await server.close();
  }
}
