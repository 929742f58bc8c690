// One input's world: a fresh backend, FUSE server and virtio-fs device on the fuzzer's fake guest RAM.
// It runs the input's steps and checks after every one what a guest must never achieve; the findings
// are plain sentences.
import { readdirSync } from "node:fs";
import { BAR0, COMMON, VIRTIO_CONFIG_S_DRIVER_OK, VIRTIO_CONFIG_S_NEEDS_RESET } from "../device/virtio-pci.ts";
import { VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_WRITE } from "../device/virtqueue.ts";
import { DaxWindow, FuseOpcode as Op, FuseServer, VirtioFsDevice } from "../src/index.ts";
import { fuse_batch_forget_in, fuse_direntplus, fuse_dirent, fuse_entry_out, fuse_forget_in, fuse_forget_one, fuse_in_header, fuse_out_header } from "../src/fuse/abi.ts";
import type { IoBar } from "../device/bus.ts";
import { FakeBus } from "../test/support/fake-bus.ts";
import type { FakeMemory, Range } from "../test/support/fake-memory.ts";
import type { Backend, Share } from "./backends.ts";
import { countingFs, Holdings } from "./counting-fs.ts";
import type { Step } from "./input.ts";

/** Guest RAM; the DAX window's BAR sits right above it. */
export const RAM = 32 << 20;
export const WINDOW_AT = RAM;
export const DAX_BAR = 2;
/** A single register access that takes longer, or makes the server copy more of guest RAM, is a finding. */
const STEP_MS_MAX = 1000;
const STEP_COPY_MAX = 64 << 20;
/** How long every request may take to be answered. */
const ANSWER_MS_MAX = 10_000;

const ENTRY_OPS = new Set<number>([Op.FUSE_LOOKUP, Op.FUSE_MKNOD, Op.FUSE_MKDIR, Op.FUSE_SYMLINK, Op.FUSE_LINK, Op.FUSE_CREATE, Op.FUSE_TMPFILE]);
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

export const hostFdCount = (): number => readdirSync("/proc/self/fd").length;

/** Where errors nobody awaited (a throw in a timer, an unhandled rejection) are reported while a world runs. */
let current: World | undefined;
export function strayError(e: unknown): void {
  const message = `an exception escaped: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`;
  if (current) current.finding(message);
  else throw e;
}

interface Layout {
  size: number;
  desc: number;
  device: number;
}

export class World {
  readonly findings: string[] = [];
  private readonly region: IoBar["region"];
  private readonly device: VirtioFsDevice;
  private readonly server: FuseServer;
  private readonly holdings = new Holdings();
  private readonly layouts = new Map<number, Layout>();
  private readonly allowed: Range[] = [];
  private readonly allowedKeys = new Set<number>();
  private readonly dirty: Range[] = [];
  /** Node ids whose entries reached the guest, with their lookup counts, as the kernel would hold them. */
  private readonly learned = new Map<bigint, number>();
  private learnedKnown = true;
  /** Sees the guest's stores (the generator records them as steps). */
  onPoke: ((addr: number, data: Uint8Array) => void) | undefined;
  private outstanding = 0;
  /** Whether the guest stored into a descriptor table since the buffers they allow were last read. */
  private ringsChanged = true;
  /** The descriptor tables (the rings' and the indirect ones they name) read then. */
  private readonly tables: Range[] = [];
  /** Bytes the server has read out of guest RAM: what a kick can make the host copy and hold. */
  private copied = 0;
  private resets = 0;
  private resetting: Promise<void> = Promise.resolve();
  private stepIndex = -1;

  private constructor(
    private readonly backend: Backend,
    private readonly memory: FakeMemory,
    private readonly share: Share,
    private readonly fdBaseline: number,
  ) {
    const bus = new FakeBus(memory);
    const window = backend.dax ? new DaxWindow(backend.dax, memory.range(WINDOW_AT, backend.dax)) : undefined;
    this.server = new FuseServer({ fs: countingFs(share.fs, this.holdings), dax: window, log: (m) => this.log(m) });
    this.device = new VirtioFsDevice(bus, {
      tag: "fuzz",
      handler: (chain, q) => this.handle(chain, q),
      onReset: () => {
        this.resets++;
        this.learned.clear();
        this.learnedKnown = true;
        this.resetting = this.server.reset();
      },
      onError: (m) => {
        if (m.includes("request handler failed")) this.finding(`the server threw to the device: ${m}`);
      },
      dax: window && { bar: DAX_BAR, address: WINDOW_AT, size: window.size },
    });
    const bar = bus.functions[0]!.bar(BAR0.index);
    if (bar.space !== "io") throw new Error("BAR 0 is not I/O space");
    this.region = bar.region;
    memory.onPoke = (addr, data) => {
      if (!this.ringsChanged) this.ringsChanged = this.tables.some((t) => addr < t.addr + t.len && t.addr < addr + data.length);
      this.dirty.push({ addr, len: data.length });
      this.onPoke?.(addr, data);
    };
  }

