// Split virtqueue, device side (virtio 1.x section 2.7), hardened against a hostile guest: every value read
// from guest memory is checked before it is used, the device reads guest RAM only inside [0, memory.size)
// and writes only into the used ring and into the device-writable buffers of chains it has popped.

import type { GuestMemory } from "./bus.ts";

/** Descriptor flags (struct virtq_desc.flags). */
export const VIRTQ_DESC_F_NEXT = 1;
export const VIRTQ_DESC_F_WRITE = 2;
export const VIRTQ_DESC_F_INDIRECT = 4;
/** Driver → device: do not interrupt me (ignored when EVENT_IDX is negotiated). */
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
/** Device → driver: do not kick me (only written when EVENT_IDX is not negotiated). */
export const VIRTQ_USED_F_NO_NOTIFY = 1;

/** Largest queue size this device offers; the spec allows split rings up to 32768. */
export const SPLIT_QUEUE_MAX_SIZE = 1024;
const DESC_SIZE = 16;
const DEFAULT_MAX_CHAIN_BYTES = 16 << 20;

/**
 * The guest broke the ring protocol (bad layout, bad descriptor, bad index) or the queue was closed.
 * The queue is unusable afterwards: the transport sets DEVICE_NEEDS_RESET and drops the queue until reset.
 */
export class VirtqueueError extends Error {
  override readonly name = "VirtqueueError";
}

/**
 * A reader or writer was asked for more bytes than its part of the chain holds. Nothing was transferred and
 * the chain stays usable: the request is malformed, not the ring, so the caller should answer it with an error.
 */
export class ChainBoundsError extends RangeError {
  override readonly name = "ChainBoundsError";
}

/** Guest physical addresses of the three areas of a split queue, as written to queue_desc/driver/device. */
export interface SplitQueueLayout {
  /** Queue size: a power of 2, 1..SPLIT_QUEUE_MAX_SIZE. */
  size: number;
  /** Descriptor table (queue_desc): 16 * size bytes, 16-aligned. */
  desc: number;
  /** Available ring (queue_driver): 6 + 2 * size bytes, 2-aligned. */
  driver: number;
  /** Used ring (queue_device): 6 + 8 * size bytes, 4-aligned. */
  device: number;
}

export interface SplitQueueOptions {
  /** VIRTIO_F_INDIRECT_DESC negotiated. */
  indirect: boolean;
  /** VIRTIO_F_EVENT_IDX negotiated. */
  eventIdx: boolean;
  /** Bound on the readable and (separately) the writable bytes of one chain; default 16 MiB. */
  maxChainBytes?: number;
}

function u16(u8: Uint8Array, addr: number): number {
  return u8[addr]! | (u8[addr + 1]! << 8);
}

function u32(u8: Uint8Array, addr: number): number {
  return (u8[addr]! | (u8[addr + 1]! << 8) | (u8[addr + 2]! << 16) | (u8[addr + 3]! << 24)) >>> 0;
}

/** Gathered segments of one direction of a chain; addresses were checked to lie inside guest RAM. */
interface Segments {
  addr: number[];
  len: number[];
  total: number;
}

/**
 * One descriptor of a chain as the walk found it (struct virtq_desc), kept for inspection: a zero-length
 * buffer and the descriptor that points at an indirect table are listed too.
 */
export interface ChainDescriptor {
  /** Index in the queue's descriptor table, or in the indirect table when `indirect`. */
  readonly index: number;
  /** Guest physical address (the low 32 bits: a 32-bit guest has no RAM above). */
  readonly addr: number;
  readonly len: number;
  /** VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_INDIRECT as the driver wrote them. */
  readonly flags: number;
  /** The descriptor lives in an indirect table. */
  readonly indirect: boolean;
}

