// The driver side of a split virtqueue over FakeMemory, modelled on Linux's virtio_ring.c, plus raw accessors
// for crafting hostile rings by hand. Kick-less: tests call the device directly.

import type { SplitQueueLayout } from "../../device/virtqueue.ts";
import { VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, VIRTQ_USED_F_NO_NOTIFY } from "../../device/virtqueue.ts";
import type { FakeMemory, Range } from "./fake-memory.ts";

export interface RawDesc {
  addr: number;
  /** High 32 bits of the 64-bit address. */
  addrHi?: number;
  len: number;
  flags?: number;
  next?: number;
}

export interface UsedElem {
  id: number;
  len: number;
  /** The first min(len, writable) bytes of the request's writable buffers, in order. */
  data: Uint8Array;
}

interface Request {
  descs: number[];
  writable: Range[];
}

function vringNeedEvent(event: number, newIdx: number, oldIdx: number): boolean {
  return ((newIdx - event - 1) & 0xffff) < ((newIdx - oldIdx) & 0xffff);
}

export class DriverQueue {
  readonly layout: SplitQueueLayout;
  #free: number[];
  readonly #requests = new Map<number, Request>();
  readonly #heap: Range;
  #heapTop: number;
  #availIdx = 0;
  #lastUsed = 0;
  #kickedAvail = 0;

  /** heap: the RAM the bump allocator hands out; it rewinds whenever no request is outstanding. */
  constructor(
    readonly mem: FakeMemory,
    layout: SplitQueueLayout,
    heap: Range,
    private readonly eventIdx = false,
  ) {
    this.layout = layout;
    this.#heap = heap;
    this.#heapTop = heap.addr;
    this.#free = Array.from({ length: layout.size }, (_, i) => i);
    // Linux allocates the rings zeroed.
    mem.poke(layout.desc, new Uint8Array(16 * layout.size));
    mem.poke(layout.driver, new Uint8Array(6 + 2 * layout.size));
    mem.poke(layout.device, new Uint8Array(6 + 8 * layout.size));
  }

  /** Makes a request available; returns its head descriptor index. */
  add(readable: Uint8Array[], writableLens: number[], opts: { indirect?: boolean } = {}): number {
    const n = readable.length + writableLens.length;
    if (n === 0) throw new Error("empty request");
    const bufs: RawDesc[] = [];
    const writable: Range[] = [];
    for (const data of readable) {
      const addr = this.alloc(data.length);
      this.mem.poke(addr, data);
      bufs.push({ addr, len: data.length, flags: 0 });
    }
    for (const len of writableLens) {
      const addr = this.alloc(len);
      bufs.push({ addr, len, flags: VIRTQ_DESC_F_WRITE });
      writable.push({ addr, len });
    }
    let descs: number[];
    if (opts.indirect) {
      const table = this.alloc(16 * n, 16);
      bufs.forEach((d, i) => this.writeDesc(i, { ...d, flags: d.flags! | (i < n - 1 ? VIRTQ_DESC_F_NEXT : 0), next: i + 1 }, table));
      descs = this.#take(1);
      this.writeDesc(descs[0]!, { addr: table, len: 16 * n, flags: VIRTQ_DESC_F_INDIRECT });
    } else {
      descs = this.#take(n);
      bufs.forEach((d, i) => {
        const last = i === n - 1;
        this.writeDesc(descs[i]!, { ...d, flags: d.flags! | (last ? 0 : VIRTQ_DESC_F_NEXT), next: last ? 0 : descs[i + 1]! });
      });
    }
    const head = descs[0]!;
    this.#requests.set(head, { descs, writable });
    this.publish(head);
    return head;
  }

