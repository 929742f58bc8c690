// PCI INTx lines as the hardware wires them: a line shared by several functions is asserted while any of
// them asserts it. v86 passes each function's raise and lower straight to the interrupt controller, so
// when a function on a shared line deasserts (its driver read its ISR), the line drops even though
// another function still asserts it. With the PIC's level-triggered lines that erases the other's
// pending request: a virtio device that completed a request while the guest's handler for the shared
// line was running (after it had read that device's ISR) would never interrupt again, and the task waiting
// for the reply would wait for good. SeaBIOS routes the four INTx pins to two IRQs, so with a few shares
// and v86's own virtio devices lines are always shared.
import type { V86Cpu } from "./v86-bus.ts";

interface V86PciRouting {
  /** The PIIX ISA bridge's config space: PIRQ route control registers at 0x60..0x63. */
  isa_bridge_space8: Uint8Array;
  set_state(state: unknown): void;
  device_raise_irq(irq: number): void;
  device_lower_irq(irq: number): void;
}

const PIRQ_ROUTE = 0x60;
const wired = new WeakSet<object>();

/** Makes v86's PCI interrupt lines wired-OR for every function on the bus, v86's own and ours; once per CPU. */
export function wireOrPciInterrupts(cpu: V86Cpu): void {
  const pci = cpu.devices.pci as V86Cpu["devices"]["pci"] & Partial<V86PciRouting>;
  const intc = cpu as V86Cpu & Partial<V86PciRouting>;
  if (wired.has(pci)) return;
  if (!pci.isa_bridge_space8 || !pci.set_state || !intc.device_raise_irq || !intc.device_lower_irq) {
    throw new Error("this v86 build does not expose its PCI interrupt routing (pci.isa_bridge_space8, pci.set_state, cpu.device_raise_irq, cpu.device_lower_irq)");
  }
  const route = pci.isa_bridge_space8;
  const setState = pci.set_state.bind(pci);
  const raise = intc.device_raise_irq.bind(cpu);
  const lower = intc.device_lower_irq.bind(cpu);
  /** The IRQ a function's INTx pin reaches: its pin rotated by its slot (the PCI swizzle), then the PIRQ route the BIOS set. */
  const irqOf = (pciId: number): number => {
    const interruptPin = ((pci.device_spaces[pciId]?.[0x3c >> 2] ?? 0) >> 8) & 0xff; // 1 = INTA#
    return route[PIRQ_ROUTE + ((interruptPin - 1 + (pciId >> 3) - 1) & 3)]!;
  };
  const asserting = new Set<number>();
  pci.raise_irq = (pciId) => {
    asserting.add(pciId);
    raise(irqOf(pciId));
  };
  pci.lower_irq = (pciId) => {
    asserting.delete(pciId);
    const irq = irqOf(pciId);
    for (const other of asserting) if (irqOf(other) === irq) return;
    lower(irq);
  };
  // A restored machine's interrupt controller holds the snapshot's lines; ours re-assert theirs (VirtioFsDevice.restore).
  pci.set_state = (state) => {
    asserting.clear();
    setState(state);
  };
  wired.add(pci);
}
