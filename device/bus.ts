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
}

/** A BAR's registers: offset inside the BAR, access width in bytes, value zero-extended. */
export interface RegisterRegion {
  read(offset: number, width: 1 | 2 | 4): number;
  write(offset: number, width: 1 | 2 | 4, value: number): void;
}

export interface PciBar {
  /** BAR number, 0..5. */
  index: number;
  space: "io" | "memory";
  /** I/O port base (the BIOS may move it) or fixed guest physical address (never moved). */
  address: number;
  /** Power of two. */
  size: number;
  region: RegisterRegion;
}

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
