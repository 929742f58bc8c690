// The DAX window (virtio-fs shared memory region 0): guest memory behind a PCI memory BAR that the guest
// loads from, stores to and runs code from at RAM speed; the device fills it in place. The window records
// what each 4 KiB page shows (an opaque owner, a file offset, whether the guest may store to it) and finds
// the pages the guest stored to by comparing them with a copy of what they held when last clean. It knows
// nothing of FUSE: src/fuse/dax.ts decides what to map and moves the bytes.
import type { MemoryRange } from "./bus.ts";

export const DAX_PAGE_SHIFT = 12;
export const DAX_PAGE_SIZE = 1 << DAX_PAGE_SHIFT;

/** Bits of `DaxWindow.pageState`, one byte per page. */
export const DAX_PAGE_MAPPED = 1;
export const DAX_PAGE_WRITABLE = 2;

/** A run of pages mapped by one map() call (or what a later map() left of it). */
export interface DaxExtent {
  /** Window offset and length in bytes, page-aligned. */
  readonly offset: number;
  readonly length: number;
  /** Whose pages these are: a positive integer the caller chose. */
  readonly owner: number;
  /** What `offset` shows: a byte offset in the owner's data, page-aligned. */
  readonly fileOffset: number;
  /** Guest stores are the file's (written back when they differ); on a read-only extent they are not. */
  readonly writable: boolean;
}

/** A window range in bytes. */
export interface DaxSpan {
  offset: number;
  length: number;
}

const PAGE_MASK = DAX_PAGE_SIZE - 1;
const isPow2 = (n: number): boolean => Number.isSafeInteger(n) && n > 0 && (n & (n - 1)) === 0;

export class DaxWindow {
  readonly size: number;
  readonly pages: number;
  /**
   * Per page: DAX_PAGE_MAPPED | DAX_PAGE_WRITABLE. In a SharedArrayBuffer where there is one, so a page's
   * inspector can read it live (a page that is not cross-origin isolated has none).
   */
  readonly pageState: Uint8Array;
  /**
   * Per page: 1 once the page was found changed, until it is written back. Found when asked (dirtyRuns,
   * dirtyPages), since guest stores do not pass through the device. Shared where it can be, as pageState.
   */
  readonly dirty: Uint8Array;
  private readonly backing: MemoryRange;
  /** Per page: 1 while the page's guest stores are to be written back: it has been writable since it was mapped. */
  private readonly tracked: Uint8Array;
  /** What tracked pages held when last clean. The OS commits its pages only as they are first written. */
  private readonly clean: Uint8Array;
  /** Per page: the first page of the extent covering it, or -1. */
  private readonly extentAt: Int32Array;
  /** Extents by first page. */
  private readonly byFirst = new Map<number, DaxExtent>();
  /** Each owner's extents, by first page. */
  private readonly byOwner = new Map<number, Set<number>>();

  /** `backing` is the guest memory behind the BAR; without one (tests, tools) the window has its own. */
  constructor(size: number, backing?: MemoryRange) {
    // A BAR is a power of two; a 32-bit BAR stays below 4 GiB.
    if (!isPow2(size) || size < DAX_PAGE_SIZE || size > 2 ** 31) {
      throw new RangeError(`DAX window size ${size}: a power of two from ${DAX_PAGE_SIZE} bytes to 2 GiB`);
    }
    this.size = size;
    this.pages = size / DAX_PAGE_SIZE;
    this.backing = backing ?? ownMemory(size);
    this.pageState = new Uint8Array(shareable(this.pages));
    this.dirty = new Uint8Array(shareable(this.pages));
    this.tracked = new Uint8Array(this.pages);
    this.clean = new Uint8Array(size);
    this.extentAt = new Int32Array(this.pages).fill(-1);
  }

  /** The window's bytes as the guest sees them (valid until the next await). */
  bytes(): Uint8Array {
    return this.backing.bytes();
  }

