// The DAX window (virtio-fs shared memory region 0): guest-visible memory behind a PCI memory BAR, kept in
// a SharedArrayBuffer. The window records what each 4 KiB page shows (an opaque owner, a file offset,
// whether the guest may store to it) and which pages the guest has stored to since they were last written
// back. It knows nothing of FUSE: src/fuse/dax.ts decides what to map and moves the bytes.
import type { RegisterRegion } from "./bus.ts";

export const DAX_PAGE_SHIFT = 12;
export const DAX_PAGE_SIZE = 1 << DAX_PAGE_SHIFT;
/** v86 serves memory BARs in 128 KiB blocks (MMAP_BLOCK_SIZE): a window is a whole number of them. */
export const DAX_WINDOW_MIN_SIZE = 128 * 1024;

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
  /** Guest stores land (and dirty the page); on a read-only extent they are dropped. */
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
  /** The window's bytes; a Worker (or the page) may read them too. */
  readonly memory: SharedArrayBuffer;
  /** Per page: DAX_PAGE_MAPPED | DAX_PAGE_WRITABLE. Shared, so the page's inspector can draw the window. */
  readonly pageState: Uint8Array;
  /** Per page: 1 once a guest store landed and until the page is written back. Shared, as pageState. */
  readonly dirty: Uint8Array;
  /** What the guest's loads and stores through the BAR reach. */
  readonly region: RegisterRegion;
  private readonly u8: Uint8Array;
  /** Per page: the first page of the extent covering it, or -1. */
  private readonly extentAt: Int32Array;
  /** Extents by first page. */
  private readonly byFirst = new Map<number, DaxExtent>();
  /** Each owner's extents, by first page. */
  private readonly byOwner = new Map<number, Set<number>>();

  constructor(size: number) {
    // A BAR is a power of two; v86 maps 128 KiB blocks; a 32-bit BAR stays below 4 GiB.
    if (!isPow2(size) || size < DAX_WINDOW_MIN_SIZE || size > 2 ** 31) {
      throw new RangeError(`DAX window size ${size}: a power of two from ${DAX_WINDOW_MIN_SIZE} to 2 GiB`);
    }
    this.size = size;
    this.pages = size / DAX_PAGE_SIZE;
    this.memory = new SharedArrayBuffer(size);
    this.u8 = new Uint8Array(this.memory);
    this.pageState = new Uint8Array(new SharedArrayBuffer(this.pages));
    this.dirty = new Uint8Array(new SharedArrayBuffer(this.pages));
    this.extentAt = new Int32Array(this.pages).fill(-1);
    this.region = mmio(this.u8, this.pageState, this.dirty);
  }

  /**
   * Maps [offset, offset + length) to `owner`'s data from `fileOffset`, as mmap(MAP_FIXED): whatever was
   * mapped there is replaced, and its dirty bits go. The caller writes replaced dirty pages back first and
   * fills the bytes afterwards; the bytes are left as they are.
   */
  map(offset: number, length: number, owner: number, fileOffset: number, writable: boolean): void {
    this.checkSpan(offset, length);
    if (!Number.isSafeInteger(owner) || owner <= 0) throw new RangeError(`bad owner ${owner}`);
    if (!Number.isSafeInteger(fileOffset) || fileOffset < 0 || fileOffset & PAGE_MASK) throw new RangeError(`bad file offset ${fileOffset}`);
    this.cut(offset, length);
    this.insert({ offset, length, owner, fileOffset, writable });
    this.dirty.fill(0, offset / DAX_PAGE_SIZE, (offset + length) / DAX_PAGE_SIZE);
  }

  /** Unmaps [offset, offset + length): its pages read as zeros and forget their dirty bits. */
  unmap(offset: number, length: number): void {
    this.checkSpan(offset, length);
    this.cut(offset, length);
    this.dirty.fill(0, offset / DAX_PAGE_SIZE, (offset + length) / DAX_PAGE_SIZE);
    this.u8.fill(0, offset, offset + length);
  }

  /** Unmaps every extent of `owner`. */
  unmapOwner(owner: number): void {
    for (const e of this.extentsOf(owner)) this.unmap(e.offset, e.length);
  }

  /**
   * Makes the mapped pages of [offset, offset + length) writable or read-only, keeping their bytes, owners
   * and dirty bits (a mapping upgraded to writable; pages about to be written back and replaced).
   */
  protect(offset: number, length: number, writable: boolean): void {
    this.checkSpan(offset, length);
    const end = offset + length;
    for (const e of this.extentsIn(offset, length)) {
      if (e.writable === writable) continue;
      const lo = Math.max(e.offset, offset);
      const hi = Math.min(e.offset + e.length, end);
      this.cut(lo, hi - lo);
      this.insert({ ...e, offset: lo, length: hi - lo, fileOffset: e.fileOffset + (lo - e.offset), writable });
    }
  }

  /** Copies `data` into the window at `offset` (no dirty bits: this is the backend's data, not the guest's). */
  write(offset: number, data: Uint8Array): void {
    this.checkBytes(offset, data.length);
    this.u8.set(data, offset);
  }

  zero(offset: number, length: number): void {
    this.checkBytes(offset, length);
    this.u8.fill(0, offset, offset + length);
  }

  /** A copy of [offset, offset + length). */
  read(offset: number, length: number): Uint8Array {
    this.checkBytes(offset, length);
    return this.u8.slice(offset, offset + length);
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
    const end = (offset + length) / DAX_PAGE_SIZE;
    for (let p = offset / DAX_PAGE_SIZE; p < end; p++) {
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
    for (let p = offset / DAX_PAGE_SIZE, end = (offset + length) / DAX_PAGE_SIZE; p < end; p++) n += this.dirty[p]!;
    return n;
  }

  clearDirty(offset: number, length: number): void {
    this.checkSpan(offset, length);
    this.dirty.fill(0, offset / DAX_PAGE_SIZE, (offset + length) / DAX_PAGE_SIZE);
  }

  /** Marks pages dirty again (a write-back failed); only mapped pages can be dirty. */
  markDirty(offset: number, length: number): void {
    this.checkSpan(offset, length);
    for (let p = offset / DAX_PAGE_SIZE, end = (offset + length) / DAX_PAGE_SIZE; p < end; p++) {
      if (this.pageState[p]! & DAX_PAGE_MAPPED) this.dirty[p] = 1;
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

/**
 * The BAR's loads and stores, little-endian, any alignment: a store lands only on a writable page and dirties
 * it; a load sees the bytes (zeros where nothing is mapped). This runs for every guest access: no allocation.
 */
function mmio(u8: Uint8Array, state: Uint8Array, dirty: Uint8Array): RegisterRegion {
  const view = new DataView(u8.buffer);
  const size = u8.length;
  const storeByte = (at: number, v: number): void => {
    const p = at >>> DAX_PAGE_SHIFT;
    if (at < size && state[p]! & DAX_PAGE_WRITABLE) {
      u8[at] = v;
      dirty[p] = 1;
    }
  };
  return {
    read(offset, width) {
      if (offset >= 0 && offset + width <= size) {
        return width === 4 ? view.getUint32(offset, true) : width === 2 ? view.getUint16(offset, true) : u8[offset]!;
      }
      let v = 0;
      for (let i = width - 1; i >= 0; i--) v = (v << 8) | (offset + i >= 0 && offset + i < size ? u8[offset + i]! : 0);
      return v >>> 0;
    },
    write(offset, width, value) {
      if (offset < 0) return;
      if ((offset & PAGE_MASK) + width <= DAX_PAGE_SIZE) {
        // Inside one page (every aligned access): one check, one store.
        const p = offset >>> DAX_PAGE_SHIFT;
        if (!(state[p]! & DAX_PAGE_WRITABLE)) return;
        if (width === 4) view.setUint32(offset, value, true);
        else if (width === 2) view.setUint16(offset, value, true);
        else u8[offset] = value;
        dirty[p] = 1;
        return;
      }
      for (let i = 0; i < width; i++) storeByte(offset + i, (value >>> (8 * i)) & 0xff);
    },
  };
}
