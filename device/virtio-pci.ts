// The virtio 1.x PCI transport ("modern" only, spec 4.1): capabilities, common configuration, ISR,
// notifications, device configuration and an optional shared memory region, over a DeviceBus.
import type { DeviceBus, PciFunction, RegisterRegion } from "./bus.ts";
import { buildConfigSpace } from "./pci.ts";
import { SplitQueue, VirtqueueError, type DescriptorChain, type SplitQueueState } from "./virtqueue.ts";

export const VIRTIO_PCI_VENDOR_ID = 0x1af4;
/** Modern device ids are 0x1040 + the virtio device type. */
export const VIRTIO_PCI_DEVICE_ID_BASE = 0x1040;

// Device status bits (spec 2.1)
export const VIRTIO_CONFIG_S_ACKNOWLEDGE = 1;
export const VIRTIO_CONFIG_S_DRIVER = 2;
export const VIRTIO_CONFIG_S_DRIVER_OK = 4;
export const VIRTIO_CONFIG_S_FEATURES_OK = 8;
export const VIRTIO_CONFIG_S_NEEDS_RESET = 0x40;
export const VIRTIO_CONFIG_S_FAILED = 0x80;

// Reserved feature bits (spec 6)
export const VIRTIO_F_RING_INDIRECT_DESC = 28;
export const VIRTIO_F_RING_EVENT_IDX = 29;
export const VIRTIO_F_VERSION_1 = 32;

// virtio_pci_cap.cfg_type (spec 4.1.4)
export const VIRTIO_PCI_CAP_COMMON_CFG = 1;
export const VIRTIO_PCI_CAP_NOTIFY_CFG = 2;
export const VIRTIO_PCI_CAP_ISR_CFG = 3;
export const VIRTIO_PCI_CAP_DEVICE_CFG = 4;
export const VIRTIO_PCI_CAP_SHARED_MEMORY_CFG = 8;
const PCI_CAP_ID_VNDR = 0x09;

export const VIRTIO_PCI_ISR_QUEUE = 1;
export const VIRTIO_PCI_ISR_CONFIG = 2;
const VIRTIO_MSI_NO_VECTOR = 0xffff;

// struct virtio_pci_common_cfg field offsets
export const COMMON = {
  device_feature_select: 0x00,
  device_feature: 0x04,
  driver_feature_select: 0x08,
  driver_feature: 0x0c,
  config_msix_vector: 0x10,
  num_queues: 0x12,
  device_status: 0x14,
  config_generation: 0x15,
  queue_select: 0x16,
  queue_size: 0x18,
  queue_msix_vector: 0x1a,
  queue_enable: 0x1c,
  queue_notify_off: 0x1e,
  queue_desc: 0x20,
  queue_driver: 0x28,
  queue_device: 0x30,
  queue_notify_data: 0x38,
  queue_reset: 0x3a,
} as const;

/**
 * Register layout of BAR 0 (I/O space, 256 ports): common cfg, ISR, device cfg, then one 16-bit notify
 * register per queue (notify_off_multiplier 2, queue_notify_off = queue index).
 */
export const BAR0 = {
  index: 0,
  size: 0x100,
  common: 0x00,
  commonLen: 0x40,
  isr: 0x40,
  isrLen: 4,
  device: 0x80,
  deviceLen: 0x40,
  notify: 0xc0,
  notifyMultiplier: 2,
} as const;
export const MAX_QUEUES = (BAR0.size - BAR0.notify) / BAR0.notifyMultiplier;

export interface SharedMemoryRegion {
  /** virtio_pci_cap.id: the shared memory id (virtio-fs: 0, the DAX cache). */
  id: number;
  /** PCI memory BAR number and fixed guest physical address; size is a power of two. The bus backs it with guest memory. */
  bar: number;
  address: number;
  size: number;
}

export interface VirtioPciOptions {
  name: string;
  deviceType: number;
  /** Device-specific feature bits (0..23); the transport adds VERSION_1, INDIRECT_DESC, EVENT_IDX. */
  deviceFeatures?: bigint;
  numQueues: number;
  maxQueueSize: number;
  /** Device configuration space, read-only to the driver. */
  deviceConfig: Uint8Array;
  /** Initial I/O port of BAR 0 (the BIOS may move it). */
  ioPort: number;
  shm?: SharedMemoryRegion;
  /** The driver kicked queue `index`. */
  onNotify(index: number): void;
  /** The driver reset the device (or the device must forget everything it had). */
  onReset(): void;
  /** A queue could not be used (malformed ring): the transport has set DEVICE_NEEDS_RESET. */
  onError?(message: string): void;
}

