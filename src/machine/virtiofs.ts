// Attaches a virtio-fs device serving a FileSystem to a v86 machine: the v86 bus, the device, the
// FUSE server, and the DAX window when the share has one. Used by the Node Guest and the browser Worker alike.
import type { V86 } from "v86";
import { DaxWindow } from "../../device/dax-window.ts";
import { VirtioFsDevice } from "../../device/virtio-fs.ts";
import type { FileSystem } from "../vfs/filesystem.ts";
import { FuseServer, type FuseObserver } from "../fuse/server.ts";
import type { CacheMode } from "../fuse/session.ts";
import { V86Bus } from "./v86-bus.ts";

export interface VirtioFsShare {
  tag: string;
  fs: FileSystem;
  cache?: CacheMode;
  writeback?: boolean;
  numRequestQueues?: number;
  /**
   * A DAX window of this many MiB (a power of two from 2 to 256): the guest maps files into it when it
   * mounts with -o dax=always, or with dax=inode those the server marks (its kernel must be built from
   * guest/patches).
   */
  daxMiB?: number;
  log?(message: string): void;
  /** Sees every FUSE request and reply (the page's inspector). */
  observer?: FuseObserver;
}

/** Base of the devices' I/O BARs: clear of v86's own devices; the BIOS may move them. */
const IO_PORT_BASE = 0xa000;
const IO_PORT_STRIDE = 0x100;

/** The window's memory BAR (BAR 0 holds the registers). */
const DAX_BAR = 2;
const MiB = 1 << 20;
/** Linux's FUSE_DAX_SZ: it maps the window in 2 MiB ranges, so a smaller one is useless. */
export const DAX_MIB_MIN = 2;
export const DAX_MIB_MAX = 256;

/**
 * Where memory BARs may go. v86 never moves them, so each needs an address Linux accepts as it is: above
 * guest RAM, below the I/O APIC (0xFEC00000), clear of v86's VGA framebuffer (0xE0000000, up to 256 MiB).
 */
const MMIO_AREAS: readonly (readonly [number, number])[] = [
  [0xd000_0000, 0xe000_0000],
  [0xf000_0000, 0xfec0_0000],
];

export interface AttachedShare {
  device: VirtioFsDevice;
  server: FuseServer;
  /** The share's DAX window, if it has one. */
  window?: DaxWindow;
}

/** Bytes of a `daxMiB` window; RangeError unless a power of two from DAX_MIB_MIN to DAX_MIB_MAX. */
export function daxWindowSize(daxMiB: number): number {
  if (!Number.isInteger(daxMiB) || daxMiB < DAX_MIB_MIN || daxMiB > DAX_MIB_MAX || (daxMiB & (daxMiB - 1)) !== 0) {
    throw new RangeError(`a DAX window is a power of two from ${DAX_MIB_MIN} to ${DAX_MIB_MAX} MiB, not ${daxMiB}`);
  }
  return daxMiB * MiB;
}

/**
 * Fixed guest physical addresses for windows of these sizes (undefined: no window), in order, each aligned
 * to its size as a BAR must be, none overlapping, all above `memoryBytes` of RAM.
 */
export function daxWindowAddresses(sizes: readonly (number | undefined)[], memoryBytes: number): (number | undefined)[] {
  const free = MMIO_AREAS.map(([lo, hi]) => ({ lo: Math.max(lo, memoryBytes), hi }));
  return sizes.map((size) => {
    if (size === undefined) return undefined;
    for (const area of free) {
      const at = Math.ceil(area.lo / size) * size;
      if (at + size <= area.hi) {
        area.lo = at + size;
        return at;
      }
    }
    throw new RangeError(`no room for a ${size / MiB} MiB DAX window above ${memoryBytes / MiB} MiB of guest RAM`);
  });
}

export function attachVirtioFs(emulator: V86, shares: VirtioFsShare[]): AttachedShare[] {
  const bus = new V86Bus(emulator);
  const sizes = shares.map((share) => (share.daxMiB === undefined ? undefined : daxWindowSize(share.daxMiB)));
  const addresses = daxWindowAddresses(sizes, bus.memory.size);
  return shares.map((share, i) => {
    const log = share.log ?? ((m: string) => console.warn(m));
    const size = sizes[i];
    const window = size === undefined ? undefined : new DaxWindow(size);
    const server = new FuseServer({ fs: share.fs, cache: share.cache, writeback: share.writeback, log, observer: share.observer, dax: window });
    const device = new VirtioFsDevice(bus, {
      tag: share.tag,
      numRequestQueues: share.numRequestQueues,
      ioPort: IO_PORT_BASE + i * IO_PORT_STRIDE,
      dax: window && { bar: DAX_BAR, address: addresses[i]!, size: window.size, region: window.region },
      handler: server.handle,
      onReset: () => void server.reset(),
      onError: (m) => log(`virtio-fs ${share.tag}: ${m}`),
    });
    return { device, server, window };
  });
}
