// attachVirtioFs: puts virtio-fs devices on a v86 PC and owns their lifecycle. Each call may add more
// devices to the same emulator (I/O ports and DAX window addresses are allocated across calls), every
// device resets when the guest reboots the machine, and detach() takes them off again. The Node Guest,
// the CLI and the page's Worker all attach through here.
import type { V86 } from "v86";
import { DaxWindow } from "../../device/dax-window.ts";
import { VIRTIO_FS_TAG_LEN, VirtioFsDevice } from "../../device/virtio-fs.ts";
import type { FileSystem } from "../vfs/filesystem.ts";
import { FuseServer, type FuseObserver } from "../fuse/server.ts";
import { CACHE_MODES, type CacheMode } from "../fuse/session.ts";
import { V86Bus, v86Cpu, type V86Cpu } from "./v86-bus.ts";

export interface VirtioFsShare {
  /** What the guest mounts: `mount -t virtiofs TAG DIR`; 1 to 36 bytes of UTF-8, unique per machine. */
  tag: string;
  fs: FileSystem;
  /** As virtiofsd: never, metadata, auto (the default) or always. */
  cache?: CacheMode;
  /** FUSE_WRITEBACK_CACHE: the guest's page cache gathers writes. */
  writeback?: boolean;
  numRequestQueues?: number;
  /**
   * A DAX window of this many MiB (a power of two from 2 to 256): the guest maps files into it when it
   * mounts with -o dax=always, or with dax=inode those the server marks (its kernel must be built from
   * guest/patches).
   */
  daxMiB?: number;
  /** Where device and server problems go (default console.warn). */
  log?(message: string): void;
  /** Sees every FUSE request and reply (the page's inspector). */
  observer?: FuseObserver;
}

export interface AttachedShare {
  readonly tag: string;
  readonly device: VirtioFsDevice;
  readonly server: FuseServer;
  /** The share's DAX window, if it has one. */
  readonly window?: DaxWindow;
}

export interface VirtioFsAttachment {
  /** The devices, in the order the shares were given. */
  readonly shares: readonly AttachedShare[];
  /**
   * Takes the devices off the machine: their FUSE sessions end (every backend handle and inode reference
   * is given back), their PCI functions, ports and windows go, and a later attach may reuse them.
   */
  detach(): Promise<void>;
}

/** Base and spacing of the devices' I/O BARs: clear of v86's own devices; the BIOS may move them. */
const IO_PORT_BASE = 0xa000;
const IO_PORT_STRIDE = 0x100;
const IO_PORT_END = 0x10000;

/** The window's memory BAR (BAR 0 holds the registers). */
const DAX_BAR = 2;
const MiB = 1 << 20;
/** Linux's FUSE_DAX_SZ: it maps the window in 2 MiB ranges, so a smaller one is useless. */
export const DAX_MIB_MIN = 2;
export const DAX_MIB_MAX = 256;
const NUM_REQUEST_QUEUES_MAX = 16;

/**
 * Where memory BARs may go. v86 never moves them, so each needs an address Linux accepts as it is: above
 * guest RAM, below the I/O APIC (0xFEC00000), clear of v86's VGA framebuffer (0xE0000000, up to 256 MiB).
 */
const MMIO_AREAS: readonly (readonly [number, number])[] = [
  [0xd000_0000, 0xe000_0000],
  [0xf000_0000, 0xfec0_0000],
];

/** Bytes of a `daxMiB` window; RangeError unless a power of two from DAX_MIB_MIN to DAX_MIB_MAX. */
export function daxWindowSize(daxMiB: number): number {
  if (!Number.isInteger(daxMiB) || daxMiB < DAX_MIB_MIN || daxMiB > DAX_MIB_MAX || (daxMiB & (daxMiB - 1)) !== 0) {
    throw new RangeError(`a DAX window is a power of two from ${DAX_MIB_MIN} to ${DAX_MIB_MAX} MiB, not ${daxMiB}`);
  }
  return daxMiB * MiB;
}

