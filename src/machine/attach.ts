// attachVirtioFs: puts virtio-fs devices on a v86 PC and owns their lifecycle. Each call may add more
// devices to the same emulator (I/O ports and DAX window addresses are allocated across calls), every
// device resets when the guest reboots the machine, and detach() takes them off again. The Node Guest,
// the CLI and the page's Worker all attach through here.
//
// A DAX window lives inside v86's memory, above the RAM the guest is told about: the guest's loads, stores
// and instruction fetches reach it as RAM, with no call into JavaScript. So v86's memory_size must hold the
// guest's RAM and every window (v86MemorySize computes it), and the BIOS is told RAM ends below them.
import type { V86 } from "v86";
import { DaxWindow } from "../../device/dax-window.ts";
import { VIRTIO_FS_TAG_LEN, VirtioFsDevice } from "../../device/virtio-fs.ts";
import type { FileSystem } from "../vfs/filesystem.ts";
import { FuseServer, type FuseObserver } from "../fuse/server.ts";
import { CACHE_MODES, LOCK_MODES, type CacheMode, type LockMode } from "../fuse/session.ts";
import { StateError, bool, decodeState, encodeState, int, list, record, str, type Saved } from "../vfs/state.ts";
import type { VirtioPciState } from "../../device/virtio-pci.ts";
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
   * A DAX window of this many MiB (a power of two from DAX_MIB_MIN to DAX_MIB_MAX), carved from the top of
   * v86's memory (see v86MemorySize): the guest maps files into it when it mounts with -o dax=always, or
   * with dax=inode those the server marks (its kernel must be built from guest/patches).
   */
  daxMiB?: number;
  /**
   * With dax=inode, the regular files the server puts in the window: those of at least this many bytes
   * (default 0: every one); smaller ones go through the guest's page cache.
   */
  daxInodeMinSize?: number;
  /**
   * Who keeps file locks: "guest" (each guest kernel: fast, right for one guest), "device" (locks hold
   * across every guest on this `fs`) or "auto" (the default: the device once more than one share is
   * attached over this `fs` as the guest mounts it).
   */
  locks?: LockMode;
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
  /** The window's guest physical address (its memory BAR): its bytes are v86's memory from there (GuestRam). */
  readonly windowAddress?: number;
}

