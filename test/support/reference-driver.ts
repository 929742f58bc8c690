// A TypeScript model of what Linux's virtio_pci + virtiofs.ko do with the device: find the virtio
// capabilities in PCI config space, negotiate features, lay out the queues in (fake) guest RAM, send
// FUSE requests and collect replies. The unit tests' harness, and a readable map of the guest side.
import type { IoBar } from "../../device/bus.ts";
import {
  COMMON,
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FEATURES_OK,
  VIRTIO_F_RING_EVENT_IDX,
  VIRTIO_F_RING_INDIRECT_DESC,
  VIRTIO_F_VERSION_1,
  VIRTIO_PCI_CAP_COMMON_CFG,
  VIRTIO_PCI_CAP_DEVICE_CFG,
  VIRTIO_PCI_CAP_ISR_CFG,
  VIRTIO_PCI_CAP_NOTIFY_CFG,
  VIRTIO_PCI_CAP_SHARED_MEMORY_CFG,
} from "../../device/virtio-pci.ts";
import { FuseOpcode, fuse_in_header, fuse_out_header, fuse_init_in, FUSE_KERNEL_MINOR_VERSION, FUSE_KERNEL_VERSION, FUSE_ROOT_ID } from "../../src/fuse/abi.ts";
import { DriverQueue, type UsedElem } from "./driver-queue.ts";
import type { FakeBus, FakePciFunction } from "./fake-bus.ts";

export interface VirtioCap {
  cfgType: number;
  bar: number;
  id: number;
  offset: number;
  length: number;
  /** notify_off_multiplier for NOTIFY_CFG; the 64-bit length for SHARED_MEMORY_CFG. */
  extra: number;
}

export interface FuseReply {
  error: number;
  unique: bigint;
  /** Bytes after fuse_out_header. */
  payload: Uint8Array;
  view: DataView;
  /** Bytes the device said it wrote. */
  usedLen: number;
}

const QUEUE_AREA = 0x10000; // rings from here, 64 KiB per queue
const HEAP = 0x100000; // request buffers from here

export class ReferenceDriver {
  readonly fn: FakePciFunction;
  readonly caps: VirtioCap[];
  readonly queues: DriverQueue[] = [];
  private unique = 1n;

  constructor(
    readonly bus: FakeBus,
    fnIndex = 0,
  ) {
    const fn = bus.functions[fnIndex];
    if (!fn) throw new Error("the device registered no PCI function");
    this.fn = fn;
    this.caps = this.readCaps();
  }

  /** Walks the capability list as virtio_pci_find_capability does. */
  private readCaps(): VirtioCap[] {
    const c = this.fn.config;
    const caps: VirtioCap[] = [];
    const seen = new Set<number>();
    for (let at = c.getUint8(0x34); at !== 0 && !seen.has(at); at = c.getUint8(at + 1)) {
      seen.add(at);
      if (c.getUint8(at) !== 0x09) continue;
      const len = c.getUint8(at + 2);
      const cfgType = c.getUint8(at + 3);
      caps.push({
        cfgType,
        bar: c.getUint8(at + 4),
        id: c.getUint8(at + 5),
        offset: c.getUint32(at + 8, true),
        length: c.getUint32(at + 12, true),
        extra: len >= 20 ? (cfgType === VIRTIO_PCI_CAP_SHARED_MEMORY_CFG ? c.getUint32(at + 20, true) * 2 ** 32 + c.getUint32(at + 12, true) : c.getUint32(at + 16, true)) : 0,
      });
    }
    return caps;
  }

  cap(cfgType: number): VirtioCap {
    const cap = this.caps.find((x) => x.cfgType === cfgType);
    if (!cap) throw new Error(`no virtio capability of type ${cfgType}`);
    return cap;
  }

  private bar(cap: VirtioCap): IoBar {
    const bar = this.fn.bar(cap.bar);
    if (bar.space !== "io") throw new Error(`capability ${cap.cfgType} points at memory BAR ${cap.bar}`);
    return bar;
  }

  readCommon(field: number, width: 1 | 2 | 4): number {
    const cap = this.cap(VIRTIO_PCI_CAP_COMMON_CFG);
    return this.bar(cap).region.read(cap.offset + field, width);
  }

  writeCommon(field: number, width: 1 | 2 | 4, value: number): void {
    const cap = this.cap(VIRTIO_PCI_CAP_COMMON_CFG);
    this.bar(cap).region.write(cap.offset + field, width, value);
  }

