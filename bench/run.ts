// npm run bench [-- <workload,...>] [--only a,b] [--targets a,b] [--reps n] [--browser]
// Workloads: boot — guest uptime when init is ready and wall time to it, in Node and in headless
// Chromium side by side; resume — resuming a snapshot against booting, in Node and on the built site in
// Chromium (bench/resume.ts); sessions — a guest's cost per request alone and with a second guest on its
// tree (bench/sessions.ts); root — a Debian userland booted from a virtio-fs root against v86's 9p root
// of the same tree (bench/root.ts; needs npm run guest:rootfs; with --browser in Chromium too); and the file-system workloads of bench/fs.ts on virtio-fs (each cache mode),
// virtio-9p and tmpfs in one guest, in Node and, with --browser, then in headless Chromium (the guest in
// a Worker). --targets picks targets by id (never, auto, auto+wb, always, dax, dax-inode, 9p, tmpfs; all by default). Writes bench/results/<date>-<env>.json, docs/bench.svg and, with --browser, docs/bench-browser.svg.
import { mkdir, writeFile } from "node:fs/promises";
import { cpus } from "node:os";
import { parseArgs } from "node:util";
import { bootInBrowser, bootInNode, type BootSample } from "./boot.ts";
import { nodeRuntime } from "../src/node.ts";
import { runFsBenchInBrowser, runRootBenchInBrowser } from "./chromium.ts";
import { WORKLOADS, runFsBench, selectTargets, type FsResults } from "./fs.ts";
import { markdownLedger, markdownTable, median, svgPlot } from "./report.ts";
import { resumeInBrowser, resumeInNode } from "./resume.ts";
import { ROOT_WORKLOADS, rootTargets, runRootBench, type RootSample, type RootTarget } from "./root.ts";
import { debianRootSource, storedImageBytes } from "./root-node.ts";
import { runSessionsBench } from "./sessions.ts";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    only: { type: "string" },
    targets: { type: "string" },
    reps: { type: "string", default: "5" },
    browser: { type: "boolean", default: false },
  },
});
const reps = Number(values.reps);
if (!Number.isInteger(reps) || reps < 1) throw new Error("--reps takes a positive integer");
const wanted = new Set([...(values.only?.split(",") ?? []), ...positionals.flatMap((p) => p.split(","))]);
const NAMES = ["boot", "resume", "sessions", "root", ...WORKLOADS.map((w) => w.name)];
for (const w of wanted) if (!NAMES.includes(w)) throw new Error(`unknown workload '${w}' (have: ${NAMES.join(", ")})`);
const targets = selectTargets(values.targets?.split(",").filter(Boolean) ?? []);
const record: Record<string, unknown> = { date: new Date().toISOString(), cpu: cpus()[0]?.model, cores: cpus().length, node: process.version };

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
  record.boot = { node, browser };
}

if (wanted.size === 0 || wanted.has("resume")) {
  const log = (line: string) => process.stderr.write(line + "\n");
  const node = await resumeInNode(reps, log);
  const browser = await resumeInBrowser(reps, log);
  const s = (ms: number[]) => `${(median(ms) / 1000).toFixed(2)} s`;
  const row = (name: string, r: typeof node) => `| ${name} | ${s(r.boot)} | ${s(r.resume)} | ${(median(r.boot) / median(r.resume)).toFixed(1)}× | ${(r.snapshotBytes / 2 ** 20).toFixed(1)} MiB |`;
  console.log(`\nresume a snapshot against boot, median of ${reps}\n\n| target | boot | resume | faster | snapshot |\n|---|---|---|---|---|`);
  console.log(row("Node (to the first command's answer)", node));
  console.log(row("Chromium, built site (page to shell)", browser));
  record.resume = { node, browser };
}

if (wanted.size === 0 || wanted.has("sessions")) {
  const r = await runSessionsBench(reps, (line) => process.stderr.write(line + "\n"));
  const row = (what: string, k: keyof SessionsRow) => `| ${what} | ${r.alone[k].toFixed(0)} µs | ${r.shared[k].toFixed(0)} µs | ${(r.shared[k] / r.alone[k]).toFixed(2)}× |`;
  console.log(`\nsessions: guest A's cost per request (less tmpfs), median of ${reps}\n\n| request | alone (locks in the guest) | a second guest on the tree (locks on the device) | ratio |\n|---|---|---|---|`);
  console.log(row("null request: [ -e /mnt/f ] (LOOKUP)", "nullRequest"));
  console.log(row("open + close: : </mnt/f (LOOKUP, OPEN, FLUSH, RELEASE)", "openClose"));
  record.sessions = r;
}
type SessionsRow = Awaited<ReturnType<typeof runSessionsBench>>["alone"];

