// npm run fuzz -- [--seconds N] [--seed S] [--inputs N] [--backend memfs,hostdir,dax,hostdir-dax] [--replay FILE...]
// A seeded fuzz run against the virtio-fs device and the FUSE server on each backend (README, "Fuzzing"),
// or the replay of saved inputs (a finding's file, fuzz/corpus/*.json). Exits 1 on any finding.
import { parseArgs } from "node:util";
import { BACKENDS, type BackendName } from "./backends.ts";
import { fuzz, HEAP_GROWTH_MAX, replay } from "./fuzzer.ts";
import { loadInput } from "./input.ts";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    seconds: { type: "string" },
    inputs: { type: "string" },
    seed: { type: "string" },
    backend: { type: "string" },
    replay: { type: "string", multiple: true },
  },
});
const MiB = (n: number): string => `${(n / 2 ** 20).toFixed(1)} MiB`;

if (values.replay?.length) {
  let failed = false;
  for (const file of [...values.replay, ...positionals]) {
    const input = await loadInput(file);
    const findings = await replay(input);
    failed ||= findings.length > 0;
    console.log(`${file} (${input.backend}, ${input.origin}): ${findings.length ? `\n  ${findings.join("\n  ")}` : "no finding"}`);
  }
  process.exit(failed ? 1 : 0);
}

const backends = (values.backend?.split(",") ?? [...BACKENDS]) as BackendName[];
for (const b of backends) if (!(BACKENDS as readonly string[]).includes(b)) throw new Error(`unknown backend '${b}' (have: ${BACKENDS.join(", ")})`);
const seed = values.seed === undefined ? (Date.now() ^ (process.pid << 16)) >>> 0 : Number(values.seed);
if (!Number.isInteger(seed)) throw new Error("--seed takes an integer");
const inputs = values.inputs === undefined ? undefined : Number(values.inputs);
const seconds = values.seconds === undefined ? (inputs === undefined ? 60 : undefined) : Number(values.seconds);
console.log(`fuzzing ${backends.join(", ")} with seed ${seed}${seconds ? `, ${seconds} s` : ""}${inputs ? `, ${inputs} inputs per backend` : ""}`);
const reports = await fuzz({ backends, seed, inputs, seconds, log: (line) => console.log(line) });
let failed = false;
console.log("\n| backend | inputs | seconds | inputs/s | findings | heap after warm-up → end |\n|---|---|---|---|---|---|");
for (const r of reports) {
  const growth = r.heapEnd - r.heapStart;
  const leak = growth > HEAP_GROWTH_MAX;
  failed ||= leak || r.findings.length > 0;
  console.log(`| ${r.backend} | ${r.inputs} | ${r.seconds.toFixed(1)} | ${(r.inputs / r.seconds).toFixed(0)} | ${r.findings.length} | ${MiB(r.heapStart)} → ${MiB(r.heapEnd)} (${growth >= 0 ? "+" : ""}${MiB(growth)})${leak ? " LEAK" : ""} |`);
}
for (const f of reports.flatMap((r) => r.findings)) console.log(`\n${f.backend} seed ${f.seed} input ${f.index}:\n  ${f.messages.join("\n  ")}\n  replay: npm run fuzz -- --replay ${f.file}`);
process.exit(failed ? 1 : 0);
