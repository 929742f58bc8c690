import { playwright } from "@vitest/browser-playwright";
import { nodePolyfills } from "vite-plugin-node-polyfills";
import { defineConfig } from "vitest/config";
import { CHROMIUM_ARGS, CHROMIUM_PATH } from "./test/support/chromium.ts";

export default defineConfig({
  test: {
    projects: [
      { test: { name: "unit", include: ["test/unit/**/*.test.ts"] } },
      {
        // Each file boots real guests: one file at a time keeps the 2-core machine from timing out.
        test: { name: "boot", include: ["test/boot/**/*.test.ts"], testTimeout: 180_000, hookTimeout: 180_000, fileParallelism: false },
      },
      {
        // Backends that need a browser (OPFS), in Debian's headless Chromium. The shared conformance suite
        // uses Node's Buffer, which the polyfill provides there.
        plugins: [nodePolyfills({ include: ["buffer"], globals: { Buffer: true, global: false, process: false } })],
        test: {
          name: "browser",
          include: ["test/browser/**/*.test.ts"],
          testTimeout: 30_000,
          browser: {
            enabled: true,
            headless: true,
            provider: playwright({ launchOptions: { executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS } }),
            instances: [{ browser: "chromium" }],
            screenshotFailures: false,
          },
        },
      },
    ],
  },
});
