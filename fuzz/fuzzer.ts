// The fuzz loop: for each backend, input after input (each from its seed and index, in a fresh world on
// the same guest RAM), every finding saved as a replayable input; and the replay of saved inputs.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { FakeMemory } from "../test/support/fake-memory.ts";
import { BACKENDS, DAX_WINDOW, makeBackend, type Backend, type BackendName } from "./backends.ts";
import { fuseSession } from "./fuse-session.ts";
import { Guest } from "./guest.ts";
import { saveInput, type FuzzInput } from "./input.ts";
import { Rng } from "./rng.ts";
import { transportChaos } from "./transport.ts";
import { RAM, World, strayError } from "./world.ts";
import { heapUsed } from "../bench/heap.ts";

export interface FuzzOptions {
  backends?: readonly BackendName[];
  seed: number;
  /** Stop each backend after this many inputs… */
  inputs?: number;
  /** …or after this many seconds (split evenly between the backends). */
  seconds?: number;
  /** Where findings are saved (default fuzz/findings). */
  findingsDir?: string;
  log?(line: string): void;
}

export interface Finding {
  backend: BackendName;
  seed: number;
  index: number;
  messages: string[];
  /** The saved input: `npm run fuzz -- --replay <file>`. */
  file: string;
}

export interface BackendReport {
  backend: BackendName;
  inputs: number;
  seconds: number;
  findings: Finding[];
  /** Heap in use after a full GC, after the first inputs and at the end (bytes). */
  heapStart: number;
  heapEnd: number;
}

/** Heap growth over a run beyond this is a leak, not noise. */
export const HEAP_GROWTH_MAX = 48 << 20;
const HEAP_WARMUP = 200;
const MAX_FINDINGS = 5;

const newMemory = (): FakeMemory => new FakeMemory(RAM + DAX_WINDOW);

/** Runs one generated input; returns it as recorded and what it found. */
export async function runGenerated(backend: Backend, memory: FakeMemory, seed: number, index: number): Promise<{ input: FuzzInput; findings: string[] }> {
  const world = await World.open(backend, memory);
  const rng = new Rng(seed, index);
  const g = new Guest(world, memory, rng);
  try {
    if (rng.chance(0.45)) await transportChaos(g, backend.dax);
    else await fuseSession(g, backend.dax);
  } catch (e) {
    world.finding(`the generator failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  }
  await world.finish();
  return { input: { backend: backend.name, origin: `seed ${seed} input ${index}`, steps: g.steps }, findings: world.findings };
}

/** Runs a saved input in a fresh world; returns what it found ([] when the device and server held). */
export async function replay(input: FuzzInput, memory = newMemory()): Promise<string[]> {
  if (!(BACKENDS as readonly string[]).includes(input.backend)) throw new Error(`unknown backend ${input.backend}`);
  const backend = makeBackend(input.backend as BackendName);
  return guarded(async () => {
    const world = await World.open(backend, memory);
    await world.run(input.steps);
    await world.finish();
    return world.findings;
  }).finally(() => backend.dispose());
}

/** Errors that escape into the event loop are findings of the input running, not crashes of the fuzzer. */
async function guarded<T>(f: () => Promise<T>): Promise<T> {
  process.on("uncaughtException", strayError);
  process.on("unhandledRejection", strayError);
  try {
    return await f();
  } finally {
    process.off("uncaughtException", strayError);
    process.off("unhandledRejection", strayError);
  }
}

export async function fuzz(o: FuzzOptions): Promise<BackendReport[]> {
  const backends = o.backends ?? BACKENDS;
  const dir = o.findingsDir ?? join(import.meta.dirname, "findings");
  const log = o.log ?? (() => {});
  const memory = newMemory();
  const reports: BackendReport[] = [];
  const perBackendMs = o.seconds === undefined ? Infinity : (o.seconds * 1000) / backends.length;
  for (const name of backends) {
    const backend = makeBackend(name);
    const report: BackendReport = { backend: name, inputs: 0, seconds: 0, findings: [], heapStart: 0, heapEnd: 0 };
    const t0 = performance.now();
    let lastLog = t0;
    try {
      await guarded(async () => {
        for (let index = 0; ; index++) {
          const elapsed = performance.now() - t0;
          if ((o.inputs !== undefined && index >= o.inputs) || elapsed >= perBackendMs || report.findings.length >= MAX_FINDINGS) break;
          if (index === Math.min(HEAP_WARMUP, Math.floor((o.inputs ?? Infinity) / 4))) report.heapStart = heapUsed();
          const { input, findings } = await runGenerated(backend, memory, o.seed, index);
          report.inputs++;
          if (findings.length) {
            mkdirSync(dir, { recursive: true });
            const file = join(dir, `${name}-seed${o.seed}-input${index}.json`);
            await saveInput(file, input);
            report.findings.push({ backend: name, seed: o.seed, index, messages: findings, file });
            log(`FINDING ${name} seed ${o.seed} input ${index}: ${findings.join("; ")}\n  replay: npm run fuzz -- --replay ${file}`);
          }
          if (performance.now() - lastLog > 30_000) {
            lastLog = performance.now();
            log(`${name}: ${report.inputs} inputs, ${((report.inputs * 1000) / (lastLog - t0)).toFixed(0)}/s, heap ${(heapUsed() / 2 ** 20).toFixed(1)} MiB`);
          }
        }
      });
    } finally {
      backend.dispose();
    }
    report.seconds = (performance.now() - t0) / 1000;
    report.heapEnd = heapUsed();
    reports.push(report);
  }
  return reports;
}
