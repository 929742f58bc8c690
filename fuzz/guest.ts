// The generating side: a guest that records every store, register access and wait as a step while the
// world runs it, so what it did can be saved and replayed without the generator.
import { BAR0, COMMON, VIRTIO_CONFIG_S_ACKNOWLEDGE, VIRTIO_CONFIG_S_DRIVER, VIRTIO_CONFIG_S_DRIVER_OK, VIRTIO_CONFIG_S_FEATURES_OK } from "../device/virtio-pci.ts";
import type { SplitQueueLayout } from "../device/virtqueue.ts";
import type { FakeMemory } from "../test/support/fake-memory.ts";
import type { Step, Width } from "./input.ts";
import type { Rng } from "./rng.ts";
import type { World } from "./world.ts";

/** Guest RAM the generator uses: rings, raw buffers, the driver queues' heaps; the top half holds large buffers. */
export const MEM = {
  rings: 0x10000,
  ringStride: 0x10000,
  raw: 0x100000,
  rawEnd: 0x400000,
  heaps: 0x400000,
  heapSize: 0x400000,
  big: 16 << 20,
} as const;

export class Guest {
  readonly steps: Step[] = [];
  private rawTop: number = MEM.raw;

  constructor(
    readonly world: World,
    readonly memory: FakeMemory,
    readonly rng: Rng,
  ) {
    world.onPoke = (addr, data) => this.steps.push({ t: "poke", addr, data: data.slice() });
  }

  /** A finding stops the input: what follows would only bury it. */
  get failed(): boolean {
    return this.world.findings.length > 0;
  }

  private async step(s: Step): Promise<void> {
    this.steps.push(s);
    await this.world.exec(s, this.steps.length - 1);
  }

  poke(addr: number, data: Uint8Array): void {
    this.memory.poke(addr, data);
  }

  write(offset: number, width: Width, value: number): Promise<void> {
    return this.step({ t: "write", offset, width, value: value >>> 0 });
  }

  read(offset: number, width: Width): Promise<void> {
    return this.step({ t: "read", offset, width });
  }

  settle(turns = 0): Promise<void> {
    return this.step({ t: "settle", turns });
  }

  reset(): Promise<void> {
    this.rawTop = MEM.raw;
    return this.step({ t: "reset" });
  }

  common(field: keyof typeof COMMON, width: Width, value: number): Promise<void> {
    return this.write(COMMON[field], width, value);
  }

  notify(q: number, width: Width = 2): Promise<void> {
    return this.write(BAR0.notify + q * BAR0.notifyMultiplier, width, q);
  }

  /** Bytes of raw guest memory for hand-made buffers and tables (null when used up). */
  alloc(len: number, align = 16): number | null {
    const at = Math.ceil(this.rawTop / align) * align;
    if (at + len > MEM.rawEnd) return null;
    this.rawTop = at + len;
    return at;
  }

  ringLayout(q: number, size: number): SplitQueueLayout {
    const base = MEM.rings + (q % 8) * MEM.ringStride;
    return { size, desc: base, driver: base + 16 * size, device: base + 0x8000 };
  }

  async features(bits: bigint): Promise<void> {
    for (const sel of [0, 1]) {
      await this.common("driver_feature_select", 4, sel);
      await this.common("driver_feature", 4, Number((bits >> BigInt(32 * sel)) & 0xffffffffn));
    }
  }

  async queue(q: number, l: SplitQueueLayout): Promise<void> {
    await this.common("queue_select", 2, q);
    await this.common("queue_size", 2, l.size);
    for (const [field, addr] of [["queue_desc", l.desc], ["queue_driver", l.driver], ["queue_device", l.device]] as const) {
      await this.common(field, 4, addr >>> 0);
      await this.write(COMMON[field] + 4, 4, Math.floor(addr / 2 ** 32));
    }
    await this.common("queue_enable", 2, 1);
  }

  /** What virtio_pci + virtiofs.ko do at probe: reset, negotiate, rings, DRIVER_OK. */
  async probe(features: bigint, layouts: SplitQueueLayout[]): Promise<void> {
    await this.common("device_status", 1, 0);
    this.rawTop = MEM.raw;
    await this.common("device_status", 1, VIRTIO_CONFIG_S_ACKNOWLEDGE);
    await this.common("device_status", 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    await this.features(features);
    await this.common("device_status", 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
    for (const [q, l] of layouts.entries()) await this.queue(q, l);
    await this.common("device_status", 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
  }
}
