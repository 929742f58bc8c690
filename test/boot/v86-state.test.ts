// v86's memory packing as machine.ts replaces it (src/machine/v86-state.ts): a restore into a machine that
// has not run writes only pages that differ from a fresh machine's, trusting that v86 wrote nothing outside
// the first MiB and the boot image. Both halves are checked on real machines: what a fresh machine holds,
// and that a restored one holds exactly the saved machine's RAM.
import type { V86 } from "v86";
import { afterAll, describe, expect, it } from "vitest";
import { startMachine, type Machine } from "../../src/machine/machine.ts";
import { v86Cpu } from "../../src/machine/v86-bus.ts";
import { bootImageRanges } from "../../src/machine/v86-reboot.ts";
import { nodeRuntime } from "../../src/node.ts";

const MiB = 1 << 20;
const PAGE = 4096;

function ramOf(emulator: V86): Uint8Array {
  const cpu = v86Cpu(emulator);
  return new Uint8Array(cpu.wasm_memory.buffer, cpu.mem8.byteOffset, cpu.memory_size[0]!);
}

/** Start addresses of the pages where a and b differ. */
function differingPages(a: Uint8Array, b: Uint8Array): number[] {
  const out: number[] = [];
  for (let p = 0; p < a.length; p += PAGE) {
    for (let i = p; i < p + PAGE; i++) {
      if (a[i] !== b[i]) {
        out.push(p);
        break;
      }
    }
  }
  return out;
}

describe("v86 state with the fast memory packing", () => {
  const machines: Machine[] = [];
  afterAll(() => Promise.all(machines.map((m) => m.destroy())));

  it("a fresh machine has RAM only in the first MiB and the boot image; a restore makes RAM the saved machine's, byte for byte", { timeout: 120_000 }, async () => {
    const { images, wasmPath } = await nodeRuntime();
    const ranges = bootImageRanges({ bzImage: images.bzImage.byteLength, initrd: images["initramfs.cpio"].byteLength });
    const common = { images, cmdline: "console=ttyS0", memoryBytes: 128 * MiB, wasmPath, onSerial: () => {} };

    const saved = await startMachine(common);
    machines.push(saved);
    await new Promise((r) => setTimeout(r, 1500)); // the BIOS and the kernel's decompressor write RAM
    saved.emulator.stop();
    await new Promise((r) => setTimeout(r, 0));
    // Pages a fresh machine holds non-zero and zero, made the other way round: a kernel page and an initrd
    // page zeroed, pages far above the boot image written.
    const mem = ramOf(saved.emulator);
    const kernelPage = ranges[1]![0] + 3 * PAGE;
    const initrdPage = Math.ceil(ranges[2]![0] / PAGE) * PAGE + 7 * PAGE;
    mem.fill(0, kernelPage, kernelPage + PAGE);
    mem.fill(0, initrdPage, initrdPage + PAGE);
    for (const at of [40 * MiB, 100 * MiB + 123, 128 * MiB - 1]) mem[at] = 0x5a;
    const state = await saved.emulator.save_state();
    const want = mem.slice();

    let strayPages: number[] = [];
    let differing: number[] = [];
    const restored = await startMachine({
      ...common,
      beforeRun: async (emulator) => {
        const fresh = ramOf(emulator);
        const inBootImage = (p: number) => p < MiB || ranges.some(([start, end]) => p < end && p + PAGE > start);
        strayPages = differingPages(fresh, new Uint8Array(fresh.length)).filter((p) => !inBootImage(p));
        expect(differingPages(fresh, want)).toEqual(expect.arrayContaining([kernelPage, initrdPage, 40 * MiB]));
        await emulator.restore_state(state);
        differing = differingPages(ramOf(emulator), want);
        emulator.stop();
      },
    });
    machines.push(restored);
    expect(strayPages).toEqual([]);
    expect(differing).toEqual([]);
  });
});