type Range = readonly [start: number, end: number];

/**
 * A fixed guest physical address for a window of `size` bytes: aligned to its size as a BAR must be, above
 * `memoryBytes` of RAM, clear of every range in `taken`; undefined when there is no room.
 */
export function daxWindowAddress(size: number, memoryBytes: number, taken: readonly Range[]): number | undefined {
  for (const [lo, hi] of MMIO_AREAS) {
    for (let at = Math.ceil(Math.max(lo, memoryBytes) / size) * size; at + size <= hi; at += size) {
      const clash = taken.find(([start, end]) => at < end && start < at + size);
      if (!clash) return at;
      at = Math.ceil(clash[1] / size) * size - size; // skip past it
    }
  }
  return undefined;
}

/** What one emulator has attached, across calls. */
interface MachineState {
  readonly bus: V86Bus;
  readonly live: Set<LiveShare>;
}

interface LiveShare extends AttachedShare {
  readonly ioPort: number;
  readonly windowRange?: Range;
  /** Settles when the session the last device reset ended has given everything back. */
  sessionEnded(): Promise<void>;
}

const machines = new WeakMap<V86, MachineState>();

/**
 * Attaches one virtio-fs device per share. Call it before the emulator's CPU first runs (SeaBIOS lists PCI
 * devices as it starts): right after `new V86(...)` — the attach then waits for `emulator-loaded` —, or in
 * an `emulator-loaded` listener. Wrong options throw an Error naming the field.
 */
export async function attachVirtioFs(emulator: V86, shares: VirtioFsShare | readonly VirtioFsShare[]): Promise<VirtioFsAttachment> {
  const list: readonly VirtioFsShare[] = Array.isArray(shares) ? shares : [shares as VirtioFsShare];
  list.forEach(checkShare);
  if (!isLoaded(emulator)) await new Promise<void>((resolve) => emulator.add_listener("emulator-loaded", () => resolve()));
  // v86 starts with autostart before it says emulator-loaded, but runs no instruction before the next task.
  if (emulator.get_instruction_counter() > 0) {
    throw new Error("attachVirtioFs: the emulator has already run; attach before its CPU starts (new V86 with autostart: false, or on emulator-loaded)");
  }
  const machine = machineState(emulator);
  const tags = new Set([...machine.live].map((s) => s.tag));
  list.forEach((share, i) => {
    if (tags.has(share.tag)) throw new Error(`shares[${i}].tag: "${share.tag}" is already attached to this emulator`);
    tags.add(share.tag);
  });
  const added: LiveShare[] = [];
  try {
    for (const [i, share] of list.entries()) {
      const s = attachOne(machine, share, i);
      machine.live.add(s);
      added.push(s);
    }
  } catch (e) {
    await Promise.all(added.map((s) => detachOne(machine, s)));
    throw e;
  }
  let detached: Promise<void> | undefined;
  return {
    shares: added,
    detach: () => (detached ??= Promise.all(added.map((s) => detachOne(machine, s))).then(() => undefined)),
  };
}

function isLoaded(emulator: V86): boolean {
  return (emulator as unknown as { v86?: { cpu?: { devices?: { pci?: unknown } } } }).v86?.cpu?.devices?.pci !== undefined;
}

