import { defineConfig } from "vite";
import { memfsPolyfills } from "./vite.polyfills.ts";

// The library's browser build (package.json exports "browser"): src/index.ts as one ES module with the
// Node modules memfs imports bundled in, so that an embedder's bundler needs no polyfills. v86 stays the
// embedder's own import.
export default defineConfig({
  plugins: [memfsPolyfills()],
  build: {
    outDir: "lib/browser",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: true,
    minify: false,
    lib: { entry: "src/index.ts", formats: ["es"], fileName: "index" },
    rollupOptions: { external: ["v86"] },
  },
});