if (wanted.size === 0 || wanted.has("root")) {
  const source = debianRootSource();
  if (typeof source === "string") console.log(`\nroot: skipped, ${source}`);
  else {
    const log = (line: string) => process.stderr.write(line + "\n");
    const targets = rootTargets(source);
    const stored = await storedImageBytes();
    const node = await runRootBench(targets, reps, log);
    printRootTable(node, targets, "Node", stored);
    record.root = node;
    if (values.browser) {
      const browser = await runRootBenchInBrowser(reps, log);
      printRootTable(browser, targets, "Chromium", stored);
      record.rootBrowser = browser;
    }
  }
}

function printRootTable(r: Record<string, RootSample[]>, targets: RootTarget[], host: string, stored: number): void {
  const ninep = targets.find((t) => t.id === "9p")!;
  const vfs = targets.filter((t) => t !== ninep);
  const cell = (id: string, f: (s: RootSample) => number, unit = "ms") => `${median(r[id]!.map(f)).toFixed(unit === "s" ? 2 : 0)} ${unit}`;
  const ratio = (id: string, f: (s: RootSample) => number) => `${(median(r[ninep.id]!.map(f)) / median(r[id]!.map(f))).toFixed(2)}×`;
  const rows: [string, (s: RootSample) => number, string?][] = [
    ["boot to shell (wall)", (s) => s.bootMs / 1000, "s"],
    ["guest uptime at shell", (s) => s.uptime, "s"],
    ...ROOT_WORKLOADS.map(([name], i): [string, (s: RootSample) => number] => [name, (s) => s.workloads[i]!]),
  ];
  console.log(`\nroot, v86 in ${host}: Debian 12 booted from a virtio-fs root and from v86's 9p root, median of ${reps} (inside the guest; 9p ÷ virtio-fs: how many times faster virtio-fs is)\n`);
  console.log(`| workload | ${targets.map((t) => t.name).join(" | ")} | ${vfs.map((t) => `9p ÷ ${t.id}`).join(" | ")} |\n|---|${targets.map(() => "---:").join("|")}|${vfs.map(() => "---:").join("|")}|`);
  for (const [name, f, unit] of rows) console.log(`| ${name} | ${targets.map((t) => cell(t.id, f, unit)).join(" | ")} | ${vfs.map((t) => ratio(t.id, f)).join(" | ")} |`);
  for (const t of vfs) console.log(`\n${t.id}: ${(median(r[t.id]!.map((x) => x.imageBytes ?? 0)) / 2 ** 20).toFixed(1)} MiB read from the image to reach a shell, of ${(stored / 2 ** 20).toFixed(1)} MiB stored`);
}

const fsWorkloads = WORKLOADS.filter((w) => wanted.size === 0 || wanted.has(w.name));
const log = (line: string) => process.stderr.write(line + "\n");
/** Prints the table and draws docs/<svg>; `host` is where v86 ran. */
const report = async (results: FsResults, host: string, svg: string) => {
  console.log(`\nfile systems, v86 in ${host}\n\n${markdownTable(results, targets)}`);
  if (results.ledger) console.log(`\nrequest ledger, v86 in ${host}\n\n${markdownLedger(results, targets)}`);
  await mkdir(new URL("../docs/", import.meta.url), { recursive: true });
  await writeFile(new URL(`../docs/${svg}`, import.meta.url), svgPlot(results, targets, `virtio-fs, 9p and tmpfs in a v86 guest, ${host} (median of ${reps}, log scale)`));
};
if (fsWorkloads.length) {
  const node = await runFsBench(fsWorkloads, targets, reps, log, await nodeRuntime());
  record.fs = node;
  await report(node, "Node", "bench.svg");
  if (values.browser) {
    const browser = await runFsBenchInBrowser(fsWorkloads, targets, reps, log);
    record.fsBrowser = browser;
    await report(browser, "Chromium", "bench-browser.svg");
  }
}

const dir = new URL("results/", import.meta.url);
await mkdir(dir, { recursive: true });
const file = new URL(`${new Date().toISOString().slice(0, 10)}-node${process.versions.node.split(".")[0]}-${cpus().length}cpu.json`, dir);
await writeFile(file, JSON.stringify(record, null, 2) + "\n");
console.log(`\nwrote ${file.pathname}`);
