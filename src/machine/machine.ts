// One v86 PC running the guest kernel: the same code path in Node and in a browser Worker.
import { V86 } from "v86";
import type { GuestImages } from "./images.ts";
import { bootImageRanges, keepBootImageAcrossReboots } from "./v86-reboot.ts";
import { fastMemoryPacking } from "./v86-state.ts";
import { v86Cpu, type V86Cpu } from "./v86-bus.ts";
import { isShared, shareJitModules, sharedMemoryAvailable, sharedMemoryWasm, type SharedJit } from "./v86-shared-memory.ts";
import { sameThreadResume } from "./v86-yield.ts";

export interface MachineOptions {
  images: GuestImages;
  cmdline: string;
  /** v86's memory_size: guest RAM and the DAX windows above it. */
  memoryBytes: number;
  /** Where v86.wasm is: a file path in Node, a URL in the browser. */
  wasmPath: string;
  /** Console bytes from the guest's ttyS0, batched per emulator tick. */
  onSerial(bytes: Uint8Array): void;
  /** Runs after the emulator is built and before its CPU starts: the place to attach PCI devices. */
  beforeRun?(emulator: V86): void | Promise<void>;
  /** Attach v86's own virtio-9p device (tag host9p) over an empty in-memory filesystem, or over a basefs tree. */
  ninep?: boolean | NinepTree;
  /**
   * Put v86's memory, guest RAM included, in a SharedArrayBuffer. Default: where that works (see
   * sharedMemoryAvailable: not on a page without COOP/COEP headers).
   */
  sharedMemory?: boolean;
}

/**
 * v86's own way to give a 9p tree (its Arch and Debian demos boot from one): `basefs`, the tree as JSON
 * (fs.json), and `baseurl`, where each file's contents are, named by their sha256 (a URL, or a path in Node).
 */
export interface NinepTree {
  basefs: string;
  baseurl: string;
}

/** Guest physical memory inside v86's wasm memory: `buffer` is the whole wasm memory. */
export type GuestRam = {
  /** Where guest physical address 0 is in buffer. */
  readonly base: number;
  /** Bytes of guest physical memory (v86's memory_size, which may exceed what the guest's mem= uses). */
  readonly size: number;
} & (
  /** Valid for the machine's life; views of it work from any Worker (postMessage shares it, no copy). */
  | { readonly shared: true; readonly buffer: SharedArrayBuffer }
  /** A memory growth detaches it (ask again). */
  | { readonly shared: false; readonly buffer: ArrayBuffer }
);

export interface Machine {
  readonly emulator: V86;
  /** Guest RAM; write code there through v86 (or call its jit_dirty_cache) so the JIT drops stale code. */
  guestMemory(): GuestRam;
  /** JIT modules compiled against the shared memory (0 when unshared). */
  readonly sharedJitModules: number;
  /** Bytes to the guest's ttyS0. */
  send(data: Uint8Array | string): void;
  destroy(): Promise<void>;
}

const encoder = new TextEncoder();

export async function startMachine(opts: MachineOptions): Promise<Machine> {
  const emulator = new V86({
    wasm_path: opts.wasmPath,
    ...((opts.sharedMemory ?? sharedMemoryAvailable()) ? { wasm_fn: sharedMemoryWasm(opts.wasmPath) } : {}),
    memory_size: opts.memoryBytes,
    vga_memory_size: 2 * 1024 * 1024,
    // Copies: v86 writes the boot parameters into the kernel's setup header, and the images stay as
    // verified for the next machine (and for a snapshot's sha256 of them).
    bios: { buffer: opts.images["bios.bin"].slice(0) },
    bzimage: { buffer: opts.images.bzImage.slice(0) },
    initrd: { buffer: opts.images["initramfs.cpio"].slice(0) },
    cmdline: opts.cmdline,
    autostart: false,
    disable_keyboard: true,
    disable_mouse: true,
    disable_speaker: true,
    fastboot: true,
    ...(opts.ninep ? { filesystem: opts.ninep === true ? {} : { basefs: opts.ninep.basefs, baseurl: opts.ninep.baseurl } } : {}),
  });

  // v86 reports the console a byte at a time; hand it on in one chunk per tick.
  let pending: number[] = [];
  emulator.add_listener("serial0-output-byte", (byte) => {
    if (pending.length === 0) {
      queueMicrotask(() => {
        const chunk = Uint8Array.from(pending);
        pending = [];
        opts.onSerial(chunk);
      });
    }
    pending.push(byte);
  });

  await new Promise<void>((resolve) => emulator.add_listener("emulator-loaded", () => resolve()));
  const undoResume = sameThreadResume(emulator);
  let cpu: V86Cpu;
  let jit: SharedJit | undefined;
  let cpuRuns: () => void;
  try {
    cpu = v86Cpu(emulator);
    // sharedMemoryWasm falls back to unshared if the engine refuses: go by what v86 got.
    if (isShared(cpu.wasm_memory.buffer)) jit = shareJitModules(emulator);
    const sizes = { bzImage: opts.images.bzImage.byteLength, initrd: opts.images["initramfs.cpio"].byteLength };
    cpuRuns = fastMemoryPacking(emulator, bootImageRanges(sizes));
    keepBootImageAcrossReboots(emulator, sizes);
    await opts.beforeRun?.(emulator);
  } catch (e) {
    undoResume();
    await emulator.destroy();
    throw e;
  }
  cpuRuns();
  void emulator.run();
  return {
    emulator,
    guestMemory() {
      const buffer = cpu.wasm_memory.buffer;
      const layout = { base: cpu.mem8.byteOffset, size: cpu.memory_size[0]! };
      return isShared(buffer) ? { ...layout, shared: true, buffer } : { ...layout, shared: false, buffer };
    },
    get sharedJitModules() {
      return jit?.modules ?? 0;
    },
    send(data) {
      emulator.serial_send_bytes(0, typeof data === "string" ? encoder.encode(data) : data);
    },
    destroy: () => {
      undoResume();
      return emulator.destroy();
    },
  };
}
