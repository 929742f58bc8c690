import { defineConfig } from "@playwright/test";
import { CHROMIUM_ARGS, CHROMIUM_PATH } from "./test/support/chromium.ts";

const port = Number(process.env.E2E_PORT ?? 5199);

export default defineConfig({
  testDir: "test/e2e",
  // A guest boots in 5-15 s on this 2-core machine; each test takes well under a minute, and the limit
  // leaves room for a loaded machine. One browser, one test at a time.
  timeout: 90_000,
  workers: 1,
  reporter: [["list"]],
  outputDir: "test-results",
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    screenshot: "on",
    launchOptions: { executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS },
  },
  webServer: {
    command: `npx vite --port ${port} --strictPort --host 127.0.0.1`,
    url: `http://127.0.0.1:${port}/`,
    reuseExistingServer: false,
    timeout: 60_000,
  },
});