  /**
   * Maps [offset, offset + length) to `owner`'s data from `fileOffset`, as mmap(MAP_FIXED): whatever was
   * mapped there is replaced, and its dirty bits go. The caller writes replaced dirty pages back first and
   * fills the bytes afterwards; the bytes are left as they are (and count as clean).
   */
  map(offset: number, length: number, owner: number, fileOffset: number, writable: boolean): void {
    this.checkSpan(offset, length);
    if (!Number.isSafeInteger(owner) || owner <= 0) throw new RangeError(`bad owner ${owner}`);
    if (!Number.isSafeInteger(fileOffset) || fileOffset < 0 || fileOffset & PAGE_MASK) throw new RangeError(`bad file offset ${fileOffset}`);
    this.cut(offset, length);
    this.insert({ offset, length, owner, fileOffset, writable });
    const [first, end] = pageRange(offset, length);
    this.dirty.fill(0, first, end);
    this.tracked.fill(writable ? 1 : 0, first, end);
    if (writable) this.clean.set(this.bytes().subarray(offset, offset + length), offset);
  }

  /** Unmaps [offset, offset + length): its pages read as zeros and forget their dirty bits. */
  unmap(offset: number, length: number): void {
    this.checkSpan(offset, length);
    this.cut(offset, length);
    const [first, end] = pageRange(offset, length);
    this.dirty.fill(0, first, end);
    this.tracked.fill(0, first, end);
    this.zero(offset, length);
  }

  /** Unmaps every extent of `owner`. */
  unmapOwner(owner: number): void {
    for (const e of this.extentsOf(owner)) this.unmap(e.offset, e.length);
  }

  /**
   * Makes the mapped pages of [offset, offset + length) writable or read-only, keeping their bytes, owners
   * and dirty bits (a mapping upgraded to writable; pages about to be written back and replaced). The
   * guest's page tables, not the window, stop its stores: a page once writable keeps being written back.
   */
  protect(offset: number, length: number, writable: boolean): void {
    this.checkSpan(offset, length);
    const end = offset + length;
    const bytes = this.bytes();
    for (const e of this.extentsIn(offset, length)) {
      if (e.writable === writable) continue;
      const lo = Math.max(e.offset, offset);
      const hi = Math.min(e.offset + e.length, end);
      this.cut(lo, hi - lo);
      this.insert({ ...e, offset: lo, length: hi - lo, fileOffset: e.fileOffset + (lo - e.offset), writable });
      if (!writable) continue;
      const [first, last] = pageRange(lo, hi - lo);
      for (let p = first; p < last; p++) {
        if (this.tracked[p]) continue;
        this.tracked[p] = 1;
        const at = p * DAX_PAGE_SIZE;
        this.clean.set(bytes.subarray(at, at + DAX_PAGE_SIZE), at);
      }
    }
  }

  /** Copies `data` into the window at `offset` (no dirty bits: this is the backend's data, not the guest's). */
  write(offset: number, data: Uint8Array): void {
    this.checkBytes(offset, data.length);
    this.bytes().set(data, offset);
    this.keepClean(offset, data.length);
    this.backing.changed(offset, data.length);
  }

  /**
   * Lets `source` write the backend's bytes straight into [offset, offset + length) (no dirty bits, as
   * write); what it leaves after the count it returns reads as zeros.
   */
  async writeFrom(offset: number, length: number, source: (into: Uint8Array) => number | Promise<number>): Promise<void> {
    this.checkBytes(offset, length);
    const n = await source(this.bytes().subarray(offset, offset + length));
    if (!(n >= 0 && n <= length)) throw new RangeError(`writeFrom: ${n} of ${length} bytes`);
    zeroBytes(this.bytes(), offset + n, offset + length);
    this.keepClean(offset, length);
    this.backing.changed(offset, length);
  }

  zero(offset: number, length: number): void {
    this.checkBytes(offset, length);
    zeroBytes(this.bytes(), offset, offset + length);
    this.keepClean(offset, length);
    this.backing.changed(offset, length);
  }

  /** A copy of [offset, offset + length). */
  read(offset: number, length: number): Uint8Array {
    this.checkBytes(offset, length);
    const copy = new Uint8Array(length);
    copy.set(this.bytes().subarray(offset, offset + length)); // not slice(): see zeroBytes
    return copy;
  }

