// DeviceBus on v86's internals. The release build keeps these property names; this file and the other
// v86-*.ts files are the only places that rely on them, and each checks for them so a v86 upgrade fails loudly.
import type { V86 } from "v86";
import type { DeviceBus, GuestMemory, MemoryRange, PciFunction, PciFunctionSpec, RegisterRegion } from "../../device/bus.ts";
import { wireOrPciInterrupts } from "./v86-pci-irq.ts";

interface V86PortEntry {
  device: object | undefined;
}

interface V86Internals {
  cpu: {
    reboot_internal(): void;
    /** Runs the CPU loop now if it sleeps (v86 calls it when an IRQ ends a HLT inside the loop). */
    stop_idling(): void;
    wasm_memory: WebAssembly.Memory;
    mem8: Uint8Array;
    memory_size: Uint32Array;
    write_blob(blob: Uint8Array, offset: number): void;
    /** Drops JIT-compiled code of the guest physical pages in [start, end). */
    jit_dirty_cache(start: number, end: number): void;
    io: {
      ports: V86PortEntry[];
      create_empty_entry(): V86PortEntry;
      register_read(port: number, device: object, r8: () => number, r16: () => number, r32: () => number): void;
      register_write(port: number, device: object, w8: (v: number) => void, w16: (v: number) => void, w32: (v: number) => void): void;
    };
    devices: {
      rtc: { cmos_write(index: number, value: number): void };
      pci: {
        devices: (object | undefined)[];
        device_spaces: (Int32Array | undefined)[];
        register_device(d: { name: string; pci_id: number; pci_space: number[]; pci_bars: ({ size: number } | undefined)[] }): void;
        raise_irq(pci_id: number): void;
        lower_irq(pci_id: number): void;
      };
    };
  };
}

export type V86Cpu = V86Internals["cpu"];

export function v86Cpu(emulator: V86): V86Cpu {
  const cpu = (emulator as unknown as { v86?: V86Internals }).v86?.cpu;
  if (!cpu?.io?.register_read || !cpu.io.create_empty_entry || !cpu.devices?.pci?.register_device || !cpu.devices.pci.device_spaces || !cpu.write_blob || !cpu.jit_dirty_cache || !cpu.devices.rtc?.cmos_write || !cpu.wasm_memory || !cpu.reboot_internal || !cpu.stop_idling) {
    throw new Error("this v86 build does not expose the internals virtiofs-web attaches to (cpu.io, cpu.devices.pci, cpu.devices.rtc, cpu.write_blob, cpu.jit_dirty_cache, cpu.reboot_internal)");
  }
  return cpu;
}

class V86Memory implements GuestMemory {
  readonly size: number;
  private view: Uint8Array;

  constructor(private readonly cpu: V86Cpu) {
    this.size = cpu.memory_size[0]!;
    this.view = this.fresh();
  }

  // cpu.mem8 is a Proxy that builds a new typed array on every access: keep a plain view instead, and
  // rebuild it if the wasm memory ever grows (which detaches the old buffer).
  private fresh(): Uint8Array {
    return new Uint8Array(this.cpu.wasm_memory.buffer, this.cpu.mem8.byteOffset, this.size);
  }

  get u8(): Uint8Array {
    if (this.view.byteLength === 0) this.view = this.fresh();
    return this.view;
  }

  write(addr: number, data: Uint8Array): void {
    // write_blob drops JIT-compiled code for the written pages.
    this.cpu.write_blob(data, addr);
  }

  range(addr: number, size: number): MemoryRange {
    let view = this.u8.subarray(addr, addr + size);
    return {
      bytes: () => (view.byteLength ? view : (view = this.u8.subarray(addr, addr + size))),
      changed: (offset, length) => this.cpu.jit_dirty_cache(addr + offset, addr + offset + length),
    };
  }
}

/** CMOS registers SeaBIOS sizes RAM from (qemu's layout, as v86 fills them). */
const CMOS_MEM_EXTMEM_LOW = 0x30;
const CMOS_MEM_EXTMEM_HIGH = 0x31;
const CMOS_MEM_EXTMEM2_LOW = 0x34;
const CMOS_MEM_EXTMEM2_HIGH = 0x35;
const CMOS_MEM_OLD_EXT_LOW = 0x17;
const CMOS_MEM_OLD_EXT_HIGH = 0x18;
const MiB = 1 << 20;

const FIRST_SLOT = 8;
const IO_PORT_LIMIT = 0x10000;

export class V86Bus implements DeviceBus {
  readonly memory: GuestMemory;
  private readonly cpu: V86Cpu;

  constructor(emulator: V86) {
    this.cpu = v86Cpu(emulator);
    this.memory = new V86Memory(this.cpu);
    wireOrPciInterrupts(this.cpu);
  }