interface QueueState {
  size: number;
  enabled: boolean;
  desc: number;
  driver: number;
  device: number;
  ring: SplitQueue | undefined;
}

/** What a snapshot keeps of the transport: the registers the driver wrote and every queue's ring state. */
export interface VirtioPciState {
  status: number;
  driverFeatures: bigint;
  deviceFeatureSelect: number;
  driverFeatureSelect: number;
  queueSelect: number;
  isr: number;
  queues: { size: number; enabled: boolean; desc: number; driver: number; device: number; ring: SplitQueueState | null }[];
}

/** Value of a 64-bit register as two 32-bit halves; a guest address above 4 GiB stays out of RAM. */
const hiLo = (lo: number, hi: number): number => hi * 2 ** 32 + (lo >>> 0);

export class VirtioPciTransport {
  readonly deviceFeatures: bigint;
  private readonly pci: PciFunction;
  private readonly queues: QueueState[];
  private status = 0;
  private driverFeatures = 0n;
  private deviceFeatureSelect = 0;
  private driverFeatureSelect = 0;
  private queueSelect = 0;
  private isr = 0;
  private readonly regs = new DataView(new ArrayBuffer(BAR0.commonLen));

  constructor(
    private readonly bus: DeviceBus,
    private readonly o: VirtioPciOptions,
  ) {
    if (o.numQueues < 1 || o.numQueues > MAX_QUEUES) throw new RangeError(`numQueues must be 1..${MAX_QUEUES}`);
    if (o.deviceConfig.length > BAR0.deviceLen) throw new RangeError("device config too large");
    this.deviceFeatures =
      (o.deviceFeatures ?? 0n) | (1n << BigInt(VIRTIO_F_VERSION_1)) | (1n << BigInt(VIRTIO_F_RING_INDIRECT_DESC)) | (1n << BigInt(VIRTIO_F_RING_EVENT_IDX));
    this.queues = Array.from({ length: o.numQueues }, () => this.freshQueue());
    const bars = [
      { index: BAR0.index, space: "io" as const, address: o.ioPort, size: BAR0.size, region: this.bar0() },
      ...(o.shm ? [{ index: o.shm.bar, space: "memory" as const, address: o.shm.address, size: o.shm.size }] : []),
    ];
    this.pci = bus.addPciFunction({ name: o.name, config: this.configSpace(), bars });
  }

  get deviceStatus(): number {
    return this.status;
  }

  has(feature: number): boolean {
    return ((this.driverFeatures >> BigInt(feature)) & 1n) === 1n;
  }

  /** The ring of an enabled queue while the driver is running it; undefined otherwise. */
  queue(index: number): SplitQueue | undefined {
    if (!(this.status & VIRTIO_CONFIG_S_DRIVER_OK) || this.status & VIRTIO_CONFIG_S_NEEDS_RESET) return undefined;
    return this.queues[index]?.ring;
  }

  /** Raises a used-buffer interrupt for queue `index` unless the driver suppressed it. */
  interruptIfNeeded(index: number): void {
    const ring = this.queue(index);
    if (ring?.needsInterrupt()) this.raise(VIRTIO_PCI_ISR_QUEUE);
  }

  /** Puts the device into DEVICE_NEEDS_RESET: it stops using its queues until the driver resets it. */
  fail(message: string): void {
    if (this.status & VIRTIO_CONFIG_S_NEEDS_RESET) return;
    this.status |= VIRTIO_CONFIG_S_NEEDS_RESET;
    this.o.onError?.(message);
    if (this.status & VIRTIO_CONFIG_S_DRIVER_OK) this.raise(VIRTIO_PCI_ISR_CONFIG);
  }

  private raise(bit: number): void {
    this.isr |= bit;
    this.pci.setIrq(true);
  }

  private freshQueue(): QueueState {
    return { size: this.o.maxQueueSize, enabled: false, desc: 0, driver: 0, device: 0, ring: undefined };
  }

