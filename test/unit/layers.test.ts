// The layering, enforced: every import in the project's own code goes one way down (docs/architecture.md).
//   src/vfs, device/        import nothing of ours
//   src/fuse, src/fs        src/vfs only (siblings: neither imports the other)
//   src/machine             wires the layers below to v86
//   src/index.ts, node.ts   the public API
//   web/, bench/, bin/, examples/   the public API only (web/: the browser one, src/index.ts)
//   fuzz/                   any layer, as the tests do, the tests' fake bus and driver (test/support), and bench/'s helpers
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");

type Layer = "vfs" | "device" | "fuse" | "fs" | "machine" | "api" | "web" | "bench" | "bin" | "examples" | "fuzz" | "support" | "test";

function layerOf(path: string): Layer | undefined {
  const p = relative(ROOT, path);
  if (p.startsWith("src/vfs/")) return "vfs";
  if (p.startsWith("device/")) return "device";
  if (p.startsWith("src/fuse/")) return "fuse";
  if (p.startsWith("src/fs/")) return "fs";
  if (p.startsWith("src/machine/")) return "machine";
  if (p === "src/index.ts" || p === "src/node.ts") return "api";
  if (p.startsWith("test/support/")) return "support";
  for (const top of ["web", "bench", "bin", "examples", "fuzz", "test"] as const) if (p.startsWith(`${top}/`)) return top;
  return undefined;
}

const PUBLIC = ["src/index.ts", "src/node.ts"];
/** What each layer may import of ours: layers, or (for the top) the public API's files. */
const ALLOWED: Record<Exclude<Layer, "test" | "support">, { layers: Layer[]; files?: string[] }> = {
  vfs: { layers: ["vfs"] },
  device: { layers: ["device"] },
  fuse: { layers: ["fuse", "vfs"] },
  fs: { layers: ["fs", "vfs"] },
  machine: { layers: ["machine", "fuse", "fs", "vfs", "device"] },
  api: { layers: ["api", "machine", "fuse", "fs", "vfs", "device"] },
  web: { layers: ["web"], files: ["src/index.ts"] },
  bench: { layers: ["bench"], files: PUBLIC },
  bin: { layers: ["bin"], files: PUBLIC },
  examples: { layers: ["examples"], files: PUBLIC },
  fuzz: { layers: ["fuzz", "support", "bench", "api", "fuse", "fs", "vfs", "device"] },
};

function* sources(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* sources(p);
    else if (/\.(ts|js|mjs|html)$/.test(e.name) && !e.name.endsWith(".d.ts")) yield p;
  }
}

/** Every module a file refers to: static and dynamic imports, re-exports, and scripts by `new URL(…, import.meta.url)` (Workers). */
function specifiers(code: string): string[] {
  const found: string[] = [];
  const patterns = [/\b(?:import|export)\s[^"';]*?\bfrom\s*["']([^"']+)["']/g, /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g, /\bimport\s+["']([^"']+)["']/g, /new URL\(\s*["']([^"']+\.(?:ts|js|mjs))["']\s*,\s*import\.meta\.url/g];
  for (const re of patterns) for (const m of code.matchAll(re)) found.push(m[1]!);
  return found;
}

/** The package's own entry points, as bin/ and examples/ reach them. */
const SELF: Record<string, string> = { "virtiofs-web": "src/index.ts", "virtiofs-web/node": "src/node.ts" };

function target(from: string, spec: string): string | undefined {
  if (spec in SELF) return join(ROOT, SELF[spec]!);
  if (!spec.startsWith(".")) return undefined; // a package, or Node's
  return resolve(dirname(from), spec.replace(/\?.*$/, ""));
}

const files = ["src", "device", "web", "bench", "bin", "examples", "fuzz"].flatMap((d) => [...sources(join(ROOT, d))]);

describe("layers, one way down", () => {
  it("finds the project's sources", () => {
    expect(files.length).toBeGreaterThan(60);
  });

  it("every import of ours is allowed by the importing file's layer", () => {
    const wrong: string[] = [];
    for (const file of files) {
      const layer = layerOf(file) as Exclude<Layer, "test" | "support">;
      const rule = ALLOWED[layer];
      for (const spec of specifiers(readFileSync(file, "utf8"))) {
        const to = target(file, spec);
        if (to === undefined) continue;
        const toLayer = layerOf(to);
        const ok = (toLayer !== undefined && rule.layers.includes(toLayer)) || rule.files?.includes(relative(ROOT, to));
        if (!ok) wrong.push(`${relative(ROOT, file)} (${layer}) imports ${spec} (${toLayer ?? relative(ROOT, to)})`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it("the bottom layers and the protocol import no packages (device/, src/vfs, src/fuse)", () => {
    const wrong = files
      .filter((f) => ["vfs", "device", "fuse"].includes(layerOf(f)!))
      .flatMap((f) => specifiers(readFileSync(f, "utf8")).filter((s) => !s.startsWith(".")).map((s) => `${relative(ROOT, f)} imports ${s}`));
    expect(wrong).toEqual([]);
  });

  it("would catch an upward import (the rule itself is not vacuous)", () => {
    expect(specifiers(`import { x } from "../fs/memfs/memfs.ts";\nconst w = new Worker(new URL("./w.ts", import.meta.url));`)).toEqual(["../fs/memfs/memfs.ts", "./w.ts"]);
    expect(ALLOWED.fuse.layers).not.toContain(layerOf(join(ROOT, "src/fs/memfs/memfs.ts")));
    expect(ALLOWED.bench.layers).not.toContain(layerOf(join(ROOT, "test/support/fake-bus.ts")));
  });
});
