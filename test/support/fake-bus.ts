// An in-memory DeviceBus: fake guest RAM, the PCI functions the device registered, and its INTx line.
import type { DeviceBus, PciBar, PciFunction, PciFunctionSpec } from "../../device/bus.ts";
import { FakeMemory } from "./fake-memory.ts";

export interface FakePciFunction {
  spec: PciFunctionSpec;
  config: DataView;
  irq: boolean;
  removed: boolean;
  bar(index: number): PciBar;
}

export class FakeBus implements DeviceBus {
  readonly memory: FakeMemory;
  readonly functions: FakePciFunction[] = [];

  /** A new RAM of `ram` bytes, or an existing one (the fuzzer puts a fresh device on the same RAM). */
  constructor(ram: number | FakeMemory = 16 * 1024 * 1024) {
    this.memory = typeof ram === "number" ? new FakeMemory(ram) : ram;
  }

  addPciFunction(spec: PciFunctionSpec): PciFunction {
    const f: FakePciFunction = {
      spec,
      config: new DataView(spec.config.slice().buffer),
      irq: false,
      removed: false,
      bar(index) {
        const b = spec.bars.find((x) => x.index === index);
        if (!b) throw new Error(`no BAR ${index}`);
        return b;
      },
    };
    this.functions.push(f);
    return {
      setIrq: (level) => (f.irq = level),
      remove: () => {
        f.removed = true;
        f.irq = false;
      },
    };
  }
}
