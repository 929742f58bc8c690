import { defineConfig } from "vite";
import { memfsPolyfills } from "./vite.polyfills.ts";

// The page `virtiofs-web run --browser` opens in headless Chromium (web/headless/), built into the package
// with relative URLs: the CLI serves it from lib/headless/ under a random path.
export default defineConfig({
  root: "web/headless",
  base: "./",
  publicDir: false,
  plugins: [memfsPolyfills()],
  worker: { format: "es", plugins: () => [memfsPolyfills()] },
  build: { outDir: "../../lib/headless", emptyOutDir: true, target: "es2022" },
});