/** A split queue as the inspector draws it: the ring's fields read from guest memory, the newest entries. */
export interface RingSnapshot {
  size: number;
  /** VIRTIO_F_EVENT_IDX negotiated: used_event and avail_event mean something. */
  eventIdx: boolean;
  /** Guest physical addresses of the descriptor table, the available ring, the used ring. */
  desc: number;
  driver: number;
  device: number;
  availFlags: number;
  availIdx: number;
  /** The device's next avail entry to take (last_avail_idx). */
  lastAvail: number;
  /** avail->used_event: interrupt me when used idx passes this. */
  usedEvent: number;
  /** The newest avail entries, oldest first: `idx` is the free-running index, `head` the chain's first descriptor. */
  avail: { idx: number; head: number }[];
  usedFlags: number;
  usedIdx: number;
  /** used->avail_event: kick me when avail idx passes this. */
  availEvent: number;
  used: { idx: number; id: number; len: number }[];
  /** Heads of the chains popped and not yet pushed. */
  inflight: number[];
  /** The descriptor table entries of the chains listed in `avail` (indirect tables not followed). */
  descriptors: { index: number; addr: number; len: number; flags: number; next: number }[];
  /** Used buffer notifications: raised, or suppressed by the driver (VIRTQ_AVAIL_F_NO_INTERRUPT, used_event). */
  interrupts: { sent: number; suppressed: number };
}

/**
 * What a snapshot keeps of a queue beside its layout: the device's side of the indices, and the heads of the
 * chains in flight (their descriptors stay in guest memory, which the driver leaves alone until they are used).
 */
export interface SplitQueueState {
  lastAvail: number;
  usedIdx: number;
  signalledUsed: number;
  pushedSinceSignal: number;
  inflight: number[];
}

/** Sequential cursor over a list of segments. */
abstract class SegmentCursor {
  #seg = 0;
  #off = 0;
  #done = 0;

  constructor(
    protected readonly memory: GuestMemory,
    protected readonly segs: Segments,
    private readonly assertLive: () => void,
  ) {}

  get remaining(): number {
    return this.segs.total - this.#done;
  }

  protected get done(): number {
    return this.#done;
  }

