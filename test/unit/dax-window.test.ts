// The DAX window on its own: the BAR's loads and stores, dirty pages, and the mapping table's MAP_FIXED rules.
import { describe, expect, it } from "vitest";
import { DAX_PAGE_MAPPED, DAX_PAGE_SHIFT, DAX_PAGE_SIZE, DAX_PAGE_WRITABLE, DaxWindow } from "../../device/dax-window.ts";
import { PAGE_SHIFT, PAGE_SIZE, type FuseDaxWindow } from "../../src/fuse/dax-window.ts";

const PAGE = DAX_PAGE_SIZE;
const SIZE = 1 << 20;

/** A 1 MiB window with pages [0, 4) writable (owner 7 from file offset 0) and [4, 6) read-only (owner 8). */
function window(): DaxWindow {
  const w = new DaxWindow(SIZE);
  w.map(0, 4 * PAGE, 7, 0, true);
  w.map(4 * PAGE, 2 * PAGE, 8, 0, false);
  return w;
}

describe("DaxWindow", () => {
  it("is a power of two, a whole number of v86's 128 KiB MMIO blocks, in SharedArrayBuffers", () => {
    for (const bad of [0, 64 * 1024, 3 << 20, 2 ** 32, 1.5, -SIZE]) expect(() => new DaxWindow(bad)).toThrow(RangeError);
    const w = new DaxWindow(128 * 1024);
    expect(w.pages).toBe(32);
    expect(w.memory).toBeInstanceOf(SharedArrayBuffer);
    expect(w.pageState.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(w.dirty.buffer).toBeInstanceOf(SharedArrayBuffer);
  });

  it("is the window the FUSE server takes, with the guest's page size", () => {
    // Compile-time: src/fuse declares what it needs of a window without importing the device.
    const w: FuseDaxWindow = new DaxWindow(SIZE);
    expect(w.size).toBe(SIZE);
    expect([DAX_PAGE_SHIFT, DAX_PAGE_SIZE]).toEqual([PAGE_SHIFT, PAGE_SIZE]);
  });

  it("serves loads of width 1, 2 and 4, little-endian, at any alignment", () => {
    const w = window();
    w.write(PAGE - 4, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8));
    const at = PAGE - 4;
    expect(w.region.read(at, 1)).toBe(1);
    expect(w.region.read(at, 2)).toBe(0x0201);
    expect(w.region.read(at, 4)).toBe(0x04030201);
    expect(w.region.read(at + 1, 4)).toBe(0x05040302);
    expect(w.region.read(at + 2, 4)).toBe(0x06050403); // across a page boundary
    w.write(0, Uint8Array.of(0xff, 0xff, 0xff, 0xff));
    expect(w.region.read(0, 4)).toBe(0xffffffff); // unsigned
  });

  it("lands stores of width 1, 2 and 4 on writable pages and marks them dirty", () => {
    const w = window();
    w.region.write(8, 4, 0xdeadbeef);
    w.region.write(13, 2, 0xcafe);
    w.region.write(PAGE + 1, 1, 0x5a);
    expect(Array.from(w.read(8, 8))).toEqual([0xef, 0xbe, 0xad, 0xde, 0, 0xfe, 0xca, 0]);
    expect(w.read(PAGE + 1, 1)[0]).toBe(0x5a);
    expect(Array.from(w.dirty.subarray(0, 4))).toEqual([1, 1, 0, 0]);
    expect(w.dirtyPages()).toBe(2);
  });

  it("splits a store across a page boundary and dirties both pages", () => {
    const w = window();
    w.region.write(2 * PAGE - 2, 4, 0x44332211);
    expect(Array.from(w.read(2 * PAGE - 2, 4))).toEqual([0x11, 0x22, 0x33, 0x44]);
    expect(w.dirtyRuns(0, SIZE)).toEqual([{ offset: PAGE, length: 2 * PAGE }]);
  });

  it("drops stores to read-only and unmapped pages, byte by byte at a boundary", () => {
    const w = window();
    w.region.write(4 * PAGE + 8, 4, 0x11111111); // read-only
    w.region.write(6 * PAGE, 4, 0x22222222); // unmapped
    w.region.write(4 * PAGE - 2, 4, 0x44332211); // half writable, half read-only
    expect(w.region.read(4 * PAGE + 8, 4)).toBe(0);
    expect(w.region.read(6 * PAGE, 4)).toBe(0);
    expect(Array.from(w.read(4 * PAGE - 2, 4))).toEqual([0x11, 0x22, 0, 0]);
    expect(Array.from(w.dirty.subarray(3, 7))).toEqual([1, 0, 0, 0]);
  });

  it("never throws or reaches outside the window for accesses at its edge", () => {
    const w = new DaxWindow(SIZE);
    w.map(SIZE - PAGE, PAGE, 1, 0, true);
    w.region.write(SIZE - 2, 4, 0x44332211);
    expect(w.region.read(SIZE - 2, 4)).toBe(0x2211);
    for (const at of [SIZE, SIZE + 100, -1, -4]) {
      w.region.write(at, 4, 0xffffffff);
      expect(w.region.read(at, 4)).toBe(0);
    }
    expect(w.dirtyPages()).toBe(1);
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
    w.region.write(0, 4, 1);
    w.region.write(2 * PAGE, 4, 2);
    w.region.write(3 * PAGE, 4, 3);
    w.map(PAGE, 4 * PAGE, 9, 40 * PAGE, true); // over the tail of owner 7 and the head of owner 8
    expect(w.extents()).toEqual([
      { offset: 0, length: PAGE, owner: 7, fileOffset: 0, writable: true },
      { offset: PAGE, length: 4 * PAGE, owner: 9, fileOffset: 40 * PAGE, writable: true },
      { offset: 5 * PAGE, length: PAGE, owner: 8, fileOffset: PAGE, writable: false },
    ]);
    // The replaced pages' dirty bits go (the caller wrote them back); their bytes stay for the caller to fill.
    expect(Array.from(w.dirty.subarray(0, 6))).toEqual([1, 0, 0, 0, 0, 0]);
    expect(w.region.read(2 * PAGE, 4)).toBe(2);
    expect(w.extentsOf(8)).toEqual([{ offset: 5 * PAGE, length: PAGE, owner: 8, fileOffset: PAGE, writable: false }]);
    // Mapping over an owner's last page forgets the owner.
    w.map(5 * PAGE, PAGE, 9, 0, false);
    expect(w.hasOwner(8)).toBe(false);
  });

  it("unmap zeroes the pages and forgets them, mapped or not", () => {
    const w = window();
    w.region.write(PAGE, 4, 0x12345678);
    w.unmap(PAGE, 8 * PAGE);
    expect(w.region.read(PAGE, 4)).toBe(0);
    expect(w.dirtyPages()).toBe(0);
    expect(w.extents()).toEqual([{ offset: 0, length: PAGE, owner: 7, fileOffset: 0, writable: true }]);
    w.unmapOwner(7);
    expect(w.extents()).toEqual([]);
    expect(w.pageState.every((b) => b === 0)).toBe(true);
  });

  it("protect changes writability only, keeping bytes, owners and dirty bits", () => {
    const w = window();
    w.region.write(PAGE, 4, 0x01020304);
    w.protect(0, 2 * PAGE, false);
    w.region.write(PAGE + 4, 4, 0xffffffff);
    expect(w.region.read(PAGE, 4)).toBe(0x01020304);
    expect(w.region.read(PAGE + 4, 4)).toBe(0);
    expect(w.dirtyPages()).toBe(1);
    expect(w.extents().slice(0, 2)).toEqual([
      { offset: 0, length: 2 * PAGE, owner: 7, fileOffset: 0, writable: false },
      { offset: 2 * PAGE, length: 2 * PAGE, owner: 7, fileOffset: 2 * PAGE, writable: true },
    ]);
    w.protect(4 * PAGE, 2 * PAGE, true);
    w.region.write(4 * PAGE, 1, 9);
    expect(w.read(4 * PAGE, 1)[0]).toBe(9);
  });

  it("reports dirty runs, clears and restores dirty bits (only on mapped pages)", () => {
    const w = window();
    for (const p of [0, 1, 3]) w.region.write(p * PAGE, 1, 1);
    expect(w.dirtyRuns(0, SIZE)).toEqual([
      { offset: 0, length: 2 * PAGE },
      { offset: 3 * PAGE, length: PAGE },
    ]);
    expect(w.dirtyRuns(PAGE, PAGE)).toEqual([{ offset: PAGE, length: PAGE }]);
    w.clearDirty(0, 4 * PAGE);
    expect(w.dirtyPages()).toBe(0);
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
