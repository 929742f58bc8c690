// What the FUSE side needs of a DAX window, declared here so src/fuse depends on no device: the
// device's DaxWindow (device/dax-window.ts) has this shape, and a unit test checks that it still does.

/** The guest's page size (x86 Linux PAGE_SHIFT): FUSE_MAP_ALIGNMENT, max_pages and every mapping count in it. */
export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;

/** A window range in bytes. */
export interface WindowSpan {
  offset: number;
  length: number;
}

/** A run of pages showing one owner's data from one offset. */
export interface WindowExtent {
  /** Window offset and length in bytes, page-aligned. */
  readonly offset: number;
  readonly length: number;
  /** Whose pages these are: a positive integer (the server uses the backend inode number). */
  readonly owner: number;
  /** What `offset` shows: a byte offset in the owner's data, page-aligned. */
  readonly fileOffset: number;
  /** Guest stores land (and dirty the page); on a read-only extent they are dropped. */
  readonly writable: boolean;
}

/**
 * Guest-visible memory with a page table: which owner's bytes each page shows, whether the guest may
 * store to it, and which pages it stored to since they were last cleaned. Ranges given to the page-table
 * methods are page-aligned; byte access (read, write, zero) is not.
 */
export interface FuseDaxWindow {
  readonly size: number;
  /** Replaces whatever [offset, offset + length) showed (bytes untouched, dirty bits cleared). */
  map(offset: number, length: number, owner: number, fileOffset: number, writable: boolean): void;
  /** The range shows nothing and reads as zeros. */
  unmap(offset: number, length: number): void;
  unmapOwner(owner: number): void;
  /** Changes what stores do to the mapped pages of the range, keeping bytes, owners and dirty bits. */
  protect(offset: number, length: number, writable: boolean): void;
  /** Copies `data` in without dirtying anything: it is the backend's data, not the guest's. */
  write(offset: number, data: Uint8Array): void;
  /** As write, from a source that fills the range itself (the count it wrote; zeros after it). */
  writeFrom(offset: number, length: number, source: (into: Uint8Array) => number | Promise<number>): Promise<void>;
  zero(offset: number, length: number): void;
  /** A copy of the range. */
  read(offset: number, length: number): Uint8Array;
  /** Whole extents overlapping the range, in window order. */
  extentsIn(offset: number, length: number): WindowExtent[];
  extents(): WindowExtent[];
  extentsOf(owner: number): WindowExtent[];
  readonly ownerCount: number;
  hasOwner(owner: number): boolean;
  owners(): number[];
  ownersIn(offset: number, length: number): number[];
  /** Maximal runs of dirty pages inside the range. */
  dirtyRuns(offset: number, length: number): WindowSpan[];
  /** Dirty pages in the range (default: the whole window). */
  dirtyPages(offset?: number, length?: number): number;
  clearDirty(offset: number, length: number): void;
  /** Marks the range's mapped pages dirty again (a write-back failed). */
  markDirty(offset: number, length: number): void;
}