  /** Checks n and walks n bytes, calling step(guestAddr, length, offsetInTransfer) per contiguous piece. */
  protected advance(n: number, step: (addr: number, len: number, at: number) => void): void {
    this.assertLive();
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`invalid byte count ${n}`);
    if (n > this.remaining) throw new ChainBoundsError(`${n} bytes requested, ${this.remaining} left in the chain`);
    let at = 0;
    while (at < n) {
      const len = this.segs.len[this.#seg]!;
      const k = Math.min(len - this.#off, n - at);
      step(this.segs.addr[this.#seg]! + this.#off, k, at);
      at += k;
      this.#off += k;
      if (this.#off === len) {
        this.#seg++;
        this.#off = 0;
      }
    }
    this.#done += n;
  }
}

/** The device-readable part of a chain, read front to back. Reads copy out of guest RAM. */
export class ChainReader extends SegmentCursor {
  /** Total device-readable bytes. */
  get readable(): number {
    return this.segs.total;
  }

  /** Bytes consumed so far. */
  get consumed(): number {
    return this.done;
  }

  /** Returns a copy of the next n bytes (a copy, so later guest writes cannot change what was parsed). */
  read(n: number): Uint8Array {
    const out = new Uint8Array(n);
    this.readInto(out);
    return out;
  }

  /** Fills dst entirely with the next dst.length bytes. */
  readInto(dst: Uint8Array): void {
    this.advance(dst.length, (addr, len, at) => dst.set(this.memory.u8.subarray(addr, addr + len), at));
  }

  skip(n: number): void {
    this.advance(n, () => {});
  }
}

/** The device-writable part of a chain, written front to back. */
export class ChainWriter extends SegmentCursor {
  /** Total device-writable bytes. */
  get writable(): number {
    return this.segs.total;
  }

  /** Bytes written so far: the default used length reported by push(). */
  get written(): number {
    return this.done;
  }

  /** Scatters bytes over the writable segments; subarray views, so a large payload is copied once, into RAM. */
  write(bytes: Uint8Array): void {
    this.advance(bytes.length, (addr, len, at) => this.memory.write(addr, bytes.subarray(at, at + len)));
  }
}

/** One popped request: owned by the device from pop() until push(). */
export class DescriptorChain {
  readonly reader: ChainReader;
  readonly writer: ChainWriter;

  /** @internal built by SplitQueue.pop() only. */
  constructor(
    /** Head descriptor index: the id reported in the used ring. */
    readonly head: number,
    memory: GuestMemory,
    readable: Segments,
    writable: Segments,
    assertLive: () => void,
    /** Every descriptor of the chain in walk order. */
    readonly descriptors: readonly ChainDescriptor[],
  ) {
    this.reader = new ChainReader(memory, readable, assertLive);
    this.writer = new ChainWriter(memory, writable, assertLive);
  }
}

/**
 * Device side of one split virtqueue.
 *
 * Error policy: a guest-caused problem makes pop() throw VirtqueueError *before* anything is consumed or
 * written (last_avail_idx is unchanged, nothing goes to the used ring) and leaves the queue broken. A broken
 * or closed queue answers every later call, and every reader/writer of its in-flight chains, with
 * VirtqueueError, so nothing of a dead queue touches guest memory again. Only VirtqueueError and
 * ChainBoundsError arise from guest data; other errors (RangeError, Error) mean the device code misused the API.
 */
export class SplitQueue {
  readonly size: number;
  readonly #memory: GuestMemory;
  readonly #layout: SplitQueueLayout;
  readonly #indirect: boolean;
  readonly #eventIdx: boolean;
  readonly #maxChainBytes: number;
  /** Chains popped and not yet pushed, by head: bounds in-flight work to `size` and catches a reused head. */
  readonly #inflight: (DescriptorChain | undefined)[];
  // Reused for every ring update: a used element and a 16-bit field.
  readonly #elem = new Uint8Array(8);
  readonly #field = new Uint8Array(2);
  #inflightCount = 0;
  #lastAvail = 0;
  #usedIdx = 0;
  /** used idx at the last needsInterrupt() and the pushes since (the 16-bit difference alone aliases at 2^16). */
  #signalledUsed = 0;
  #pushedSinceSignal = 0;
  #dead: string | null = null;
  #interrupts = { sent: 0, suppressed: 0 };

  constructor(memory: GuestMemory, layout: SplitQueueLayout, opts: SplitQueueOptions) {
    const { size, desc, driver, device } = layout;
    if (!Number.isInteger(size) || size < 1 || size > SPLIT_QUEUE_MAX_SIZE || (size & (size - 1)) !== 0) {
      throw new VirtqueueError(`queue size ${size} is not a power of 2 in 1..${SPLIT_QUEUE_MAX_SIZE}`);
    }
    const area = (name: string, addr: number, bytes: number, align: number): void => {
      if (!Number.isSafeInteger(addr) || addr < 0) throw new VirtqueueError(`${name} address ${addr} is invalid`);
      if (addr % align !== 0) throw new VirtqueueError(`${name} address ${addr} is not ${align}-byte aligned`);
      if (addr + bytes > memory.size) throw new VirtqueueError(`${name} [${addr}, +${bytes}) is outside guest RAM`);
    };
    area("descriptor table", desc, DESC_SIZE * size, 16);
    // Both rings include their event field (used_event / avail_event) whether or not EVENT_IDX is negotiated.
    area("available ring", driver, 6 + 2 * size, 2);
    area("used ring", device, 6 + 8 * size, 4);
    const maxChainBytes = opts.maxChainBytes ?? DEFAULT_MAX_CHAIN_BYTES;
    if (!Number.isSafeInteger(maxChainBytes) || maxChainBytes < 0) throw new RangeError(`invalid maxChainBytes ${maxChainBytes}`);
    this.size = size;
    this.#memory = memory;
    this.#layout = { size, desc, driver, device };
    this.#indirect = opts.indirect;
    this.#eventIdx = opts.eventIdx;
    this.#maxChainBytes = maxChainBytes;
    this.#inflight = new Array<DescriptorChain | undefined>(size).fill(undefined);
  }

  /** Why the queue is unusable, or null while it works. */
  get error(): string | null {
    return this.#dead;
  }

  /** The ring indices as the device sees them: for the inspector. avail_idx is read from the driver's ring. */
  get indices(): { availIdx: number; lastAvail: number; usedIdx: number } {
    return { availIdx: u16(this.#memory.u8, this.#layout.driver + 2), lastAvail: this.#lastAvail, usedIdx: this.#usedIdx };
  }

  /** Number of chains popped and not yet pushed. */
  get inflight(): number {
    return this.#inflightCount;
  }

  /** The device's indices and the heads in flight, for a snapshot. */
  save(): SplitQueueState {
    const inflight: number[] = [];
    this.#inflight.forEach((c, head) => c && inflight.push(head));
    return { lastAvail: this.#lastAvail, usedIdx: this.#usedIdx, signalledUsed: this.#signalledUsed, pushedSinceSignal: this.#pushedSinceSignal, inflight };
  }

  /**
   * Takes a saved state into a queue just built over the same layout in the restored guest memory, and
   * returns the chains that were in flight, walked again from the ring: the device serves them again.
   * VirtqueueError when the state does not fit this queue or a chain no longer walks.
   */
  restore(state: SplitQueueState): DescriptorChain[] {
    this.#assertUsable();
    if (this.#inflightCount !== 0 || this.#lastAvail !== 0 || this.#usedIdx !== 0) throw new VirtqueueError("restore into a queue already in use");
    const index = (v: number, what: string): number => {
      if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw new VirtqueueError(`saved ${what} ${v} is not a ring index`);
      return v;
    };
    const heads = state.inflight;
    if (!Array.isArray(heads) || heads.length > this.size || new Set(heads).size !== heads.length) throw new VirtqueueError("saved chains in flight are not distinct heads");
    for (const head of heads) if (!Number.isInteger(head) || head < 0 || head >= this.size) throw new VirtqueueError(`saved head ${head} is outside the queue`);
    if (!Number.isSafeInteger(state.pushedSinceSignal) || state.pushedSinceSignal < 0) throw new VirtqueueError("saved push count is invalid");
    const chains = heads.map((head) => {
      const [readable, writable, descriptors] = this.#walk(head);
      const chain: DescriptorChain = new DescriptorChain(head, this.#memory, readable, writable, () => this.#assertOwned(chain), descriptors);
      return chain;
    });
    this.#lastAvail = index(state.lastAvail, "last_avail_idx");
    this.#usedIdx = index(state.usedIdx, "used idx");
    this.#signalledUsed = index(state.signalledUsed, "signalled used idx");
    this.#pushedSinceSignal = state.pushedSinceSignal;
    for (const chain of chains) this.#inflight[chain.head] = chain;
    this.#inflightCount = chains.length;
    return chains;
  }

  /**
   * Stops the queue (device reset, or the transport gave up on it): in-flight chains lose access to their
   * buffers, which the driver is about to reclaim, and every later call throws VirtqueueError.
   */
  close(reason = "queue was reset"): void {
    this.#dead ??= reason;
  }

  /**
   * The next available chain, fully validated, or null when the driver has published nothing new.
   * Throws VirtqueueError on a malformed ring or chain (see the class comment for the state afterwards).
   */
  pop(): DescriptorChain | null {
    this.#assertUsable();
    const u8 = this.#memory.u8;
    const { size, driver } = this.#layout;
    const pending = (u16(u8, driver + 2) - this.#lastAvail) & 0xffff;
    if (pending === 0) return null;
    if (pending > size) return this.#fail(`avail idx is ${pending} entries ahead of the device, more than queue size ${size}`);
    const head = u16(u8, driver + 4 + 2 * (this.#lastAvail & (size - 1)));
    if (head >= size) return this.#fail(`head index ${head} >= queue size ${size}`);
    if (this.#inflight[head]) return this.#fail(`head ${head} is already in use by the device`);
    const [readable, writable, descriptors] = this.#walk(head);
    const chain: DescriptorChain = new DescriptorChain(head, this.#memory, readable, writable, () => this.#assertOwned(chain), descriptors);
    this.#inflight[head] = chain;
    this.#inflightCount++;
    this.#lastAvail = (this.#lastAvail + 1) & 0xffff;
    return chain;
  }

  /**
   * Returns a chain to the driver: writes the used element {id: head, len}, then publishes used->idx.
   * len defaults to the bytes the chain's writer wrote (the spec requires len <= bytes actually written).
   * Completions may be in any order.
   */
  push(chain: DescriptorChain, len = chain.writer.written): void {
    this.#assertUsable();
    if (this.#inflight[chain.head] !== chain) throw new Error(`chain ${chain.head} is not in flight on this queue`);
    if (!Number.isSafeInteger(len) || len < 0 || len > chain.writer.written) {
      throw new RangeError(`used length ${len} is not within the ${chain.writer.written} bytes written`);
    }
    this.#inflight[chain.head] = undefined;
    this.#inflightCount--;
    const { size, device } = this.#layout;
    const s = this.#elem;
    const id = chain.head;
    s[0] = id; s[1] = id >>> 8; s[2] = 0; s[3] = 0;
    s[4] = len; s[5] = len >>> 8; s[6] = len >>> 16; s[7] = len >>> 24;
    this.#memory.write(device + 4 + 8 * (this.#usedIdx & (size - 1)), s);
    // The element is in RAM before the index that makes it visible (there is no reordering to fence in JS).
    this.#usedIdx = (this.#usedIdx + 1) & 0xffff;
    this.#write16(device + 2, this.#usedIdx);
    this.#pushedSinceSignal++;
  }

  /**
   * Whether the pushes since the previous call warrant a used buffer notification (interrupt). Call once
   * after a batch of pushes. Without EVENT_IDX: unless the driver set VIRTQ_AVAIL_F_NO_INTERRUPT. With
   * EVENT_IDX: when the batch moved used->idx past used_event (vring_need_event).
   */
  needsInterrupt(): boolean {
    this.#assertUsable();
    const old = this.#signalledUsed;
    const pushed = this.#pushedSinceSignal;
    this.#signalledUsed = this.#usedIdx;
    this.#pushedSinceSignal = 0;
    if (pushed === 0) return false;
    const needed = this.#needsInterrupt(old, pushed);
    this.#interrupts[needed ? "sent" : "suppressed"]++;
    return needed;
  }

  #needsInterrupt(old: number, pushed: number): boolean {
    const { size, driver } = this.#layout;
    const u8 = this.#memory.u8;
    // Reserved flag bits carry no meaning, so test only the defined one.
    if (!this.#eventIdx) return (u16(u8, driver) & VIRTQ_AVAIL_F_NO_INTERRUPT) === 0;
    if (pushed >= 0x10000) return true;
    const usedEvent = u16(u8, driver + 4 + 2 * size);
    return ((this.#usedIdx - usedEvent - 1) & 0xffff) < ((this.#usedIdx - old) & 0xffff);
  }

  /**
   * The ring as it stands, with its newest `entries` avail and used entries, for the inspector. Reads only
   * the areas checked at construction and descriptor table entries; never fails, even on a broken queue.
   */
  snapshot(entries: number): RingSnapshot {
    const u8 = this.#memory.u8;
    const { size, desc, driver, device } = this.#layout;
    const availIdx = u16(u8, driver + 2);
    const usedIdx = u16(u8, device + 2);
    const count = (idx: number): number => Math.min(entries, idx, size);
    const avail = Array.from({ length: count(availIdx) }, (_, k) => {
      const idx = (availIdx - count(availIdx) + k) & 0xffff;
      return { idx, head: u16(u8, driver + 4 + 2 * (idx & (size - 1))) };
    });
    const used = Array.from({ length: count(usedIdx) }, (_, k) => {
      const idx = (usedIdx - count(usedIdx) + k) & 0xffff;
      const at = device + 4 + 8 * (idx & (size - 1));
      return { idx, id: u32(u8, at), len: u32(u8, at + 4) };
    });
    // The chains the avail entries name, through the table (NEXT bounded by the queue size, as the walk is).
    const seen = new Set<number>();
    const descriptors: RingSnapshot["descriptors"] = [];
    for (const { head } of avail) {
      for (let i = head, n = 0; i < size && !seen.has(i) && n < size; n++) {
        seen.add(i);
        const at = desc + DESC_SIZE * i;
        const flags = u16(u8, at + 12);
        const next = u16(u8, at + 14);
        descriptors.push({ index: i, addr: u32(u8, at), len: u32(u8, at + 8), flags, next });
        if (!(flags & VIRTQ_DESC_F_NEXT)) break;
        i = next;
      }
    }
    const inflight: number[] = [];
    this.#inflight.forEach((c, head) => c && inflight.push(head));
    return {
      size,
      eventIdx: this.#eventIdx,
      desc,
      driver,
      device,
      availFlags: u16(u8, driver),
      availIdx,
      lastAvail: this.#lastAvail,
      usedEvent: u16(u8, driver + 4 + 2 * size),
      avail,
      usedFlags: u16(u8, device),
      usedIdx,
      availEvent: u16(u8, device + 4 + 8 * size),
      used,
      inflight,
      descriptors: descriptors.sort((a, b) => a.index - b.index),
      interrupts: { ...this.#interrupts },
    };
  }

  /**
   * Asks the driver not to kick while the device is draining the ring anyway. Without EVENT_IDX this sets
   * VIRTQ_USED_F_NO_NOTIFY. With EVENT_IDX nothing is written: avail_event stays where enableNotifications()
   * left it, so the driver kicks at most once more (when it crosses that index) until it is re-enabled.
   */
  disableNotifications(): void {
    this.#assertUsable();
    if (!this.#eventIdx) this.#write16(this.#layout.device, VIRTQ_USED_F_NO_NOTIFY);
  }

  /**
   * Asks for a kick on the next buffer the driver makes available, before the device goes idle: clears
   * VIRTQ_USED_F_NO_NOTIFY, or with EVENT_IDX sets avail_event to last_avail_idx. Then re-reads avail->idx
   * and returns true if chains were published meanwhile: the caller must keep popping instead of waiting,
   * since the driver may have checked the suppression before it was lifted (the lost-wakeup race).
   * Typical loop: `do { q.disableNotifications(); while ((c = q.pop())) handle(c); } while (q.enableNotifications());`
   */
  enableNotifications(): boolean {
    this.#assertUsable();
    const { size, driver, device } = this.#layout;
    if (this.#eventIdx) this.#write16(device + 4 + 8 * size, this.#lastAvail);
    else this.#write16(device, 0);
    return u16(this.#memory.u8, driver + 2) !== this.#lastAvail;
  }

  /** Follows the chain from head, validating every descriptor; returns [readable, writable] segments and the descriptors. */
  #walk(head: number): [Segments, Segments, ChainDescriptor[]] {
    const u8 = this.#memory.u8;
    const ramSize = this.#memory.size;
    const { size } = this.#layout;
    const readable: Segments = { addr: [], len: [], total: 0 };
    const writable: Segments = { addr: [], len: [], total: 0 };
    const descriptors: ChainDescriptor[] = [];
    let table = this.#layout.desc;
    let tableLen = size;
    let indirect = false;
    let index = head;
    // Buffer descriptors seen, direct or indirect. The descriptor that points at an indirect table is not a
    // buffer and is not counted, so an indirect table of exactly `size` entries (which Linux may build) passes.
    // The walk still ends: nesting is rejected, so there is at most one such uncounted step.
    let count = 0;
    let sawWritable = false;
    for (;;) {
      const at = table + DESC_SIZE * index;
      const addrLo = u32(u8, at);
      const addrHi = u32(u8, at + 4);
      const len = u32(u8, at + 8);
      const flags = u16(u8, at + 12);
      const next = u16(u8, at + 14);
      const where = indirect ? `indirect descriptor ${index}` : `descriptor ${index}`;
      // A 32-bit guest has no RAM at or above 4 GiB; addrLo + len is exact in a double, so no wraparound.
      const inRam = addrHi === 0 && addrLo + len <= ramSize;
      descriptors.push({ index, addr: addrLo, len, flags, indirect });

      if (flags & VIRTQ_DESC_F_INDIRECT) {
        if (!this.#indirect) return this.#fail(`${where}: INDIRECT without VIRTIO_F_INDIRECT_DESC`);
        if (indirect) return this.#fail(`${where}: INDIRECT inside an indirect table`);
        if (flags & VIRTQ_DESC_F_NEXT) return this.#fail(`${where}: INDIRECT together with NEXT`);
        if (len === 0 || len % DESC_SIZE !== 0) return this.#fail(`${where}: indirect table length ${len} is not a non-zero multiple of 16`);
        if (!inRam) return this.#fail(`${where}: indirect table outside guest RAM`);
        // The WRITE flag of a descriptor that points at a table is ignored, as the spec requires.
        table = addrLo;
        tableLen = len / DESC_SIZE;
        indirect = true;
        index = 0;
        continue;
      }

      if (++count > size) return this.#fail(`chain longer than queue size ${size} (a loop?)`);
      const isWrite = (flags & VIRTQ_DESC_F_WRITE) !== 0;
      if (!isWrite && sawWritable) return this.#fail(`${where}: device-readable after device-writable`);
      sawWritable ||= isWrite;
      // Zero-length buffers are legal and carry nothing; their address is never used, so not checked.
      if (len > 0) {
        if (!inRam) return this.#fail(`${where}: buffer [${addrHi * 2 ** 32 + addrLo}, +${len}) outside guest RAM`);
        const segs = isWrite ? writable : readable;
        segs.total += len;
        if (segs.total > this.#maxChainBytes) {
          return this.#fail(`chain has more than ${this.#maxChainBytes} ${isWrite ? "writable" : "readable"} bytes`);
        }
        segs.addr.push(addrLo);
        segs.len.push(len);
      }
      if (!(flags & VIRTQ_DESC_F_NEXT)) return [readable, writable, descriptors];
      if (next >= tableLen) return this.#fail(`${where}: next index ${next} >= ${indirect ? "table length" : "queue size"} ${tableLen}`);
      index = next;
    }
  }

  #write16(addr: number, value: number): void {
    const s = this.#field;
    s[0] = value;
    s[1] = value >>> 8;
    this.#memory.write(addr, s);
  }

  #fail(message: string): never {
    this.#dead = message;
    throw new VirtqueueError(message);
  }

  #assertUsable(): void {
    if (this.#dead !== null) throw new VirtqueueError(`queue is unusable: ${this.#dead}`);
  }

  #assertOwned(chain: DescriptorChain): void {
    this.#assertUsable();
    if (this.#inflight[chain.head] !== chain) throw new Error(`chain ${chain.head} was already returned to the driver`);
  }
}
