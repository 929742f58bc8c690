// The DAX window on its own: guest memory it fills in place, dirty pages found by comparison, and the
// mapping table's MAP_FIXED rules.
import { describe, expect, it, vi } from "vitest";
import { DAX_PAGE_MAPPED, DAX_PAGE_SHIFT, DAX_PAGE_SIZE, DAX_PAGE_WRITABLE, DaxWindow } from "../../device/dax-window.ts";
import { PAGE_SHIFT, PAGE_SIZE, type FuseDaxWindow } from "../../src/fuse/dax-window.ts";
import { FakeMemory } from "../support/fake-memory.ts";

const PAGE = DAX_PAGE_SIZE;
const SIZE = 1 << 20;

/** A 1 MiB window with pages [0, 4) writable (owner 7 from file offset 0) and [4, 6) read-only (owner 8). */
function window(): DaxWindow {
  const w = new DaxWindow(SIZE);
  w.map(0, 4 * PAGE, 7, 0, true);
  w.map(4 * PAGE, 2 * PAGE, 8, 0, false);
  return w;
}

/** A guest store: straight into the window's memory, as the CPU does. */
function store(w: DaxWindow, offset: number, ...bytes: number[]): void {
  w.bytes().set(bytes, offset);
}

describe("DaxWindow", () => {
  it("is a power of two from a page to 2 GiB; its page tables are SharedArrayBuffers", () => {
    for (const bad of [0, 2048, 3 << 20, 2 ** 32, 1.5, -SIZE]) expect(() => new DaxWindow(bad)).toThrow(RangeError);
    const w = new DaxWindow(128 * 1024);
    expect(w.pages).toBe(32);
    expect(w.bytes()).toHaveLength(128 * 1024);
    expect(w.pageState.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(w.dirty.buffer).toBeInstanceOf(SharedArrayBuffer);
  });

  it("works where there is no SharedArrayBuffer (a page that is not cross-origin isolated)", () => {
    vi.stubGlobal("SharedArrayBuffer", undefined);
    try {
      const w = new DaxWindow(SIZE);
      expect(w.pageState.buffer).toBeInstanceOf(ArrayBuffer);
      w.map(0, PAGE, 7, 0, true);
      store(w, 5, 1);
      expect(w.dirtyPages()).toBe(1);
    } finally {
      vi.unstubAllGlobals();
    }
  });

  it("is the window the FUSE server takes, with the guest's page size", () => {
    // Compile-time: src/fuse declares what it needs of a window without importing the device.
    const w: FuseDaxWindow = new DaxWindow(SIZE);
    expect(w.size).toBe(SIZE);
    expect([DAX_PAGE_SHIFT, DAX_PAGE_SIZE]).toEqual([PAGE_SHIFT, PAGE_SIZE]);
  });

  it("lives in guest memory: device writes land there and tell the emulator which bytes changed", () => {
    const mem = new FakeMemory(4 * SIZE);
    const w = new DaxWindow(SIZE, mem.range(2 * SIZE, SIZE));
    w.map(0, 2 * PAGE, 1, 0, true);
    w.write(PAGE - 2, Uint8Array.of(1, 2, 3, 4));
    expect(Array.from(mem.u8.subarray(2 * SIZE + PAGE - 2, 2 * SIZE + PAGE + 2))).toEqual([1, 2, 3, 4]);
    w.zero(10, 6);
    w.unmap(0, 2 * PAGE);
    // Code compiled from those bytes must go (v86: jit_dirty_cache), at their guest physical addresses.
    expect(mem.changes).toEqual([
      { addr: 2 * SIZE + PAGE - 2, len: 4 },
      { addr: 2 * SIZE + 10, len: 6 },
      { addr: 2 * SIZE, len: 2 * PAGE },
    ]);
    expect(mem.writes).toEqual([]); // nothing through the copy-in path: the device fills the window in place
    // A guest store is seen without the device being called.
    w.map(0, PAGE, 1, 0, true);
    mem.u8[2 * SIZE + 5] = 9;
    expect(w.dirtyPages()).toBe(1);
  });

  it("finds the writable pages the guest stored to, by comparing each with its clean copy", () => {
    const w = window();
    store(w, 8, 0xef, 0xbe, 0xad, 0xde);
    store(w, PAGE + 1, 0x5a);
    expect(w.dirtyPages()).toBe(2);
    expect(Array.from(w.dirty.subarray(0, 4))).toEqual([1, 1, 0, 0]);
    // A store of the byte that was there changes nothing.
    store(w, 3 * PAGE, 0);
    expect(w.dirtyRuns(0, SIZE)).toEqual([{ offset: 0, length: 2 * PAGE }]);
  });

  it("a store across a page boundary dirties both pages; its last byte alone is enough", () => {
    const w = window();
    store(w, 2 * PAGE - 2, 0x11, 0x22, 0x33, 0x44);
    expect(w.dirtyRuns(0, SIZE)).toEqual([{ offset: PAGE, length: 2 * PAGE }]);
    w.clearDirty(0, 4 * PAGE);
    store(w, 4 * PAGE - 1, 7);
    expect(w.dirtyRuns(0, SIZE)).toEqual([{ offset: 3 * PAGE, length: PAGE }]);
  });

  it("never counts stores to read-only or unmapped pages: they are not the file's", () => {
    const w = window();
    store(w, 4 * PAGE + 8, 1, 1, 1, 1); // read-only
    store(w, 6 * PAGE, 2, 2, 2, 2); // unmapped
    store(w, SIZE - 1, 3);
    expect(w.dirtyPages()).toBe(0);
    expect(w.dirtyRuns(0, SIZE)).toEqual([]);
  });

  it("records each page's owner, file offset and writability, readable by the inspector", () => {
    const w = window();
    expect(w.extents()).toEqual([
      { offset: 0, length: 4 * PAGE, owner: 7, fileOffset: 0, writable: true },
      { offset: 4 * PAGE, length: 2 * PAGE, owner: 8, fileOffset: 0, writable: false },
    ]);
    const rw = DAX_PAGE_MAPPED | DAX_PAGE_WRITABLE;
    const ro = DAX_PAGE_MAPPED;
    expect(Array.from(w.pageState.subarray(0, 7))).toEqual([rw, rw, rw, rw, ro, ro, 0]);
    expect(w.owners().sort()).toEqual([7, 8]);
    expect(w.ownersIn(3 * PAGE, 2 * PAGE).sort()).toEqual([7, 8]);
    expect(w.ownerCount).toBe(2);
  });

  it("replaces what a new mapping covers (MAP_FIXED), keeping the rest of each old extent", () => {
    const w = window();
    store(w, 0, 1);
    store(w, 2 * PAGE, 2);
    store(w, 3 * PAGE, 3);
    w.map(PAGE, 4 * PAGE, 9, 40 * PAGE, true); // over the tail of owner 7 and the head of owner 8
    expect(w.extents()).toEqual([
      { offset: 0, length: PAGE, owner: 7, fileOffset: 0, writable: true },
      { offset: PAGE, length: 4 * PAGE, owner: 9, fileOffset: 40 * PAGE, writable: true },
      { offset: 5 * PAGE, length: PAGE, owner: 8, fileOffset: PAGE, writable: false },
    ]);
    // The replaced pages' dirty bits go (the caller wrote them back); their bytes stay for the caller to fill.
    expect(w.dirtyPages()).toBe(1);
    expect(Array.from(w.dirty.subarray(0, 6))).toEqual([1, 0, 0, 0, 0, 0]);
    expect(w.read(2 * PAGE, 1)[0]).toBe(2);
    expect(w.extentsOf(8)).toEqual([{ offset: 5 * PAGE, length: PAGE, owner: 8, fileOffset: PAGE, writable: false }]);
    // Mapping over an owner's last page forgets the owner.
    w.map(5 * PAGE, PAGE, 9, 0, false);
    expect(w.hasOwner(8)).toBe(false);
  });

  it("unmap zeroes the pages and forgets them, mapped or not", () => {
    const w = window();
    store(w, PAGE, 0x12);
    store(w, 7 * PAGE, 0x34); // unmapped
    w.unmap(PAGE, 8 * PAGE);
    expect(w.read(PAGE, 7 * PAGE).every((b) => b === 0)).toBe(true);
    expect(w.dirtyPages()).toBe(0);
    expect(w.extents()).toEqual([{ offset: 0, length: PAGE, owner: 7, fileOffset: 0, writable: true }]);
    w.unmapOwner(7);
    expect(w.extents()).toEqual([]);
    expect(w.pageState.every((b) => b === 0)).toBe(true);
  });

  it("protect changes writability only, keeping bytes, owners and dirty bits", () => {
    const w = window();
    store(w, PAGE, 4);
    w.protect(0, 2 * PAGE, false);
    // A page that was writable keeps being written back: the guest may still hold a writable mapping.
    store(w, 0, 5);
    expect(w.dirtyPages()).toBe(2);
    expect(w.extents().slice(0, 2)).toEqual([
      { offset: 0, length: 2 * PAGE, owner: 7, fileOffset: 0, writable: false },
      { offset: 2 * PAGE, length: 2 * PAGE, owner: 7, fileOffset: 2 * PAGE, writable: true },
    ]);
    // A read-only page made writable starts clean with the bytes it shows.
    store(w, 5 * PAGE, 8);
    w.protect(4 * PAGE, 2 * PAGE, true);
    expect(w.dirtyPages(4 * PAGE, 2 * PAGE)).toBe(0);
    store(w, 4 * PAGE, 9);
    expect(w.dirtyRuns(4 * PAGE, 2 * PAGE)).toEqual([{ offset: 4 * PAGE, length: PAGE }]);
  });

  it("reports dirty runs, clears and restores dirty bits (only on mapped pages)", () => {
    const w = window();
    for (const p of [0, 1, 3]) store(w, p * PAGE, 1);
    expect(w.dirtyRuns(0, SIZE)).toEqual([
      { offset: 0, length: 2 * PAGE },
      { offset: 3 * PAGE, length: PAGE },
    ]);
    expect(w.dirtyRuns(PAGE, PAGE)).toEqual([{ offset: PAGE, length: PAGE }]);
    w.clearDirty(0, 4 * PAGE);
    expect(w.dirtyPages()).toBe(0);
    store(w, 3 * PAGE, 2);
    expect(w.dirtyPages()).toBe(1);
    w.clearDirty(3 * PAGE, PAGE);
    w.markDirty(2 * PAGE, 6 * PAGE);
    expect(Array.from(w.dirty.subarray(0, 8))).toEqual([0, 0, 1, 1, 1, 1, 0, 0]);
    expect(w.dirtyPages(4 * PAGE, 2 * PAGE)).toBe(2);
  });

  it("fills, zeroes and copies out bytes without dirtying them", () => {
    const w = window();
    w.write(10, Uint8Array.of(1, 2, 3));
    expect(Array.from(w.read(9, 5))).toEqual([0, 1, 2, 3, 0]);
    w.zero(11, 1);
    expect(Array.from(w.read(10, 3))).toEqual([1, 0, 3]);
    expect(w.dirtyPages()).toBe(0);
  });

  it("refuses misaligned or out-of-window table changes and bad owners", () => {
    const w = new DaxWindow(SIZE);
    expect(() => w.map(100, PAGE, 1, 0, true)).toThrow(RangeError);
    expect(() => w.map(0, PAGE + 1, 1, 0, true)).toThrow(RangeError);
    expect(() => w.map(0, PAGE, 1, 5, true)).toThrow(RangeError);
    expect(() => w.map(SIZE - PAGE, 2 * PAGE, 1, 0, true)).toThrow(RangeError);
    expect(() => w.map(0, PAGE, 0, 0, true)).toThrow(RangeError);
    expect(() => w.write(SIZE - 1, Uint8Array.of(1, 2))).toThrow(RangeError);
    expect(w.extents()).toEqual([]);
  });
});