function checkShare(share: VirtioFsShare, i: number): void {
  const field = (name: string) => `shares[${i}].${name}`;
  const tagBytes = typeof share.tag === "string" ? new TextEncoder().encode(share.tag).length : 0;
  if (tagBytes === 0 || tagBytes > VIRTIO_FS_TAG_LEN || share.tag.includes("\0")) {
    throw new Error(`${field("tag")}: 1 to ${VIRTIO_FS_TAG_LEN} bytes of UTF-8 without NUL, not ${JSON.stringify(share.tag)}`);
  }
  if (typeof share.fs?.lookup !== "function" || share.fs.rootIno === undefined) throw new Error(`${field("fs")}: not a FileSystem`);
  if (share.cache !== undefined && !CACHE_MODES.includes(share.cache)) throw new Error(`${field("cache")}: one of ${CACHE_MODES.join(", ")}, not ${String(share.cache)}`);
  const queues = share.numRequestQueues;
  if (queues !== undefined && (!Number.isInteger(queues) || queues < 1 || queues > NUM_REQUEST_QUEUES_MAX)) {
    throw new Error(`${field("numRequestQueues")}: a whole number from 1 to ${NUM_REQUEST_QUEUES_MAX}, not ${queues}`);
  }
  if (share.daxMiB !== undefined) {
    try {
      daxWindowSize(share.daxMiB);
    } catch (e) {
      throw new Error(`${field("daxMiB")}: ${(e as Error).message}`);
    }
  }
}

function machineState(emulator: V86): MachineState {
  let m = machines.get(emulator);
  if (m) return m;
  const cpu = v86Cpu(emulator);
  m = { bus: new V86Bus(emulator), live: new Set() };
  const state = m;
  resetOnReboot(cpu, () => {
    for (const s of state.live) s.device.reset();
  });
  machines.set(emulator, m);
  return m;
}

/** Runs `reset` as the guest reboots the machine, before v86 resets its own devices. */
function resetOnReboot(cpu: V86Cpu, reset: () => void): void {
  const reboot = cpu.reboot_internal.bind(cpu);
  cpu.reboot_internal = () => {
    reset();
    reboot();
  };
}

function attachOne(machine: MachineState, share: VirtioFsShare, i: number): LiveShare {
  const ioPort = freeIoPort(machine);
  if (ioPort === undefined) throw new Error(`shares[${i}]: no free I/O port range for another device`);
  const size = share.daxMiB === undefined ? undefined : daxWindowSize(share.daxMiB);
  let windowRange: Range | undefined;
  if (size !== undefined) {
    const taken = [...machine.live].flatMap((s) => (s.windowRange ? [s.windowRange] : []));
    const at = daxWindowAddress(size, machine.bus.memory.size, taken);
    if (at === undefined) throw new Error(`shares[${i}].daxMiB: no room for a ${size / MiB} MiB DAX window above ${machine.bus.memory.size / MiB} MiB of guest RAM`);
    windowRange = [at, at + size];
  }
  const log = share.log ?? ((m: string) => console.warn(m));
  const window = size === undefined ? undefined : new DaxWindow(size);
  const server = new FuseServer({ fs: share.fs, cache: share.cache, writeback: share.writeback, log, observer: share.observer, dax: window });
  let ended = Promise.resolve();
  const device = new VirtioFsDevice(machine.bus, {
    tag: share.tag,
    numRequestQueues: share.numRequestQueues,
    ioPort,
    dax: window && windowRange && { bar: DAX_BAR, address: windowRange[0], size: window.size, region: window.region },
    handler: server.handle,
    onReset: () => (ended = server.reset()),
    onError: (m) => log(`virtio-fs ${share.tag}: ${m}`),
  });
  return { tag: share.tag, device, server, window, ioPort, windowRange, sessionEnded: () => ended };
}

/** The first I/O BAR base no live device holds and v86 has no device on. */
function freeIoPort(machine: MachineState): number | undefined {
  const held = new Set([...machine.live].map((s) => s.ioPort));
  for (let base = IO_PORT_BASE; base < IO_PORT_END; base += IO_PORT_STRIDE) {
    if (!held.has(base) && machine.bus.portsFree(base, IO_PORT_STRIDE)) return base;
  }
  return undefined;
}

async function detachOne(machine: MachineState, s: LiveShare): Promise<void> {
  if (!machine.live.delete(s)) return;
  s.device.remove(); // a reset: the server's session ends and gives back what the guest held
  await s.sessionEnded();
}
