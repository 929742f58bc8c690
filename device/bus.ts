// The only way the emulated hardware touches the emulator. src/machine/v86-bus.ts implements it on v86;
// test/support/fake-bus.ts implements it over plain memory for the reference driver.

/** Guest physical RAM as the device sees it: addresses [0, size). */
export interface GuestMemory {
  /** Bytes of guest RAM. */
  readonly size: number;
  /**
   * A read-only view of guest RAM, indexed by guest physical address; length >= size. Callers check that
   * [addr, addr + len) lies inside [0, size) before use. Never write through it: the emulator must see
   * writes (v86 drops translated code on the written pages).
   */
  readonly u8: Uint8Array;
  /** Copies data into guest RAM at addr; the caller has checked the range. */
  write(addr: number, data: Uint8Array): void;
  /** Guest memory [addr, addr + size) for a device to fill in place (a RAM-backed BAR); the caller checked it. */
  range(addr: number, size: number): MemoryRange;
}

/** Guest memory a device reads and writes in place, while the guest's loads and stores reach it directly. */
export interface MemoryRange {
  /** The bytes [0, size). Ask again after an await: an emulator may replace its buffer. */
  bytes(): Uint8Array;
  /** The device changed [offset, offset + length) behind the CPU's back: code compiled from it must go. */
  changed(offset: number, length: number): void;
}

/** A BAR's registers: offset inside the BAR, access width in bytes, value zero-extended. */
export interface RegisterRegion {
  read(offset: number, width: 1 | 2 | 4): number;
  write(offset: number, width: 1 | 2 | 4, value: number): void;
}

/** A register block in I/O space: every access is a call into the device. */
export interface IoBar {
  /** BAR number, 0..5. */
  index: number;
  space: "io";
  /** I/O port base; the BIOS may move it. */
  address: number;
  /** Power of two. */
  size: number;
  region: RegisterRegion;
}

/**
 * A prefetchable memory BAR backed by guest memory at its own address: the guest's loads and stores (and
 * instruction fetches) run at RAM speed and never reach the device, which fills it through a MemoryRange.
 */
export interface MemoryBar {
  index: number;
  space: "memory";
  /** Fixed guest physical address, aligned to size; the bus never moves it. */
  address: number;
  size: number;
}

export type PciBar = IoBar | MemoryBar;

export interface PciFunctionSpec {
  name: string;
  /** 256 bytes of configuration space: header and capability chain; the bus fills in the BARs. */
  config: Uint8Array;
  bars: PciBar[];
}

export interface PciFunction {
  /** Drives the function's INTx line (level-triggered). */
  setIrq(asserted: boolean): void;
  /** Takes the function off the bus: its configuration space and BARs answer as an empty slot from now on. */
  remove(): void;
}

export interface DeviceBus {
  readonly memory: GuestMemory;
  addPciFunction(spec: PciFunctionSpec): PciFunction;
}
