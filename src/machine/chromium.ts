// Debian's Chromium, as `run --browser` and the project's browser tests start it: a build that downloads
// its own browser cannot work without the internet. CHROMIUM_PATH picks another one.
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** Headless on a machine without a display or network access. */
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
  "--disable-quic",
  "--disable-sync",
];
