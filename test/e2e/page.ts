// What the e2e tests do with the demo page: load it and wait for the shell, run a command in the
// terminal and wait for its output.
import { expect, type Page, type TestInfo } from "@playwright/test";

/** Opens the page (with `query`, e.g. "?backend=opfs") and waits for the guest's shell. */
export async function boot(page: Page, query = ""): Promise<void> {
  await page.goto(`/${query}`);
  await expect(page.locator("body")).toHaveAttribute("data-state", "ready", { timeout: 50_000 });
  await expect(page.locator(".xterm-rows")).toContainText("# ", { timeout: 10_000 });
}

let commands = 0;

/**
 * Types `command` into the terminal in `box` (the first guest's by default) and waits until it has
 * finished; resolves to the terminal's text from the command's own line on (its output).
 */
export async function run(page: Page, command: string, timeout = 20_000, box = "#terminal"): Promise<string> {
  const marker = `end-of-${++commands}-${Date.now() % 100_000}`;
  await page.locator(`${box} .xterm`).click();
  // The marker is split by quotes on the command line, so only the echo's output matches it.
  await page.keyboard.type(`${command}; echo "${marker.slice(0, 4)}""${marker.slice(4)}"\n`);
  const rows = page.locator(`${box} .xterm-rows`);
  await expect(rows).toContainText(marker, { timeout });
  const text = await rows.innerText();
  return text.slice(Math.max(0, text.lastIndexOf(command.slice(0, 20))), text.lastIndexOf(marker));
}

/**
 * Where a screenshot the README shows goes: docs/NAME with DOCS_SCREENSHOTS=1 (`npm run docs:screenshots`),
 * else the test's own output, so a test run leaves the repository as it found it.
 */
export const docsShot = (info: TestInfo, name: string): string => (process.env.DOCS_SCREENSHOTS ? `docs/${name}` : info.outputPath(name));