  addPciFunction(spec: PciFunctionSpec): PciFunction {
    const pci = this.cpu.devices.pci;
    let slot = FIRST_SLOT;
    while (slot < 32 && pci.devices[slot << 3]) slot++;
    if (slot === 32) throw new Error("no free PCI slot");
    const pciId = slot << 3;
    const config = spec.config.slice();
    const dv = new DataView(config.buffer);
    const bars: ({ size: number } | undefined)[] = [];
    const owner = { name: spec.name };
    for (const bar of spec.bars) {
      if (bar.space === "io") {
        this.registerPorts(owner, bar.address, bar.size, bar.region);
        dv.setUint32(0x10 + 4 * bar.index, bar.address | 1, true);
      } else {
        // v86's own memory backs the BAR: the guest reaches it as RAM, nothing to register.
        if (bar.address % bar.size || bar.address + bar.size > this.memory.size) throw new Error(`bad memory BAR at ${bar.address.toString(16)}`);
        dv.setUint32(0x10 + 4 * bar.index, bar.address | 0x8 /* prefetchable */, true);
      }
      bars[bar.index] = { size: bar.size };
    }
    // Ports must be registered before register_device: it copies them so the BIOS can move the BAR.
    pci.register_device({ name: spec.name, pci_id: pciId, pci_space: Array.from(config), pci_bars: bars });
    let asserted = false;
    const setIrq = (level: boolean): void => {
      if (level) {
        pci.raise_irq(pciId);
        // Completions arrive from promises, outside v86's CPU loop, which may be asleep in HLT until
        // its next timer: wake it so the guest takes the interrupt now, not milliseconds later.
        this.cpu.stop_idling();
      } else if (asserted) pci.lower_irq(pciId);
      asserted = level;
    };
    return {
      setIrq,
      remove: () => {
        setIrq(false);
        pci.devices[pciId] = undefined;
        pci.device_spaces[pciId] = undefined;
        // The BIOS may have moved the I/O BAR: free whichever ports are ours now.
        const io = this.cpu.io;
        for (let port = 0; port < IO_PORT_LIMIT; port++) if (io.ports[port]?.device === owner) io.ports[port] = io.create_empty_entry();
      },
    };
  }

  /**
   * Tells the BIOS (and so the guest's e820 map) that RAM ends at `bytes`: v86's memory above it is left for
   * memory BARs. SeaBIOS reads the size from CMOS as it starts, so this holds from the next boot on.
   */
  setRamSize(bytes: number): void {
    if (bytes % (64 * 1024) || bytes < 16 * MiB || bytes > this.memory.size) throw new Error(`bad RAM size ${bytes}`);
    const rtc = this.cpu.devices.rtc;
    const above1M = Math.min((bytes - MiB) >> 10, 0xffff); // KiB
    const above16M = Math.min((bytes - 16 * MiB) >> 16, 0xffff); // 64 KiB blocks
    for (const [lo, hi, v] of [
      [CMOS_MEM_OLD_EXT_LOW, CMOS_MEM_OLD_EXT_HIGH, above1M],
      [CMOS_MEM_EXTMEM_LOW, CMOS_MEM_EXTMEM_HIGH, above1M],
      [CMOS_MEM_EXTMEM2_LOW, CMOS_MEM_EXTMEM2_HIGH, above16M],
    ] as const) {
      rtc.cmos_write(lo, v & 0xff);
      rtc.cmos_write(hi, (v >> 8) & 0xff);
    }
  }

  /** No device of v86's or ours holds any of these ports. */
  portsFree(base: number, size: number): boolean {
    for (let port = base; port < base + size; port++) if (this.cpu.io.ports[port]?.device) return false;
    return true;
  }

  private registerPorts(owner: object, base: number, size: number, region: RegisterRegion): void {
    if (base < 0x1000 || base + size > IO_PORT_LIMIT || base % size) throw new Error(`bad I/O BAR at ${base.toString(16)}`);
    const io = this.cpu.io;
    for (let i = 0; i < size; i++) {
      if (io.ports[base + i]?.device) throw new Error(`I/O port ${(base + i).toString(16)} is taken`);
    }
    for (let i = 0; i < size; i++) {
      // v86 passes no port number to write handlers: one closure per port carries the offset.
      io.register_read(
        base + i,
        owner,
        () => region.read(i, 1),
        () => region.read(i, 2),
        () => region.read(i, 4),
      );
      io.register_write(
        base + i,
        owner,
        (v) => region.write(i, 1, v & 0xff),
        (v) => region.write(i, 2, v & 0xffff),
        (v) => region.write(i, 4, v >>> 0),
      );
    }
  }
}