  /** New used elements since the last call; their descriptors go back to the free list. */
  getUsed(): UsedElem[] {
    const out: UsedElem[] = [];
    const usedIdx = this.usedIdx();
    for (; this.#lastUsed !== usedIdx; this.#lastUsed = (this.#lastUsed + 1) & 0xffff) {
      const at = this.layout.device + 4 + 8 * (this.#lastUsed & (this.layout.size - 1));
      const id = this.#u32(at);
      const len = this.#u32(at + 4);
      const req = this.#requests.get(id);
      if (!req) throw new Error(`device returned unknown id ${id}`);
      this.#requests.delete(id);
      this.#free.push(...req.descs);
      out.push({ id, len, data: this.#gather(req.writable, len) });
    }
    if (this.#requests.size === 0) this.#heapTop = this.#heap.addr;
    return out;
  }

  /** Whether a real driver would kick now (virtqueue_kick_prepare): avail_event or VIRTQ_USED_F_NO_NOTIFY. */
  kickNeeded(): boolean {
    const old = this.#kickedAvail;
    this.#kickedAvail = this.#availIdx;
    if (this.eventIdx) return vringNeedEvent(this.availEvent(), this.#availIdx, old);
    return (this.usedFlags() & VIRTQ_USED_F_NO_NOTIFY) === 0;
  }

  /** Where the device may legitimately write now: the used ring and every outstanding writable buffer. */
  deviceWritable(): Range[] {
    const used = { addr: this.layout.device, len: 6 + 8 * this.layout.size };
    return [used, ...[...this.#requests.values()].flatMap((r) => r.writable)];
  }

  // Raw access, for crafting hostile rings.

  alloc(len: number, align = 1): number {
    const addr = Math.ceil(this.#heapTop / align) * align;
    if (addr + len > this.#heap.addr + this.#heap.len) throw new Error("test heap exhausted");
    this.#heapTop = addr + len;
    return addr;
  }

  writeDesc(index: number, d: RawDesc, table = this.layout.desc): void {
    const bytes = new Uint8Array(16);
    const v = new DataView(bytes.buffer);
    v.setUint32(0, d.addr >>> 0, true);
    v.setUint32(4, (d.addrHi ?? 0) >>> 0, true);
    v.setUint32(8, d.len >>> 0, true);
    v.setUint16(12, d.flags ?? 0, true);
    v.setUint16(14, d.next ?? 0, true);
    this.mem.poke(table + 16 * index, bytes);
  }

  /** Puts head in the next avail slot and publishes it (avail->idx++). */
  publish(head: number): void {
    this.#set16(this.layout.driver + 4 + 2 * (this.#availIdx & (this.layout.size - 1)), head);
    this.setAvailIdx(this.#availIdx + 1);
  }

  setAvailIdx(idx: number): void {
    this.#availIdx = idx & 0xffff;
    this.#set16(this.layout.driver + 2, this.#availIdx);
  }

  get availIdx(): number {
    return this.#availIdx;
  }

  setAvailFlags(flags: number): void {
    this.#set16(this.layout.driver, flags);
  }

  setUsedEvent(idx: number): void {
    this.#set16(this.layout.driver + 4 + 2 * this.layout.size, idx & 0xffff);
  }

  usedIdx(): number {
    return this.#u16(this.layout.device + 2);
  }

  usedFlags(): number {
    return this.#u16(this.layout.device);
  }

  availEvent(): number {
    return this.#u16(this.layout.device + 4 + 8 * this.layout.size);
  }

  #take(n: number): number[] {
    if (this.#free.length < n) throw new Error(`need ${n} descriptors, ${this.#free.length} free`);
    return this.#free.splice(0, n);
  }

  #gather(ranges: Range[], len: number): Uint8Array {
    const out: number[] = [];
    for (const r of ranges) {
      for (let i = 0; i < r.len && out.length < len; i++) out.push(this.mem.u8[r.addr + i]!);
    }
    return Uint8Array.from(out);
  }

  #u16(at: number): number {
    return this.mem.u8[at]! | (this.mem.u8[at + 1]! << 8);
  }

  #u32(at: number): number {
    return (this.#u16(at) | (this.#u16(at + 2) << 16)) >>> 0;
  }

  #set16(at: number, v: number): void {
    this.mem.poke(at, Uint8Array.of(v & 0xff, (v >>> 8) & 0xff));
  }
}
