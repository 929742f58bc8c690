import { defineConfig } from "vite";
import { memfsPolyfills } from "./vite.polyfills.ts";
import { rootfsImages } from "./vite.rootfs.ts";

// SharedArrayBuffer (v86's memory shared with the page, which draws the DAX window from it) needs a
// cross-origin isolated page: every way of serving it sends these two headers. A static host should
// send them too (see README).
const isolation = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
};

export default defineConfig({
  root: "web",
  publicDir: "../public",
  plugins: [memfsPolyfills(), rootfsImages(isolation)],
  server: { headers: isolation },
  preview: { headers: isolation },
  worker: { format: "es", plugins: () => [memfsPolyfills()] },
  build: { outDir: "../dist", emptyOutDir: true, target: "es2022" },
});