  /** Device reset: what writing 0 to device_status does, and what a PCI reset (machine reboot) does. */
  reset(): void {
    this.status = 0;
    this.driverFeatures = 0n;
    this.deviceFeatureSelect = this.driverFeatureSelect = this.queueSelect = 0;
    for (let i = 0; i < this.queues.length; i++) {
      // In-flight chains lose their buffers: the driver is about to reuse that memory.
      this.queues[i]!.ring?.close();
      this.queues[i] = this.freshQueue();
    }
    this.isr = 0;
    this.pci.setIrq(false);
    this.o.onReset();
  }

  save(): VirtioPciState {
    return {
      status: this.status,
      driverFeatures: this.driverFeatures,
      deviceFeatureSelect: this.deviceFeatureSelect,
      driverFeatureSelect: this.driverFeatureSelect,
      queueSelect: this.queueSelect,
      isr: this.isr,
      queues: this.queues.map(({ size, enabled, desc, driver, device, ring }) => ({ size, enabled, desc, driver, device, ring: ring?.save() ?? null })),
    };
  }

  /**
   * Takes a saved state into a transport just built with the same options over the restored guest memory;
   * returns, per queue, the chains that were in flight (to serve again). VirtqueueError, with the transport
   * reset, when the state does not fit this device.
   */
  restore(state: VirtioPciState): DescriptorChain[][] {
    try {
      const reg = (v: number, max: number, what: string): number => {
        if (!Number.isInteger(v) || v < 0 || v > max) throw new VirtqueueError(`saved ${what} ${v} is out of range`);
        return v;
      };
      if (state.queues.length !== this.queues.length) throw new VirtqueueError(`saved state has ${state.queues.length} queues, the device ${this.queues.length}`);
      if ((state.driverFeatures & ~this.deviceFeatures) !== 0n) throw new VirtqueueError("saved driver features were never offered");
      this.status = reg(state.status, 0xff, "device status");
      this.driverFeatures = state.driverFeatures;
      this.deviceFeatureSelect = reg(state.deviceFeatureSelect, 0xffffffff, "feature select");
      this.driverFeatureSelect = reg(state.driverFeatureSelect, 0xffffffff, "feature select");
      this.queueSelect = reg(state.queueSelect, 0xffff, "queue select");
      const inflight = state.queues.map((saved, i) => {
        const q = this.queues[i]!;
        const size = reg(saved.size, this.o.maxQueueSize, "queue size");
        if (size === 0 || size & (size - 1)) throw new VirtqueueError(`saved queue size ${size} is not a power of two`);
        for (const a of [saved.desc, saved.driver, saved.device]) reg(a, Number.MAX_SAFE_INTEGER, "queue address");
        Object.assign(q, { size, desc: saved.desc, driver: saved.driver, device: saved.device });
        if (saved.enabled !== (saved.ring !== null)) throw new VirtqueueError(`saved queue ${i} is enabled without a ring`);
        if (!saved.ring) return [];
        this.enableQueue(q);
        if (!q.ring) throw new VirtqueueError(`saved queue ${i} does not fit guest memory`);
        return q.ring.restore(saved.ring);
      });
      this.isr = reg(state.isr, VIRTIO_PCI_ISR_QUEUE | VIRTIO_PCI_ISR_CONFIG, "ISR");
      // The interrupt line is level-triggered: still asserted if the driver had not read the ISR yet.
      if (this.isr) this.pci.setIrq(true);
      return inflight;
    } catch (e) {
      this.reset();
      throw e;
    }
  }

  /** Resets the device and takes it off the bus (the machine is being torn down or the device detached). */
  remove(): void {
    this.reset();
    this.pci.remove();
  }