  readDeviceConfig(offset: number, width: 1 | 2 | 4): number {
    const cap = this.cap(VIRTIO_PCI_CAP_DEVICE_CFG);
    return this.bar(cap).region.read(cap.offset + offset, width);
  }

  /** Reads (and so clears) the ISR, as vp_interrupt does. */
  readIsr(): number {
    const cap = this.cap(VIRTIO_PCI_CAP_ISR_CFG);
    return this.bar(cap).region.read(cap.offset, 1);
  }

  get status(): number {
    return this.readCommon(COMMON.device_status, 1);
  }

  set status(v: number) {
    this.writeCommon(COMMON.device_status, 1, v);
  }

  deviceFeatures(): bigint {
    let f = 0n;
    for (const sel of [0, 1]) {
      this.writeCommon(COMMON.device_feature_select, 4, sel);
      f |= BigInt(this.readCommon(COMMON.device_feature, 4)) << BigInt(32 * sel);
    }
    return f;
  }

  /** Writes the driver's feature bits and sets FEATURES_OK; returns whether the device kept it. */
  negotiate(features: bigint): boolean {
    for (const sel of [0, 1]) {
      this.writeCommon(COMMON.driver_feature_select, 4, sel);
      this.writeCommon(COMMON.driver_feature, 4, Number((features >> BigInt(32 * sel)) & 0xffffffffn));
    }
    this.status = this.status | VIRTIO_CONFIG_S_FEATURES_OK;
    return (this.status & VIRTIO_CONFIG_S_FEATURES_OK) !== 0;
  }

  /** The whole probe of virtio_pci + virtio_fs: reset, negotiate, set up every queue, DRIVER_OK. */
  probe(opts: { queueSize?: number; eventIdx?: boolean; indirect?: boolean } = {}): void {
    this.status = 0;
    this.status = VIRTIO_CONFIG_S_ACKNOWLEDGE;
    this.status = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER;
    const want =
      (1n << BigInt(VIRTIO_F_VERSION_1)) |
      (opts.eventIdx ? 1n << BigInt(VIRTIO_F_RING_EVENT_IDX) : 0n) |
      (opts.indirect ? 1n << BigInt(VIRTIO_F_RING_INDIRECT_DESC) : 0n);
    if (!this.negotiate(this.deviceFeatures() & want)) throw new Error("device refused FEATURES_OK");
    const n = this.readCommon(COMMON.num_queues, 2);
    this.queues.length = 0;
    for (let q = 0; q < n; q++) this.queues.push(this.setupQueue(q, opts.queueSize ?? 64, opts.eventIdx ?? false));
    this.status = this.status | VIRTIO_CONFIG_S_DRIVER_OK;
  }

  setupQueue(q: number, size: number, eventIdx: boolean): DriverQueue {
    this.writeCommon(COMMON.queue_select, 2, q);
    const max = this.readCommon(COMMON.queue_size, 2);
    const qsize = Math.min(size, max);
    this.writeCommon(COMMON.queue_size, 2, qsize);
    const base = QUEUE_AREA + q * 0x10000;
    const layout = { size: qsize, desc: base, driver: base + 16 * qsize, device: base + 0x8000 };
    this.writeCommon(COMMON.queue_desc, 4, layout.desc);
    this.writeCommon(COMMON.queue_desc + 4, 4, 0);
    this.writeCommon(COMMON.queue_driver, 4, layout.driver);
    this.writeCommon(COMMON.queue_driver + 4, 4, 0);
    this.writeCommon(COMMON.queue_device, 4, layout.device);
    this.writeCommon(COMMON.queue_device + 4, 4, 0);
    this.writeCommon(COMMON.queue_enable, 2, 1);
    return new DriverQueue(this.bus.memory, layout, { addr: HEAP + q * 0x400000, len: 0x400000 }, eventIdx);
  }

  /** Writes the queue index to its notify register (vp_notify). */
  kick(q: number): void {
    this.writeCommon(COMMON.queue_select, 2, q);
    const off = this.readCommon(COMMON.queue_notify_off, 2);
    const cap = this.cap(VIRTIO_PCI_CAP_NOTIFY_CFG);
    this.bar(cap).region.write(cap.offset + off * cap.extra, 2, q);
  }

