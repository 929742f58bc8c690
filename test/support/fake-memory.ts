import type { GuestMemory, MemoryRange } from "../../device/bus.ts";

export interface Range {
  addr: number;
  len: number;
}

/**
 * Guest RAM over a plain Uint8Array. Device writes go through write() and are recorded; the test's driver
 * writes straight into u8 or through poke(), so `writes` holds exactly what the device wrote.
 */
export class FakeMemory implements GuestMemory {
  readonly u8: Uint8Array;
  readonly writes: Range[] = [];
  readonly changes: Range[] = [];

  constructor(readonly size: number) {
    this.u8 = new Uint8Array(size);
  }

  write(addr: number, data: Uint8Array): void {
    // The device promised to check the range; a fake that silently clipped would hide the bug.
    if (!Number.isSafeInteger(addr) || addr < 0 || addr + data.length > this.size) {
      throw new Error(`device write [${addr}, +${data.length}) outside guest RAM of ${this.size} bytes`);
    }
    this.writes.push({ addr, len: data.length });
    this.u8.set(data, addr);
  }

  /** A range the device fills in place; what it says it changed is recorded in `changes` (absolute addresses). */
  range(addr: number, size: number): MemoryRange {
    const bytes = this.u8.subarray(addr, addr + size);
    return { bytes: () => bytes, changed: (offset, length) => this.changes.push({ addr: addr + offset, len: length }) };
  }

  /** Device writes not entirely inside one of the allowed ranges. */
  writesOutside(allowed: readonly Range[]): Range[] {
    return this.writes.filter((w) => !allowed.some((r) => w.addr >= r.addr && w.addr + w.len <= r.addr + r.len));
  }

  /** The driver's own store (not a device write): `onPoke` sees it, so the fuzzer can record and replay it. */
  poke(addr: number, data: Uint8Array): void {
    this.u8.set(data, addr);
    this.onPoke?.(addr, data);
  }

  onPoke: ((addr: number, data: Uint8Array) => void) | undefined;

  clearWrites(): void {
    this.writes.length = 0;
  }
}
