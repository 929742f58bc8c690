// npm run bench [-- <workload,...>] [--only a,b] [--reps n] [--browser]
// Workloads: boot — guest uptime when init is ready, and wall time from start to ready,
// in Node and in headless Chromium (the demo page), side by side in one run.
import { parseArgs } from "node:util";
import { bootInBrowser, bootInNode, type BootSample } from "./boot.ts";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    only: { type: "string" },
    reps: { type: "string", default: "5" },
    browser: { type: "boolean", default: false },
  },
});
const reps = Number(values.reps);
if (!Number.isInteger(reps) || reps < 1) throw new Error("--reps takes a positive integer");
const wanted = new Set([...(values.only?.split(",") ?? []), ...positionals.flatMap((p) => p.split(","))]);
const WORKLOADS = ["boot"] as const;
for (const w of wanted) if (!(WORKLOADS as readonly string[]).includes(w)) throw new Error(`unknown workload '${w}' (have: ${WORKLOADS.join(", ")})`);

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

if (wanted.size === 0 || wanted.has("boot")) {
  const node: BootSample[] = [];
  const browser: BootSample[] = [];
  // Interleaved, so both targets see the same machine load.
  for (let i = 0; i < reps; i++) {
    node.push(await bootInNode());
    browser.push(await bootInBrowser());
  }
  const row = (name: string, s: BootSample[]) =>
    `| ${name} | ${median(s.map((x) => x.uptime)).toFixed(2)} s | ${(median(s.map((x) => x.wallMs)) / 1000).toFixed(2)} s |`;
  console.log(`\nboot, median of ${reps}\n\n| target | guest uptime at shell | wall time to shell |\n|---|---|---|`);
  console.log(row("Node", node));
  console.log(row("Chromium (page load → shell)", browser));
}