  /** fuse_in_header + args, as one readable buffer (virtiofs.ko may split it; tests may too). */
  request(opcode: number, nodeid: bigint | number, args: Uint8Array = new Uint8Array(0), overrides: { len?: number; unique?: bigint } = {}): Uint8Array {
    const req = new Uint8Array(fuse_in_header.SIZE + args.length);
    const v = new DataView(req.buffer);
    const unique = overrides.unique ?? this.unique++;
    v.setUint32(fuse_in_header.len, overrides.len ?? req.length, true);
    v.setUint32(fuse_in_header.opcode, opcode, true);
    v.setBigUint64(fuse_in_header.unique, unique, true);
    v.setBigUint64(fuse_in_header.nodeid, BigInt(nodeid), true);
    req.set(args, fuse_in_header.SIZE);
    return req;
  }

  /**
   * Posts a request on queue q, kicks if the device asked for kicks (as virtqueue_kick_prepare decides),
   * waits for the device and returns every completion so far.
   */
  async post(q: number, readable: Uint8Array[], writableLens: number[], opts: { indirect?: boolean } = {}): Promise<UsedElem[]> {
    this.queues[q]!.add(readable, writableLens, opts);
    if (this.queues[q]!.kickNeeded()) this.kick(q);
    await settle();
    return this.queues[q]!.getUsed();
  }

  /** One FUSE request on request queue 1 with room for `replyLen` payload bytes; returns the reply. */
  async fuse(opcode: number, nodeid: bigint | number, args?: Uint8Array, replyLen = 4096): Promise<FuseReply> {
    const used = await this.post(1, [this.request(opcode, nodeid, args)], [fuse_out_header.SIZE + replyLen]);
    if (used.length !== 1) throw new Error(`expected one completion, got ${used.length}`);
    return parseReply(used[0]!);
  }

  /** As fuse(), for a backend doing real I/O: waits (up to `ms`) until the reply is there. */
  async fuseAwait(opcode: number, nodeid: bigint | number, args?: Uint8Array, ms = 5000): Promise<FuseReply> {
    const q = this.queues[1]!;
    q.add([this.request(opcode, nodeid, args)], [fuse_out_header.SIZE + 4096]);
    if (q.kickNeeded()) this.kick(1);
    for (const end = Date.now() + ms; Date.now() < end; ) {
      await settle();
      const used = q.getUsed();
      if (used.length) return parseReply(used[0]!);
    }
    throw new Error(`no reply to opcode ${opcode} within ${ms} ms`);
  }

  /** FUSE_INIT as Linux 6.1 sends it. */
  async init(flags = 0, flags2 = 0): Promise<FuseReply> {
    const a = new Uint8Array(fuse_init_in.SIZE);
    const v = new DataView(a.buffer);
    v.setUint32(fuse_init_in.major, FUSE_KERNEL_VERSION, true);
    v.setUint32(fuse_init_in.minor, FUSE_KERNEL_MINOR_VERSION, true);
    v.setUint32(fuse_init_in.max_readahead, 128 * 1024, true);
    v.setUint32(fuse_init_in.flags, flags, true);
    v.setUint32(fuse_init_in.flags2, flags2, true);
    return this.fuse(FuseOpcode.FUSE_INIT, FUSE_ROOT_ID, a);
  }
}

/** A request's argument bytes: a struct of `size` bytes filled through `fill`, then `tail` (a name, data). */
export function args(size: number, fill: (v: DataView) => void, tail?: Uint8Array): Uint8Array {
  const a = new Uint8Array(size + (tail?.length ?? 0));
  fill(new DataView(a.buffer));
  if (tail) a.set(tail, size);
  return a;
}

export function parseReply(u: UsedElem): FuseReply {
  const v = new DataView(u.data.buffer, u.data.byteOffset, u.data.byteLength);
  const len = v.getUint32(fuse_out_header.len, true);
  const payload = u.data.subarray(fuse_out_header.SIZE, len);
  return {
    error: v.getInt32(fuse_out_header.error, true),
    unique: v.getBigUint64(fuse_out_header.unique, true),
    payload,
    view: new DataView(payload.buffer, payload.byteOffset, payload.byteLength),
    usedLen: u.len,
  };
}

/** Lets every pending promise in the device and server settle (the backend may await several times). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
}

/** A C string argument: name + NUL. */
export function cstr(s: string): Uint8Array {
  const b = new TextEncoder().encode(s);
  const out = new Uint8Array(b.length + 1);
  out.set(b);
  return out;
}