  private configSpace(): Uint8Array {
    const cap = (cfgType: number, bar: number, offset: number, length: number, extra: number[] = []) => {
      // struct virtio_pci_cap after cap_vndr/cap_next: cap_len, cfg_type, bar, id, padding[2], offset, length
      const body = new Uint8Array(14 + extra.length * 4);
      const v = new DataView(body.buffer);
      v.setUint8(0, 2 + body.length);
      v.setUint8(1, cfgType);
      v.setUint8(2, bar);
      v.setUint32(6, offset, true);
      v.setUint32(10, length, true);
      extra.forEach((x, i) => v.setUint32(14 + 4 * i, x, true));
      return { id: PCI_CAP_ID_VNDR, body };
    };
    const caps = [
      cap(VIRTIO_PCI_CAP_COMMON_CFG, BAR0.index, BAR0.common, BAR0.commonLen),
      cap(VIRTIO_PCI_CAP_NOTIFY_CFG, BAR0.index, BAR0.notify, this.o.numQueues * BAR0.notifyMultiplier, [BAR0.notifyMultiplier]),
      cap(VIRTIO_PCI_CAP_ISR_CFG, BAR0.index, BAR0.isr, BAR0.isrLen),
      cap(VIRTIO_PCI_CAP_DEVICE_CFG, BAR0.index, BAR0.device, this.o.deviceConfig.length),
    ];
    if (this.o.shm) {
      // struct virtio_pci_cap64: offset/length low words in the cap, high words after it; id = shmid
      const c = cap(VIRTIO_PCI_CAP_SHARED_MEMORY_CFG, this.o.shm.bar, 0, this.o.shm.size >>> 0, [0, Math.floor(this.o.shm.size / 2 ** 32)]);
      c.body[3] = this.o.shm.id;
      caps.push(c);
    }
    return buildConfigSpace(
      {
        vendorId: VIRTIO_PCI_VENDOR_ID,
        deviceId: VIRTIO_PCI_DEVICE_ID_BASE + this.o.deviceType,
        revision: 1, // modern-only devices have revision >= 1 (spec 4.1.2.1)
        classCode: 0x018000, // mass storage, other
        subsystemVendorId: VIRTIO_PCI_VENDOR_ID,
        subsystemId: 0x1100,
        interruptPin: 1,
      },
      caps,
    );
  }

  private bar0(): RegisterRegion {
    return {
      read: (offset, width) => {
        if (offset < BAR0.common + BAR0.commonLen) return this.readCommon(offset, width);
        if (offset >= BAR0.isr && offset < BAR0.isr + BAR0.isrLen) return this.readIsr(offset);
        if (offset >= BAR0.device && offset < BAR0.device + BAR0.deviceLen) return this.readDeviceConfig(offset - BAR0.device, width);
        return 0;
      },
      write: (offset, width, value) => {
        if (offset < BAR0.common + BAR0.commonLen) this.writeCommon(offset, width, value);
        else if (offset >= BAR0.notify && width === 2) this.notify((offset - BAR0.notify) / BAR0.notifyMultiplier);
        // ISR and device configuration are read-only; other writes are ignored.
      },
    };
  }

  private readIsr(offset: number): number {
    if (offset !== BAR0.isr) return 0;
    // Reading the ISR acknowledges the interrupt (spec 4.1.4.5).
    const v = this.isr;
    this.isr = 0;
    this.pci.setIrq(false);
    return v;
  }

  private readDeviceConfig(offset: number, width: 1 | 2 | 4): number {
    let v = 0;
    for (let i = width - 1; i >= 0; i--) v = (v << 8) | (this.o.deviceConfig[offset + i] ?? 0);
    return v >>> 0;
  }

  private readCommon(offset: number, width: 1 | 2 | 4): number {
    const r = this.regs;
    const q = this.queues[this.queueSelect];
    const feature = (this.deviceFeatures >> BigInt(32 * this.deviceFeatureSelect)) & 0xffffffffn;
    r.setUint32(COMMON.device_feature_select, this.deviceFeatureSelect, true);
    r.setUint32(COMMON.device_feature, this.deviceFeatureSelect < 2 ? Number(feature) : 0, true);
    r.setUint32(COMMON.driver_feature_select, this.driverFeatureSelect, true);
    r.setUint32(COMMON.driver_feature, Number((this.driverFeatures >> BigInt(32 * this.driverFeatureSelect)) & 0xffffffffn), true);
    r.setUint16(COMMON.config_msix_vector, VIRTIO_MSI_NO_VECTOR, true);
    r.setUint16(COMMON.num_queues, this.queues.length, true);
    r.setUint8(COMMON.device_status, this.status);
    r.setUint8(COMMON.config_generation, 0);
    r.setUint16(COMMON.queue_select, this.queueSelect, true);
    // A selected queue that does not exist reads as size 0 (spec 4.1.4.3).
    r.setUint16(COMMON.queue_size, q ? q.size : 0, true);
    r.setUint16(COMMON.queue_msix_vector, VIRTIO_MSI_NO_VECTOR, true);
    r.setUint16(COMMON.queue_enable, q?.enabled ? 1 : 0, true);
    r.setUint16(COMMON.queue_notify_off, q ? this.queueSelect : 0, true);
    for (const [field, value] of [
      [COMMON.queue_desc, q?.desc ?? 0],
      [COMMON.queue_driver, q?.driver ?? 0],
      [COMMON.queue_device, q?.device ?? 0],
    ] as const) {
      r.setUint32(field, value >>> 0, true);
      r.setUint32(field + 4, Math.floor(value / 2 ** 32), true);
    }
    r.setUint16(COMMON.queue_notify_data, this.queueSelect, true);
    r.setUint16(COMMON.queue_reset, 0, true);
    if (offset + width > BAR0.commonLen) return 0;
    return width === 1 ? r.getUint8(offset) : width === 2 ? r.getUint16(offset, true) : r.getUint32(offset, true);
  }

