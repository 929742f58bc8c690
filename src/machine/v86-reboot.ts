// Makes a guest reboot work in v86 when it booted a bzImage: v86 copies the kernel and initrd into RAM
// once, at construction (src/kernel.js load_kernel), and a reboot runs the BIOS and its boot ROM again
// over RAM that the first kernel has long overwritten. Keep what load_kernel wrote and put it back.
import type { V86 } from "v86";
import { v86Cpu } from "./v86-bus.ts";

/** Where v86's load_kernel puts things: the real-mode part and command line, the kernel, the initrd. */
const REAL_MODE_BASE = 0x80000;
const REAL_MODE_END = 0x80000 + 0xe000 + 2048;
const KERNEL_BASE = 0x100000;
const INITRD_BASE = 64 << 20;

export interface BootImageSizes {
  bzImage: number;
  initrd: number;
}

/** The RAM load_kernel writes: [start, end) byte ranges. */
export function bootImageRanges(sizes: BootImageSizes): [number, number][] {
  return [
    [REAL_MODE_BASE, REAL_MODE_END],
    [KERNEL_BASE, KERNEL_BASE + sizes.bzImage],
    [INITRD_BASE, INITRD_BASE + sizes.initrd],
  ];
}

/** Snapshots the boot image in RAM (call before the CPU runs) and puts it back as the machine reboots. */
export function keepBootImageAcrossReboots(emulator: V86, sizes: BootImageSizes): void {
  const cpu = v86Cpu(emulator);
  const ram = new Uint8Array(cpu.wasm_memory.buffer, cpu.mem8.byteOffset, cpu.memory_size[0]);
  const ranges = bootImageRanges(sizes);
  if (ranges.some(([, end]) => end > ram.length)) throw new Error(`guest RAM of ${ram.length >> 20} MiB cannot hold the kernel and initrd`);
  const saved = ranges.map(([start, end]) => [start, ram.slice(start, end)] as const);
  const reboot = cpu.reboot_internal.bind(cpu);
  cpu.reboot_internal = () => {
    for (const [addr, bytes] of saved) cpu.write_blob(bytes, addr);
    reboot();
  };
}