  /** Extents overlapping [offset, offset + length), whole, in window order. */
  extentsIn(offset: number, length: number): DaxExtent[] {
    this.checkSpan(offset, length);
    const out: DaxExtent[] = [];
    const end = (offset + length) / DAX_PAGE_SIZE;
    for (let p = offset / DAX_PAGE_SIZE; p < end; ) {
      const first = this.extentAt[p]!;
      if (first < 0) {
        p++;
        continue;
      }
      const e = this.byFirst.get(first)!;
      out.push(e);
      p = (e.offset + e.length) / DAX_PAGE_SIZE;
    }
    return out;
  }

  /** Every extent, in window order. */
  extents(): DaxExtent[] {
    return [...this.byFirst.values()].sort((a, b) => a.offset - b.offset);
  }

  extentsOf(owner: number): DaxExtent[] {
    return [...(this.byOwner.get(owner) ?? [])].map((first) => this.byFirst.get(first)!);
  }

  /** How many owners have pages mapped. */
  get ownerCount(): number {
    return this.byOwner.size;
  }

  hasOwner(owner: number): boolean {
    return this.byOwner.has(owner);
  }

  owners(): number[] {
    return [...this.byOwner.keys()];
  }

  ownersIn(offset: number, length: number): number[] {
    return [...new Set(this.extentsIn(offset, length).map((e) => e.owner))];
  }

  /** Maximal runs of dirty pages inside [offset, offset + length). */
  dirtyRuns(offset: number, length: number): DaxSpan[] {
    this.checkSpan(offset, length);
    const runs: DaxSpan[] = [];
    const [first, end] = this.findDirty(offset, length);
    for (let p = first; p < end; p++) {
      if (!this.dirty[p]) continue;
      const start = p;
      while (p + 1 < end && this.dirty[p + 1]) p++;
      runs.push({ offset: start * DAX_PAGE_SIZE, length: (p + 1 - start) * DAX_PAGE_SIZE });
    }
    return runs;
  }

  /** Dirty pages in [offset, offset + length) (default: the whole window). */
  dirtyPages(offset = 0, length = this.size): number {
    this.checkSpan(offset, length);
    let n = 0;
    const [first, end] = this.findDirty(offset, length);
    for (let p = first; p < end; p++) n += this.dirty[p]!;
    return n;
  }

  /** The range's bytes as they are now are what its files hold: later stores make pages dirty again. */
  clearDirty(offset: number, length: number): void {
    this.checkSpan(offset, length);
    const [first, end] = pageRange(offset, length);
    this.dirty.fill(0, first, end);
    const bytes = this.bytes();
    for (let p = first; p < end; p++) {
      if (!this.tracked[p]) continue;
      const at = p * DAX_PAGE_SIZE;
      this.clean.set(bytes.subarray(at, at + DAX_PAGE_SIZE), at);
    }
  }

  /** Marks pages dirty again (a write-back failed); only mapped pages can be dirty. */
  markDirty(offset: number, length: number): void {
    this.checkSpan(offset, length);
    for (let p = offset / DAX_PAGE_SIZE, end = (offset + length) / DAX_PAGE_SIZE; p < end; p++) {
      if (this.pageState[p]! & DAX_PAGE_MAPPED) this.dirty[p] = 1;
    }
  }

  /**
   * Sets the dirty bit of every tracked page in the range whose bytes differ from its clean copy; returns
   * the range as pages. A word compare: ~1 ms per 4 MiB of tracked pages.
   */
  private findDirty(offset: number, length: number): [number, number] {
    const [first, end] = pageRange(offset, length);
    const bytes = this.bytes();
    const aligned = bytes.byteOffset % 4 === 0;
    const now = aligned ? new Int32Array(bytes.buffer, bytes.byteOffset, this.size / 4) : bytes;
    const was = aligned ? new Int32Array(this.clean.buffer) : this.clean;
    const perPage = DAX_PAGE_SIZE / (aligned ? 4 : 1);
    for (let p = first; p < end; p++) {
      if (this.dirty[p] || !this.tracked[p]) continue;
      for (let i = p * perPage, stop = i + perPage; i < stop; i++) {
        if (now[i] !== was[i]) {
          this.dirty[p] = 1;
          break;
        }
      }
    }
    return [first, end];
  }