  private writeCommon(offset: number, width: 1 | 2 | 4, value: number): void {
    const q = this.queues[this.queueSelect];
    // A queue's configuration is frozen once it is enabled (spec 4.1.4.3.2).
    const qWritable = q !== undefined && !q.enabled;
    switch (offset) {
      case COMMON.device_feature_select:
        this.deviceFeatureSelect = value >>> 0;
        break;
      case COMMON.driver_feature_select:
        this.driverFeatureSelect = value >>> 0;
        break;
      case COMMON.driver_feature:
        if (this.driverFeatureSelect < 2 && !(this.status & VIRTIO_CONFIG_S_FEATURES_OK)) {
          const shift = BigInt(32 * this.driverFeatureSelect);
          this.driverFeatures = (this.driverFeatures & ~(0xffffffffn << shift)) | (BigInt(value >>> 0) << shift);
        }
        break;
      case COMMON.device_status:
        this.writeStatus(value & 0xff);
        break;
      case COMMON.queue_select:
        this.queueSelect = value & 0xffff;
        break;
      case COMMON.queue_size:
        // Any power of two up to the maximum (a split ring needs one); otherwise keep the old size.
        if (qWritable && value > 0 && value <= this.o.maxQueueSize && (value & (value - 1)) === 0) q.size = value;
        break;
      case COMMON.queue_enable:
        if (qWritable && value === 1) this.enableQueue(q);
        break;
      case COMMON.queue_desc:
      case COMMON.queue_desc + 4:
      case COMMON.queue_driver:
      case COMMON.queue_driver + 4:
      case COMMON.queue_device:
      case COMMON.queue_device + 4:
        if (qWritable && width === 4) this.writeQueueAddress(q, offset, value >>> 0);
        break;
      // config_msix_vector, queue_msix_vector: no MSI-X, reads stay NO_VECTOR; the rest is read-only.
    }
  }

  private writeQueueAddress(q: QueueState, offset: number, value: number): void {
    const field = offset & ~7;
    const key = field === COMMON.queue_desc ? "desc" : field === COMMON.queue_driver ? "driver" : "device";
    const old = q[key];
    q[key] = offset & 4 ? hiLo(old, value) : hiLo(value, Math.floor(old / 2 ** 32));
  }

  private writeStatus(value: number): void {
    if (value === 0) {
      this.reset();
      return;
    }
    if (value & VIRTIO_CONFIG_S_FEATURES_OK && !(this.status & VIRTIO_CONFIG_S_FEATURES_OK)) {
      // Accept only a subset of what was offered, and only as a modern driver (spec 2.2.2, 6.1).
      const ok = (this.driverFeatures & ~this.deviceFeatures) === 0n && this.has(VIRTIO_F_VERSION_1);
      if (!ok) value &= ~VIRTIO_CONFIG_S_FEATURES_OK;
    }
    // Bits stay set until reset; the driver never clears them one by one.
    this.status = (this.status & VIRTIO_CONFIG_S_NEEDS_RESET) | value;
  }

  private enableQueue(q: QueueState): void {
    try {
      q.ring = new SplitQueue(
        this.bus.memory,
        { size: q.size, desc: q.desc, driver: q.driver, device: q.device },
        { indirect: this.has(VIRTIO_F_RING_INDIRECT_DESC), eventIdx: this.has(VIRTIO_F_RING_EVENT_IDX) },
      );
      q.enabled = true;
    } catch (e) {
      if (!(e instanceof VirtqueueError)) throw e;
      this.fail(`queue ${this.queueSelect}: ${e.message}`);
    }
  }

  private notify(index: number): void {
    if (Number.isInteger(index) && this.queue(index)) this.o.onNotify(index);
  }
}