  static async open(backend: Backend, memory: FakeMemory): Promise<World> {
    const fds = backend.hostFds ? hostFdCount() : 0;
    const share = await backend.open();
    const w = new World(backend, memory, share, fds);
    current = w;
    return w;
  }

  finding(message: string): void {
    this.findings.push(this.stepIndex >= 0 ? `step ${this.stepIndex}: ${message}` : message);
  }

  private log(m: string): void {
    // The server answers a backend's failure with EIO: a guest must not be able to make a backend throw.
    if (m.includes("backend failure")) this.finding(`the backend threw: ${m}`);
  }

  async run(steps: readonly Step[]): Promise<void> {
    for (let i = 0; i < steps.length && this.findings.length === 0; i++) await this.exec(steps[i]!, i);
  }

  /** Runs one step and checks it. */
  async exec(step: Step, index: number): Promise<void> {
    this.checkWrites(); // completions that landed since the last step, against what was allowed then
    this.stepIndex = index;
    try {
      switch (step.t) {
        case "poke":
          if (!Number.isSafeInteger(step.addr) || step.addr < 0 || step.addr + step.data.length > this.memory.size) throw new Error(`poke outside guest memory: ${step.addr}`);
          this.memory.poke(step.addr, step.data);
          break;
        case "read":
          this.region.read(step.offset, step.width);
          break;
        case "write":
          this.write(step.offset, step.width, step.value);
          break;
        case "settle":
          this.learnAllowed();
          if (step.turns > 0) for (let i = 0; i < step.turns; i++) await turn();
          else await this.quiesce();
          break;
        case "reset":
          this.device.reset();
          this.forgetRings();
          break;
      }
    } catch (e) {
      this.finding(`an exception escaped: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    }
    this.checkWrites();
  }

  private write(offset: number, width: 1 | 2 | 4, value: number): void {
    const notify = offset >= BAR0.notify;
    if (notify) this.learnAllowed();
    const t0 = performance.now();
    const copied = this.copied;
    this.region.write(offset, width, value);
    const ms = performance.now() - t0;
    if (ms > STEP_MS_MAX) this.finding(`a register write (offset ${offset}) took ${ms.toFixed(0)} ms`);
    if (this.copied - copied > STEP_COPY_MAX) this.finding(`a notify made the server copy ${((this.copied - copied) / 2 ** 20).toFixed(0)} MiB of guest RAM`);
    if (offset === COMMON.device_status && (value & 0xff) === 0) this.forgetRings();
    else if (offset < BAR0.commonLen) this.learnQueue();
  }

  /** After a write to common configuration: the selected queue's rings, once the device has enabled it. */
  private learnQueue(): void {
    const r = this.region;
    const q = r.read(COMMON.queue_select, 2);
    if (this.layouts.has(q) || r.read(COMMON.queue_enable, 2) !== 1) return;
    const hiLo = (at: number) => r.read(at + 4, 4) * 2 ** 32 + r.read(at, 4);
    this.ringsChanged = true;
    this.layouts.set(q, { size: r.read(COMMON.queue_size, 2), desc: hiLo(COMMON.queue_desc), device: hiLo(COMMON.queue_device) });
  }

  /** A reset: the rings and every buffer the device was given are the guest's again. */
  private forgetRings(): void {
    this.layouts.clear();
    this.allowed.length = 0;
    this.allowedKeys.clear();
    this.ringsChanged = true;
  }

  /**
   * Where the device may write from now until a reset: each enabled queue's used ring and every
   * device-writable buffer any of its descriptors (or their indirect tables) names. A superset of what
   * a correct device may write, never less.
   */
  private learnAllowed(): void {
    if (!this.ringsChanged) return;
    this.ringsChanged = false;
    this.tables.length = 0;
    const u8 = this.memory.u8;
    const ram = this.memory.size;
    const u32 = (at: number) => (u8[at]! | (u8[at + 1]! << 8) | (u8[at + 2]! << 16) | (u8[at + 3]! << 24)) >>> 0;
    const allow = (addr: number, len: number) => {
      if (len === 0 || addr + len > ram) return;
      const key = addr * ram + len; // exact: both are below ram, which is below 2^26
      if (this.allowedKeys.has(key)) return;
      this.allowedKeys.add(key);
      this.allowed.push({ addr, len });
    };
    for (const l of this.layouts.values()) {
      allow(l.device, 6 + 8 * l.size);
      if (l.desc + 16 * l.size > ram) continue;
      this.tables.push({ addr: l.desc, len: 16 * l.size });
      for (let at = l.desc, end = l.desc + 16 * l.size; at < end; at += 16) {
        const flags = u8[at + 12]!;
        if (!(flags & (VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE))) continue;
        const addr = u32(at + 4) * 2 ** 32 + u32(at);
        const len = u32(at + 8);
        if (!(flags & VIRTQ_DESC_F_INDIRECT)) {
          allow(addr, len);
          continue;
        }
        const n = Math.floor(len / 16);
        if (addr + 16 * n > ram) continue;
        this.tables.push({ addr, len: 16 * n });
        for (let e = addr, tableEnd = addr + 16 * n; e < tableEnd; e += 16) if (u8[e + 12]! & VIRTQ_DESC_F_WRITE) allow(u32(e + 4) * 2 ** 32 + u32(e), u32(e + 8));
      }
    }
  }

  private checkWrites(): void {
    const w = this.memory.writes;
    if (w.length === 0) return;
    for (const bad of this.memory.writesOutside(this.allowed)) this.finding(`the device wrote [${bad.addr}, +${bad.len}) outside the used rings and the device-writable buffers`);
    this.dirty.push(...w);
    this.memory.clearWrites();
  }

  /** Waits until every request the device took is answered (or the time is up: a finding). */
  private async quiesce(): Promise<void> {
    const end = performance.now() + ANSWER_MS_MAX;
    // One turn runs every completion already due; then wait for the backend's I/O, if any.
    await turn();
    while (this.outstanding > 0) {
      if (performance.now() > end) return this.finding(`${this.outstanding} requests still unanswered after ${ANSWER_MS_MAX} ms`);
      await turn();
    }
    await this.resetting;
    await turn(); // the completions' used-ring updates and interrupts
    this.checkLearned();
  }

  /** The server's handler, watched: what each request was and what reached the guest. */
  private async handle(chain: Parameters<FuseServer["handle"]>[0], q: number): Promise<number> {
    const resets = this.resets;
    const reads: Uint8Array[] = [];
    const out: Uint8Array[] = [];
    const count = (n: number) => (this.copied += n);
    const watched = {
      reader: {
        get readable() {
          return chain.reader.readable;
        },
        read(n: number) {
          const b = chain.reader.read(n);
          count(b.length);
          reads.push(b);
          return b;
        },
      },
      writer: {
        get writable() {
          return chain.writer.writable;
        },
        write(b: Uint8Array) {
          chain.writer.write(b);
          out.push(b.slice());
        },
      },
    };
    this.outstanding++;
    try {
      return await this.server.handle(watched, q);
    } finally {
      this.outstanding--;
      if (resets === this.resets && reads[0]?.length === fuse_in_header.SIZE) this.learn(reads[0], reads[1] ?? new Uint8Array(0), out);
    }
  }

  /** What the guest's kernel would now hold: the node ids of entries it received, less what it forgot. */
  private learn(header: Uint8Array, args: Uint8Array, out: Uint8Array[]): void {
    const hv = new DataView(header.buffer, header.byteOffset);
    const av = new DataView(args.buffer, args.byteOffset, args.byteLength);
    const opcode = hv.getUint32(fuse_in_header.opcode, true);
    // DESTROY ends the session under requests still running, whose replies may come before or after its
    // own: what the guest holds is unknown from here until the next reset.
    if (opcode === Op.FUSE_DESTROY) this.learnedKnown = false;
    if (opcode === Op.FUSE_FORGET && args.length >= fuse_forget_in.SIZE) this.forget(hv.getBigUint64(fuse_in_header.nodeid, true), av.getBigUint64(fuse_forget_in.nlookup, true));
    if (opcode === Op.FUSE_BATCH_FORGET && args.length >= fuse_batch_forget_in.SIZE) {
      const n = Math.min(av.getUint32(fuse_batch_forget_in.count, true), Math.floor((args.length - fuse_batch_forget_in.SIZE) / fuse_forget_one.SIZE));
      for (let i = 0, at = fuse_batch_forget_in.SIZE; i < n; i++, at += fuse_forget_one.SIZE) this.forget(av.getBigUint64(at + fuse_forget_one.nodeid, true), av.getBigUint64(at + fuse_forget_one.nlookup, true));
    }
    const reply = new Uint8Array(out.reduce((n, b) => n + b.length, 0));
    out.reduce((at, b) => (reply.set(b, at), at + b.length), 0);
    if (reply.length < fuse_out_header.SIZE) return;
    const rv = new DataView(reply.buffer);
    if (rv.getInt32(fuse_out_header.error, true) !== 0) return;
    const add = (nodeid: bigint) => nodeid !== 0n && this.learned.set(nodeid, (this.learned.get(nodeid) ?? 0) + 1);
    const base = fuse_out_header.SIZE;
    if (ENTRY_OPS.has(opcode) && reply.length >= base + fuse_entry_out.SIZE) add(rv.getBigUint64(base + fuse_entry_out.nodeid, true));
    if (opcode === Op.FUSE_READDIRPLUS) {
      for (let at = base; at + fuse_direntplus.SIZE <= reply.length; ) {
        const namelen = rv.getUint32(at + fuse_direntplus.dirent + fuse_dirent.namelen, true);
        add(rv.getBigUint64(at + fuse_entry_out.nodeid, true));
        at += (fuse_direntplus.SIZE + namelen + 7) & ~7;
      }
    }
  }

  private forget(nodeid: bigint, n: bigint): void {
    const had = this.learned.get(nodeid);
    if (had === undefined) return;
    if (BigInt(had) <= n) this.learned.delete(nodeid);
    else this.learned.set(nodeid, had - Number(n));
  }

  /** The server holds no node the guest was never told of. */
  private checkLearned(): void {
    if (!this.learnedKnown) return;
    // Completions are dropped (and the guest learns nothing) unless the driver runs the device.
    const status = this.region.read(COMMON.device_status, 1);
    if ((status & VIRTIO_CONFIG_S_DRIVER_OK) === 0 || status & VIRTIO_CONFIG_S_NEEDS_RESET) return;
    const held = this.server.nodeCount - 1;
    if (held > this.learned.size) this.finding(`the server holds ${held} node references, the guest was told of ${this.learned.size}`);
  }

  /** Resets the device as a reboot would, then checks that nothing of the session is left; tears down. */
  async finish(): Promise<void> {
    this.checkWrites();
    this.stepIndex = -1;
    try {
      this.device.reset();
      this.forgetRings();
      await this.quiesce();
      await this.resetting;
      if (this.server.nodeCount !== 1) this.finding(`after a reset the server holds ${this.server.nodeCount} node ids (the root only expected)`);
      if (this.holdings.handles.size) this.finding(`after a reset ${this.holdings.handles.size} backend handles are still open`);
      if (this.holdings.refCount) this.finding(`after a reset the backend still holds ${this.holdings.refCount} inode references`);
      const dax = this.server.daxSnapshot();
      if (dax && dax.mappings.length) this.finding(`after a reset the DAX window still maps ${dax.mappings.length} ranges`);
      if (this.backend.hostFds) {
        await this.share.close();
        const fds = hostFdCount();
        if (fds !== this.fdBaseline) this.finding(`host file descriptors: ${this.fdBaseline} before the share was opened, ${fds} after reset and close`);
      } else await this.share.close();
      for (const c of this.backend.outsideChanges()) this.finding(c);
    } catch (e) {
      this.finding(`an exception escaped the reset: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    }
    this.clean();
    if (current === this) current = undefined;
  }

  /** Zeroes every byte the guest or the device wrote, so the next input starts from zeroed RAM. */
  private clean(): void {
    this.memory.onPoke = undefined;
    this.checkWrites();
    const u8 = this.memory.u8;
    for (const r of this.dirty) u8.fill(0, r.addr, r.addr + r.len);
    if (this.backend.dax) u8.fill(0, WINDOW_AT, WINDOW_AT + this.backend.dax);
    this.memory.changes.length = 0;
  }
}