  /**
   * The device changed [offset, offset + length): the clean copies of its tracked pages follow. Only
   * tracked pages have one, so filling a read-only mapping copies once and commits no memory for `clean`.
   */
  private keepClean(offset: number, length: number): void {
    const bytes = this.bytes();
    const end = offset + length;
    for (let p = Math.floor(offset / DAX_PAGE_SIZE), last = Math.ceil(end / DAX_PAGE_SIZE); p < last; p++) {
      if (!this.tracked[p]) continue;
      const first = p;
      while (p + 1 < last && this.tracked[p + 1]) p++;
      const lo = Math.max(offset, first * DAX_PAGE_SIZE);
      const hi = Math.min(end, (p + 1) * DAX_PAGE_SIZE);
      this.clean.set(bytes.subarray(lo, hi), lo);
    }
  }

  /** Removes the extents' table entries over [offset, offset + length), keeping what lies outside it. */
  private cut(offset: number, length: number): void {
    const end = offset + length;
    for (const e of this.extentsIn(offset, length)) {
      this.remove(e);
      const eEnd = e.offset + e.length;
      if (e.offset < offset) this.insert({ ...e, length: offset - e.offset });
      if (eEnd > end) this.insert({ ...e, offset: end, length: eEnd - end, fileOffset: e.fileOffset + (end - e.offset) });
    }
  }

  private insert(e: DaxExtent): void {
    const first = e.offset / DAX_PAGE_SIZE;
    const end = (e.offset + e.length) / DAX_PAGE_SIZE;
    this.byFirst.set(first, e);
    let owned = this.byOwner.get(e.owner);
    if (!owned) this.byOwner.set(e.owner, (owned = new Set()));
    owned.add(first);
    this.extentAt.fill(first, first, end);
    this.pageState.fill(DAX_PAGE_MAPPED | (e.writable ? DAX_PAGE_WRITABLE : 0), first, end);
  }

  private remove(e: DaxExtent): void {
    const first = e.offset / DAX_PAGE_SIZE;
    const end = (e.offset + e.length) / DAX_PAGE_SIZE;
    this.byFirst.delete(first);
    const owned = this.byOwner.get(e.owner)!;
    owned.delete(first);
    if (owned.size === 0) this.byOwner.delete(e.owner);
    this.extentAt.fill(-1, first, end);
    this.pageState.fill(0, first, end);
  }

  private checkSpan(offset: number, length: number): void {
    this.checkBytes(offset, length);
    if ((offset | length) & PAGE_MASK) throw new RangeError(`window range ${offset}+${length} is not page-aligned`);
  }

  private checkBytes(offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new RangeError(`window range ${offset}+${length} outside ${this.size} bytes`);
    }
  }
}

const shareable = (bytes: number): ArrayBufferLike => (typeof SharedArrayBuffer === "undefined" ? new ArrayBuffer(bytes) : new SharedArrayBuffer(bytes));

/**
 * Guest memory is a SharedArrayBuffer (v86's shared wasm memory, or the window's own), and V8 fills and
 * slices shared memory byte by byte, about ten times slower than it copies with set() (2 MiB: 0.63 ms
 * against 0.06 ms for fill, 1.1 ms against 0.1 ms for slice): zeros are copied in from a zero block.
 */
const ZEROS = new Uint8Array(64 << 10);
function zeroBytes(bytes: Uint8Array, from: number, to: number): void {
  for (let at = from; at < to; at += ZEROS.length) bytes.set(ZEROS.subarray(0, Math.min(ZEROS.length, to - at)), at);
}

const pageRange = (offset: number, length: number): [number, number] => [offset / DAX_PAGE_SIZE, (offset + length) / DAX_PAGE_SIZE];

/** A window with memory of its own, for tests and tools. */
function ownMemory(size: number): MemoryRange {
  const bytes = new Uint8Array(shareable(size));
  return { bytes: () => bytes, changed: () => {} };
}
