// One v86 PC running the guest kernel: the same code path in Node and in a browser Worker.
import { V86 } from "v86";
import type { GuestImages } from "./images.ts";
import { keepBootImageAcrossReboots } from "./v86-reboot.ts";

export interface MachineOptions {
  images: GuestImages;
  cmdline: string;
  memoryMiB: number;
  /** Where v86.wasm is: a file path in Node, a URL in the browser. */
  wasmPath: string;
  /** Console bytes from the guest's ttyS0, batched per emulator tick. */
  onSerial(bytes: Uint8Array): void;
  /** Runs after the emulator is built and before its CPU starts: the place to attach PCI devices. */
  beforeRun?(emulator: V86): void | Promise<void>;
  /** Attach v86's own virtio-9p device (tag host9p) over an empty in-memory filesystem. */
  ninep?: boolean;
}

export interface Machine {
  readonly emulator: V86;
  /** Bytes to the guest's ttyS0. */
  send(data: Uint8Array | string): void;
  destroy(): Promise<void>;
}

const encoder = new TextEncoder();

export async function startMachine(opts: MachineOptions): Promise<Machine> {
  const emulator = new V86({
    wasm_path: opts.wasmPath,
    memory_size: opts.memoryMiB * 1024 * 1024,
    vga_memory_size: 2 * 1024 * 1024,
    bios: { buffer: opts.images["bios.bin"] },
    bzimage: { buffer: opts.images.bzImage },
    initrd: { buffer: opts.images["initramfs.cpio"] },
    cmdline: opts.cmdline,
    autostart: false,
    disable_keyboard: true,
    disable_mouse: true,
    disable_speaker: true,
    fastboot: true,
    ...(opts.ninep ? { filesystem: {} } : {}),
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
  try {
    keepBootImageAcrossReboots(emulator, { bzImage: opts.images.bzImage.byteLength, initrd: opts.images["initramfs.cpio"].byteLength });
    await opts.beforeRun?.(emulator);
  } catch (e) {
    await emulator.destroy();
    throw e;
  }
  void emulator.run();
  return {
    emulator,
    send(data) {
      emulator.serial_send_bytes(0, typeof data === "string" ? encoder.encode(data) : data);
    },
    destroy: () => emulator.destroy(),
  };
}