export interface VirtioFsAttachment {
  /** The devices, in the order the shares were given. */
  readonly shares: readonly AttachedShare[];
  /**
   * The devices with their FUSE sessions and backends (memfs's whole tree; OPFS and host directories by
   * reference), as bytes to keep beside v86's `save_state()`. Call with the emulator stopped: every request
   * in flight finishes first, except a SETLKW waiting for a lock, which stays in flight and is served again
   * after restore.
   */
  saveState(): Promise<Uint8Array<ArrayBuffer>>;
  /**
   * Takes saveState's bytes into devices just attached — the same tags in the same order, over fresh
   * backends of the same kind — after `emulator.restore_state()` and before the CPU runs. StateError when
   * they do not fit.
   */
  restoreState(state: Uint8Array): Promise<void>;
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
/**
 * Linux maps the window in 2 MiB ranges (FUSE_DAX_SZ) and needs a free range to map one that straddles
 * two; pages of running programs keep their ranges busy: below 16 MiB, dax=always stalls in reclaim.
 */
export const DAX_MIB_MIN = 16;
/** The guest maps the window into its vmalloc space, ~750 MiB with 256 MiB of RAM on i386. */
export const DAX_MIB_MAX = 512;
/** What the BIOS must still have as RAM below the windows. */
const RAM_MIN = 32 * MiB;
const NUM_REQUEST_QUEUES_MAX = 16;

/** Bytes of a `daxMiB` window; RangeError unless a power of two from DAX_MIB_MIN to DAX_MIB_MAX. */
export function daxWindowSize(daxMiB: number): number {
  if (!Number.isInteger(daxMiB) || daxMiB < DAX_MIB_MIN || daxMiB > DAX_MIB_MAX || (daxMiB & (daxMiB - 1)) !== 0) {
    throw new RangeError(`a DAX window is a power of two from ${DAX_MIB_MIN} to ${DAX_MIB_MAX} MiB, not ${daxMiB}`);
  }
  return daxMiB * MiB;
}

/** v86 keeps its memory below 2 GiB (it rounds a larger memory_size down to this). */
export const V86_MEMORY_MAX = 2 ** 31 - 128 * 1024;

/**
 * The v86 `memory_size` for `ramMiB` of guest RAM and DAX windows of `daxMiB` each: the windows stacked
 * above the RAM, each aligned to its size as a BAR must be, the largest first. RangeError past V86_MEMORY_MAX.
 */
export function v86MemorySize(ramMiB: number, daxMiB: readonly number[] = []): number {
  let end = ramMiB * MiB;
  for (const size of daxMiB.map(daxWindowSize).sort((a, b) => b - a)) end = Math.ceil(end / size) * size + size;
  if (end > V86_MEMORY_MAX) throw new RangeError(`${ramMiB} MiB of RAM and DAX windows of ${daxMiB.join(", ")} MiB need ${end / MiB} MiB of v86 memory; it has at most ${Math.floor(V86_MEMORY_MAX / MiB)}`);
  return end;
}

type Range = readonly [start: number, end: number];

/**
 * A fixed guest physical address for a window of `size` bytes: the highest one aligned to its size inside
 * `memoryBytes` of v86 memory, clear of every range in `taken`, leaving RAM_MIN below; undefined when
 * there is no room.
 */
export function daxWindowAddress(size: number, memoryBytes: number, taken: readonly Range[]): number | undefined {
  for (let at = Math.floor((memoryBytes - size) / size) * size; at >= RAM_MIN; at -= size) {
    if (!taken.some(([start, end]) => at < end && start < at + size)) return at;
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
  tellRamSize(machine);
  let detached: Promise<void> | undefined;
  return {
    shares: added,
    saveState: () => saveShares(added),
    restoreState: (saved) => restoreShares(added, saved),
    detach: () => (detached ??= Promise.all(added.map((s) => detachOne(machine, s))).then(() => undefined)),
  };
}

async function saveShares(shares: readonly LiveShare[]): Promise<Uint8Array<ArrayBuffer>> {
  await Promise.all(shares.map((s) => s.server.quiesce()));
  await new Promise((r) => setTimeout(r, 0)); // the devices' completions and interrupt checks run
  const saved = await Promise.all(shares.map(async (s) => ({ tag: s.tag, device: s.device.save() as unknown as Saved, ...(await s.server.saveState()) })));
  return encodeState(saved);
}

/** Each share's backend and session first, then its device, which serves what was in flight. */
async function restoreShares(shares: readonly LiveShare[], state: Uint8Array): Promise<void> {
  const saved = list(decodeState(state), "virtio-fs state");
  if (saved.length !== shares.length) throw new StateError(`the state holds ${saved.length} shares; ${shares.length} are attached`);
  for (const [i, s] of shares.entries()) {
    const share = record(saved[i], `shares[${i}]`);
    const tag = str(share.tag, `shares[${i}].tag`);
    if (tag !== s.tag) throw new StateError(`shares[${i}] was "${tag}" when saved; "${s.tag}" is attached`);
    if (share.session === undefined || share.backend === undefined) throw new StateError(`shares[${i}] has no session or backend state`);
    try {
      await s.server.restoreState({ session: share.session, backend: share.backend });
      s.device.restore(readDevice(share.device, `shares[${i}].device`));
    } catch (e) {
      throw new StateError(`share ${s.tag}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
}

/** The transport's saved registers, typed; the transport checks the values as it takes them. */
function readDevice(v: Saved | undefined, what: string): VirtioPciState {
  const d = record(v, what);
  const n = (x: Saved | undefined, field: string) => int(x, `${what}.${field}`, 0, 2 ** 53 - 1);
  if (typeof d.driverFeatures !== "bigint") throw new StateError(`${what}.driverFeatures`);
  return {
    status: n(d.status, "status"),
    driverFeatures: d.driverFeatures,
    deviceFeatureSelect: n(d.deviceFeatureSelect, "deviceFeatureSelect"),
    driverFeatureSelect: n(d.driverFeatureSelect, "driverFeatureSelect"),
    queueSelect: n(d.queueSelect, "queueSelect"),
    isr: n(d.isr, "isr"),
    queues: list(d.queues, `${what}.queues`).map((qv, i) => {
      const q = record(qv, `${what}.queues[${i}]`);
      const r = q.ring === null ? null : record(q.ring, `${what}.queues[${i}].ring`);
      return {
        size: n(q.size, "size"),
        enabled: bool(q.enabled, "enabled"),
        desc: n(q.desc, "desc"),
        driver: n(q.driver, "driver"),
        device: n(q.device, "device"),
        ring: r && {
          lastAvail: n(r.lastAvail, "lastAvail"),
          usedIdx: n(r.usedIdx, "usedIdx"),
          signalledUsed: n(r.signalledUsed, "signalledUsed"),
          pushedSinceSignal: n(r.pushedSinceSignal, "pushedSinceSignal"),
          inflight: list(r.inflight, "inflight").map((h) => n(h, "inflight head")),
        },
      };
    }),
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
  if (share.locks !== undefined && !LOCK_MODES.includes(share.locks)) throw new Error(`${field("locks")}: one of ${LOCK_MODES.join(", ")}, not ${String(share.locks)}`);
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
  const minSize = share.daxInodeMinSize;
  if (minSize !== undefined) {
    if (share.daxMiB === undefined) throw new Error(`${field("daxInodeMinSize")}: chooses files for a DAX window, and the share has no daxMiB`);
    if (!Number.isSafeInteger(minSize) || minSize < 0) throw new Error(`${field("daxInodeMinSize")}: a whole number of bytes, not ${minSize}`);
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
    if (at === undefined) {
      const mib = machine.bus.memory.size / MiB;
      throw new Error(`shares[${i}].daxMiB: no room for a ${size / MiB} MiB DAX window in v86's ${mib} MiB of memory: make memory_size RAM plus the windows (v86MemorySize)`);
    }
    windowRange = [at, at + size];
  }
  const log = share.log ?? ((m: string) => console.warn(m));
  const window = windowRange && new DaxWindow(windowRange[1] - windowRange[0], machine.bus.memory.range(windowRange[0], windowRange[1] - windowRange[0]));
  const server = new FuseServer({ fs: share.fs, cache: share.cache, writeback: share.writeback, locks: share.locks, log, observer: share.observer, dax: window, daxInodeMinSize: share.daxInodeMinSize });
  let ended = Promise.resolve();
  const device = new VirtioFsDevice(machine.bus, {
    tag: share.tag,
    numRequestQueues: share.numRequestQueues,
    ioPort,
    dax: windowRange && { bar: DAX_BAR, address: windowRange[0], size: windowRange[1] - windowRange[0] },
    handler: server.handle,
    onReset: () => (ended = server.reset()),
    onError: (m) => log(`virtio-fs ${share.tag}: ${m}`),
  });
  return { tag: share.tag, device, server, window, windowAddress: windowRange?.[0], ioPort, windowRange, sessionEnded: () => ended };
}

/** The first I/O BAR base no live device holds and v86 has no device on. */
function freeIoPort(machine: MachineState): number | undefined {
  const held = new Set([...machine.live].map((s) => s.ioPort));
  for (let base = IO_PORT_BASE; base < IO_PORT_END; base += IO_PORT_STRIDE) {
    if (!held.has(base) && machine.bus.portsFree(base, IO_PORT_STRIDE)) return base;
  }
  return undefined;
}

/** RAM, as the BIOS tells the guest, ends where the lowest window starts. */
function tellRamSize(machine: MachineState): void {
  const starts = [...machine.live].flatMap((s) => (s.windowRange ? [s.windowRange[0]] : []));
  machine.bus.setRamSize(Math.min(machine.bus.memory.size, ...starts));
}

async function detachOne(machine: MachineState, s: LiveShare): Promise<void> {
  if (!machine.live.delete(s)) return;
  tellRamSize(machine);
  s.device.remove(); // a reset: the server's session ends and gives back what the guest held
  await Promise.all([s.sessionEnded(), s.server.close()]);
}
