import { defineConfig } from "vite";
import { nodePolyfills } from "vite-plugin-node-polyfills";

// SharedArrayBuffer (the DAX window) needs a cross-origin isolated page: every way of serving it
// sends these two headers. A static host must send them too (see README).
const isolation = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
};

// memfs (the default share) is written for Node: it imports buffer, events, path, stream and url. The
// emulator Worker gets browser versions of exactly those, and no global `process`: v86 takes one as the
// sign that it runs in Node. So `stream` is readable-stream 4, which imports what it needs instead of
// expecting Node's globals (stream-browserify's readable-stream 3 reads process.env as it loads).
const polyfills = () =>
  nodePolyfills({
    include: ["buffer", "events", "path", "stream", "url"],
    overrides: { stream: "readable-stream" },
    globals: { Buffer: true, global: true, process: false },
  });

export default defineConfig({
  root: "web",
  publicDir: "../public",
  plugins: [polyfills()],
  server: { headers: isolation },
  preview: { headers: isolation },
  worker: { format: "es", plugins: () => [polyfills()] },
  build: { outDir: "../dist", emptyOutDir: true, target: "es2022" },
});
