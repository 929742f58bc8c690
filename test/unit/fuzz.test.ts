// The fuzzer in `npm test`: every past finding (fuzz/corpus) replayed, and a bounded run per backend with
// fixed seeds. A failure names the seed and input; `npm run fuzz -- --replay <file>` reproduces it.
import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BACKENDS, DAX_WINDOW, makeBackend } from "../../fuzz/backends.ts";
import { fuzz, HEAP_GROWTH_MAX, replay, runGenerated } from "../../fuzz/fuzzer.ts";
import { encodeInput, loadInput } from "../../fuzz/input.ts";
import { RAM, World } from "../../fuzz/world.ts";
import { FakeMemory } from "../support/fake-memory.ts";

const CORPUS = join(import.meta.dirname, "../../fuzz/corpus");
const SEED = 18;
/** Inputs per backend: a few seconds each (the host directory's I/O makes its inputs slower). */
const INPUTS: Record<(typeof BACKENDS)[number], number> = { memfs: 2000, dax: 2000, hostdir: 1000, "hostdir-dax": 1000 };

describe("fuzz corpus: every past finding stays fixed", () => {
  const files = readdirSync(CORPUS).filter((f) => f.endsWith(".json"));
  it("holds the issue-18 defects", () => {
    expect(files).toEqual(expect.arrayContaining(["issue18-amplification.json", "issue18-reply-does-not-fit-memfs.json"]));
  });
  for (const file of files) {
    it(file, async () => {
      expect(await replay(await loadInput(join(CORPUS, file)))).toEqual([]);
    });
  }
});

describe("fuzzing", () => {
  it("generates an input from its seed and index alone, the same every time", async () => {
    const memory = new FakeMemory(RAM + DAX_WINDOW);
    const backend = makeBackend("memfs");
    const a = await runGenerated(backend, memory, SEED, 3);
    const b = await runGenerated(backend, memory, SEED, 3);
    expect(a.input.steps.length).toBeGreaterThan(10);
    expect(encodeInput(b.input)).toBe(encodeInput(a.input));
    expect(await replay(a.input, memory)).toEqual([]);
  });

  it("would see a device write outside the rings and the writable buffers", async () => {
    const memory = new FakeMemory(RAM + DAX_WINDOW);
    const world = await World.open(makeBackend("memfs"), memory);
    memory.write(0x5000, Uint8Array.of(1)); // as a device that missed a bounds check would
    await world.exec({ t: "settle", turns: 1 }, 0);
    await world.finish();
    expect(world.findings).toEqual(["the device wrote [20480, +1) outside the used rings and the device-writable buffers"]);
  });

  for (const backend of BACKENDS) {
    it(`${backend}: ${INPUTS[backend]} inputs (seed ${SEED}) find nothing, and the heap stays flat`, async () => {
      const [r] = await fuzz({ backends: [backend], seed: SEED, inputs: INPUTS[backend], findingsDir: mkdtempSync(join(tmpdir(), "vfsw-findings-")) });
      expect(r!.findings.map((f) => `seed ${f.seed} input ${f.index}: ${f.messages.join("; ")} (saved as ${f.file})`)).toEqual([]);
      expect(r!.inputs).toBe(INPUTS[backend]);
      expect(r!.heapEnd - r!.heapStart).toBeLessThan(HEAP_GROWTH_MAX);
    }, 300_000);
  }
});
