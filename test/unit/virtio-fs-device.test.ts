// The virtio-fs device and its PCI transport, driven by the reference driver over fake guest memory.
import { describe, expect, it } from "vitest";
import { DRAIN_SLICE, VirtioFsDevice, VIRTIO_FS_TAG_LEN } from "../../device/virtio-fs.ts";
import {
  COMMON,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FEATURES_OK,
  VIRTIO_CONFIG_S_NEEDS_RESET,
  VIRTIO_F_RING_EVENT_IDX,
  VIRTIO_F_RING_INDIRECT_DESC,
  VIRTIO_F_VERSION_1,
  VIRTIO_PCI_CAP_COMMON_CFG,
  VIRTIO_PCI_CAP_DEVICE_CFG,
  VIRTIO_PCI_CAP_ISR_CFG,
  VIRTIO_PCI_CAP_NOTIFY_CFG,
  VIRTIO_PCI_CAP_SHARED_MEMORY_CFG,
} from "../../device/virtio-pci.ts";
import { VirtqueueError, type DescriptorChain } from "../../device/virtqueue.ts";
import { FakeBus } from "../support/fake-bus.ts";
import { ReferenceDriver, settle } from "../support/reference-driver.ts";

/**
 * A device whose handler echoes the request bytes back, reversed, after a delay given in the request's first
 * byte: at once for 0 (no Promise); FAIL_NOW throws, FAIL_LATER rejects.
 */
const FAIL_NOW = 0xff;
const FAIL_LATER = 0xfe;

function echoDevice(opts: { numRequestQueues?: number; dax?: boolean } = {}) {
  const bus = new FakeBus();
  const resets: number[] = [];
  const errors: string[] = [];
  const handled: number[] = [];
  const device = new VirtioFsDevice(bus, {
    tag: "myfs",
    numRequestQueues: opts.numRequestQueues ?? 2,
    dax: opts.dax ? { bar: 2, address: 0xd0000000, size: 1 << 21 } : undefined,
    handler: (chain: DescriptorChain, q: number) => {
      const data = chain.reader.read(chain.reader.readable);
      handled.push(q);
      const delay = data[0] ?? 0;
      const echo = () => {
        const out = data.slice().reverse().subarray(0, chain.writer.writable);
        chain.writer.write(out);
        return out.length;
      };
      if (delay === FAIL_NOW) throw new Error("broken now");
      if (delay === FAIL_LATER) return Promise.reject(new Error("broken later"));
      if (delay === 0) return echo();
      return (async () => {
        for (let i = 0; i < delay; i++) await new Promise<void>((r) => setImmediate(r));
        return echo();
      })();
    },
    onReset: () => resets.push(1),
    onError: (m) => errors.push(m),
  });
  const driver = new ReferenceDriver(bus);
  return { bus, device, driver, resets, errors, handled };
}

describe("virtio-fs PCI function", () => {
  it("identifies as a modern virtio-fs device with INTA", () => {
    const { driver } = echoDevice();
    const c = driver.fn.config;
    expect(c.getUint16(0x00, true)).toBe(0x1af4);
    expect(c.getUint16(0x02, true)).toBe(0x105a);
    expect(c.getUint8(0x08)).toBeGreaterThanOrEqual(1); // revision
    expect(c.getUint8(0x0b)).toBe(0x01); // mass storage
    expect(c.getUint8(0x0a)).toBe(0x80);
    expect(c.getUint16(0x06, true) & 0x10).toBe(0x10); // capability list
    expect(c.getUint8(0x3d)).toBe(1);
  });

  it("chains the virtio capabilities the Linux driver looks for", () => {
    const { driver } = echoDevice({ numRequestQueues: 3 });
    const types = driver.caps.map((c) => c.cfgType);
    expect(types).toEqual([VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_CAP_DEVICE_CFG]);
    expect(driver.cap(VIRTIO_PCI_CAP_COMMON_CFG).length).toBeGreaterThanOrEqual(0x38);
    expect(driver.cap(VIRTIO_PCI_CAP_NOTIFY_CFG).length).toBe(4 * driver.cap(VIRTIO_PCI_CAP_NOTIFY_CFG).extra);
    // Every capability lies inside its BAR.
    for (const cap of driver.caps) expect(cap.offset + cap.length).toBeLessThanOrEqual(driver.fn.bar(cap.bar).size);
  });

  it("describes the DAX window as shared memory region 0 on its own memory BAR", () => {
    const { driver } = echoDevice({ dax: true });
    const shm = driver.cap(VIRTIO_PCI_CAP_SHARED_MEMORY_CFG);
    expect(shm).toMatchObject({ bar: 2, id: 0, offset: 0, extra: 1 << 21 });
    expect(driver.fn.bar(2)).toMatchObject({ space: "memory", address: 0xd0000000, size: 1 << 21 });
  });

  it("exposes tag[36] and num_request_queues in device config", () => {
    const { driver } = echoDevice({ numRequestQueues: 3 });
    const tag = Array.from({ length: VIRTIO_FS_TAG_LEN }, (_, i) => driver.readDeviceConfig(i, 1));
    expect(String.fromCharCode(...tag.slice(0, 4))).toBe("myfs");
    expect(tag.slice(4).every((b) => b === 0)).toBe(true);
    expect(driver.readDeviceConfig(VIRTIO_FS_TAG_LEN, 4)).toBe(3);
    expect(driver.readCommon(COMMON.num_queues, 2)).toBe(4);
  });

  it("rejects an over-long tag", () => {
    expect(() => new VirtioFsDevice(new FakeBus(), { tag: "x".repeat(37), handler: async () => 0 })).toThrow(RangeError);
  });
});

describe("feature negotiation and status", () => {
  it("offers VERSION_1, INDIRECT_DESC and EVENT_IDX", () => {
    const { driver } = echoDevice();
    const f = driver.deviceFeatures();
    for (const bit of [VIRTIO_F_VERSION_1, VIRTIO_F_RING_INDIRECT_DESC, VIRTIO_F_RING_EVENT_IDX]) expect((f >> BigInt(bit)) & 1n).toBe(1n);
  });

  it("refuses FEATURES_OK for a legacy driver or a feature it did not offer", () => {
    const { driver } = echoDevice();
    driver.status = 0;
    expect(driver.negotiate(0n)).toBe(false); // no VERSION_1
    driver.status = 0;
    expect(driver.negotiate((1n << BigInt(VIRTIO_F_VERSION_1)) | (1n << 5n))).toBe(false);
    driver.status = 0;
    expect(driver.negotiate(1n << BigInt(VIRTIO_F_VERSION_1))).toBe(true);
  });

  it("freezes features once FEATURES_OK is set", () => {
    const { driver } = echoDevice();
    driver.status = 0;
    driver.negotiate(1n << BigInt(VIRTIO_F_VERSION_1));
    driver.writeCommon(COMMON.driver_feature_select, 4, 0);
    driver.writeCommon(COMMON.driver_feature, 4, 1 << VIRTIO_F_RING_EVENT_IDX);
    driver.writeCommon(COMMON.driver_feature_select, 4, 0);
    expect(driver.readCommon(COMMON.driver_feature, 4)).toBe(0);
  });

  it("reset (status 0) drops queues and tells the device", () => {
    const { driver, resets } = echoDevice();
    driver.probe();
    expect(driver.status & VIRTIO_CONFIG_S_DRIVER_OK).toBeTruthy();
    driver.writeCommon(COMMON.queue_select, 2, 1);
    expect(driver.readCommon(COMMON.queue_enable, 2)).toBe(1);
    const before = resets.length;
    driver.status = 0;
    expect(driver.status).toBe(0);
    expect(resets).toHaveLength(before + 1);
    driver.writeCommon(COMMON.queue_select, 2, 1);
    expect(driver.readCommon(COMMON.queue_enable, 2)).toBe(0);
    expect(driver.readCommon(COMMON.queue_desc, 4)).toBe(0);
  });

  it("reads queue_size 0 for a queue that does not exist", () => {
    const { driver } = echoDevice({ numRequestQueues: 1 });
    driver.writeCommon(COMMON.queue_select, 2, 7);
    expect(driver.readCommon(COMMON.queue_size, 2)).toBe(0);
  });
});

describe("request queues", () => {
  it("hands each chain to the handler and returns the reply with an interrupt", async () => {
    const { driver, bus, handled } = echoDevice();
    driver.probe();
    const used = await driver.post(1, [Uint8Array.of(0, 1, 2, 3)], [4]);
    expect(used).toHaveLength(1);
    expect(Array.from(used[0]!.data)).toEqual([3, 2, 1, 0]);
    expect(handled).toEqual([1]);
    expect(bus.functions[0]!.irq).toBe(true);
    expect(driver.readIsr()).toBe(1);
    expect(bus.functions[0]!.irq).toBe(false); // reading the ISR acknowledged it
    expect(driver.readIsr()).toBe(0);
  });

  it("completes a chain the handler answers at once inside the kick, and raises the interrupt before the kick returns", () => {
    const { driver, bus } = echoDevice();
    driver.probe({ eventIdx: true });
    const q = driver.queues[1]!;
    for (let i = 1; i <= 3; i++) {
      q.setUsedEvent(q.usedIdx()); // as virtqueue_get_buf asks for the next interrupt
      q.add([Uint8Array.of(0, i)], [2]);
      driver.kick(1);
      expect(q.getUsed().map((u) => Array.from(u.data))).toEqual([[i, 0]]);
      expect(bus.functions[0]!.irq).toBe(true);
      expect(driver.readIsr()).toBe(1);
    }
    // A chain the handler makes wait is not there yet, and neither is its interrupt.
    q.setUsedEvent(q.usedIdx());
    q.add([Uint8Array.of(2, 9)], [2]);
    driver.kick(1);
    expect(q.getUsed()).toEqual([]);
    expect(bus.functions[0]!.irq).toBe(false);
  });

  it("reports a handler that throws or rejects, and gives the chain back empty", async () => {
    const { driver, errors } = echoDevice();
    driver.probe();
    const q = driver.queues[1]!;
    q.add([Uint8Array.of(FAIL_NOW)], [4]);
    driver.kick(1);
    expect(q.getUsed().map((u) => u.len)).toEqual([0]);
    q.add([Uint8Array.of(FAIL_LATER)], [4]);
    driver.kick(1);
    await settle();
    expect(q.getUsed().map((u) => u.len)).toEqual([0]);
    expect(errors).toEqual(["queue 1: request handler failed: broken now", "queue 1: request handler failed: broken later"]);
    expect((await driver.post(1, [Uint8Array.of(0, 7)], [2])).map((u) => Array.from(u.data))).toEqual([[7, 0]]); // and serves on
  });

  it("serves the hiprio queue and every request queue", async () => {
    const { driver, handled } = echoDevice({ numRequestQueues: 3 });
    driver.probe();
    for (const q of [0, 1, 2, 3]) expect(await driver.post(q, [Uint8Array.of(0, q)], [2])).toHaveLength(1);
    expect(handled).toEqual([0, 1, 2, 3]);
  });

  it("completes requests out of order", async () => {
    const { driver } = echoDevice();
    driver.probe();
    const slow = driver.queues[1]!.add([Uint8Array.of(10, 1)], [2]);
    const fast = driver.queues[1]!.add([Uint8Array.of(0, 2)], [2]);
    driver.kick(1);
    await settle();
    const used = driver.queues[1]!.getUsed();
    expect(used.map((u) => u.id)).toEqual([fast, slow]);
  });

  it("after a reset, neither writes nor completes requests from before it", async () => {
    const { driver, bus, errors } = echoDevice();
    driver.probe();
    driver.queues[1]!.add([Uint8Array.of(5, 1)], [2]);
    driver.kick(1);
    driver.status = 0; // reset while the request is in flight
    bus.memory.clearWrites();
    driver.probe();
    await settle();
    expect(driver.queues[1]!.getUsed()).toEqual([]);
    expect(bus.memory.writes).toEqual([]); // the old reply never reached memory the driver took back
    expect(errors).toEqual([]);
  });

  it("device reset (the machine rebooted) drops in-flight requests and lowers the interrupt line", async () => {
    const { device, driver, bus, resets } = echoDevice();
    driver.probe();
    await driver.post(1, [Uint8Array.of(0, 1)], [2]); // leaves INTx asserted until the ISR is read
    driver.queues[1]!.add([Uint8Array.of(5, 1)], [2]);
    driver.kick(1);
    bus.memory.clearWrites();
    const before = resets.length;
    device.reset();
    expect(bus.functions[0]!.irq).toBe(false);
    expect(resets).toHaveLength(before + 1);
    await settle();
    expect(bus.memory.writes).toEqual([]); // the new kernel's memory is not touched by the old request
    expect(driver.readIsr()).toBe(0);
  });

  it("remove() resets the device and takes its function off the bus", async () => {
    const { device, driver, bus, resets } = echoDevice();
    driver.probe();
    driver.queues[1]!.add([Uint8Array.of(5, 1)], [2]);
    driver.kick(1);
    bus.memory.clearWrites();
    const before = resets.length;
    device.remove();
    expect(bus.functions[0]!.removed).toBe(true);
    expect(resets).toHaveLength(before + 1);
    await settle();
    expect(bus.memory.writes).toEqual([]);
  });

  it("ignores kicks before DRIVER_OK and kicks of queues that do not exist", async () => {
    const { driver, handled } = echoDevice();
    driver.probe();
    driver.kick(9 as number);
    driver.status = 0;
    driver.kick(1);
    await settle();
    expect(handled).toEqual([]);
  });

  it("drops the chains in flight when their ring breaks, without an exception, answered at once or later", async () => {
    const { driver, errors } = echoDevice();
    driver.probe({ eventIdx: true });
    const q = driver.queues[1]!;
    q.add([Uint8Array.of(3, 1)], [2]); // answered after three turns, when the ring is broken
    q.add([Uint8Array.of(0, 2)], [2]); // answered at once, in the kick that breaks the ring
    q.publish(q.layout.size + 5); // a head past the table: the ring is unusable until a reset
    driver.kick(1);
    await settle();
    expect(driver.status & VIRTIO_CONFIG_S_NEEDS_RESET).toBeTruthy();
    expect(errors).toHaveLength(1);
    driver.probe();
    expect(await driver.post(1, [Uint8Array.of(0, 9)], [2])).toHaveLength(1);
  });

  it("puts the device into NEEDS_RESET on a malformed ring, without an exception", async () => {
    const { driver, errors, handled, bus } = echoDevice();
    driver.probe();
    const q = driver.queues[1]!;
    // A descriptor pointing past the end of guest RAM.
    q.writeDesc(0, { addr: bus.memory.size - 2, len: 64, flags: 0 });
    q.publish(0);
    bus.memory.clearWrites();
    driver.kick(1);
    await settle();
    expect(driver.status & VIRTIO_CONFIG_S_NEEDS_RESET).toBeTruthy();
    expect(errors.join()).toMatch(/queue 1/);
    expect(handled).toEqual([]);
    expect(bus.memory.writesOutside(q.deviceWritable())).toEqual([]); // at most the used ring's flags
    expect(driver.readIsr() & 2).toBe(2); // configuration change interrupt
    // The driver recovers with a reset.
    driver.probe();
    expect(driver.status & VIRTIO_CONFIG_S_NEEDS_RESET).toBe(0);
    expect(await driver.post(1, [Uint8Array.of(0, 9)], [2])).toHaveLength(1);
  });

  it("does not blame the handler when a malformed chain broke the ring under a request it was serving", async () => {
    const { driver, errors, bus } = echoDevice();
    driver.probe();
    const q = driver.queues[1]!;
    q.add([Uint8Array.of(3, 1, 2)], [3]); // answered three turns later, into a ring that is dead by then
    q.writeDesc(5, { addr: bus.memory.size - 2, len: 64, flags: 0 });
    q.publish(5);
    driver.kick(1);
    await settle();
    expect(driver.status & VIRTIO_CONFIG_S_NEEDS_RESET).toBeTruthy();
    // Found by the fuzzer: the handler's write into its closed chain was reported as a handler failure.
    expect(errors).toEqual([expect.stringMatching(/^queue 1: .*outside guest RAM/)]);
  });

  it("refuses to enable a queue laid out outside guest RAM", () => {
    const { driver, bus } = echoDevice();
    driver.status = 0;
    driver.negotiate(1n << BigInt(VIRTIO_F_VERSION_1));
    driver.writeCommon(COMMON.queue_select, 2, 1);
    driver.writeCommon(COMMON.queue_desc, 4, bus.memory.size - 16);
    driver.writeCommon(COMMON.queue_enable, 2, 1);
    expect(driver.readCommon(COMMON.queue_enable, 2)).toBe(0);
    expect(driver.status & VIRTIO_CONFIG_S_NEEDS_RESET).toBeTruthy();
    expect(driver.status & VIRTIO_CONFIG_S_FEATURES_OK).toBeTruthy();
  });

  it("keeps an address above 4 GiB out of guest RAM", () => {
    const { driver } = echoDevice();
    driver.status = 0;
    driver.negotiate(1n << BigInt(VIRTIO_F_VERSION_1));
    driver.writeCommon(COMMON.queue_select, 2, 1);
    driver.writeCommon(COMMON.queue_desc + 4, 4, 1);
    expect(driver.readCommon(COMMON.queue_desc + 4, 4)).toBe(1);
    driver.writeCommon(COMMON.queue_enable, 2, 1);
    expect(driver.status & VIRTIO_CONFIG_S_NEEDS_RESET).toBeTruthy();
  });
});

describe("bounded work per kick", () => {
  /** A device whose handler keeps every chain until the test completes it. */
  function holdingDevice(maxInflightBytes?: number) {
    const bus = new FakeBus(32 * 1024 * 1024);
    const pending: (() => void)[] = [];
    new VirtioFsDevice(bus, {
      tag: "t",
      maxInflightBytes,
      handler: () => new Promise<number>((resolve) => pending.push(() => resolve(0))),
    });
    const driver = new ReferenceDriver(bus);
    driver.probe({ queueSize: 256 });
    return { driver, pending };
  }

  it(`takes at most ${DRAIN_SLICE} chains per kick and the rest in a later task`, async () => {
    const { driver, pending } = holdingDevice();
    const q = driver.queues[1]!;
    for (let i = 0; i < 100; i++) q.add([new Uint8Array(64)], [64]);
    driver.kick(1);
    expect(pending).toHaveLength(DRAIN_SLICE);
    await new Promise((r) => setTimeout(r, 5));
    expect(pending).toHaveLength(100);
  });

  it("stops taking chains while the byte cap is in flight, and goes on as they complete", async () => {
    const { driver, pending } = holdingDevice(10 * 1024);
    const q = driver.queues[1]!;
    for (let i = 0; i < 5; i++) q.add([new Uint8Array(2048)], [2048]); // 4 KiB each
    driver.kick(1);
    expect(pending).toHaveLength(3); // 0, 4 and 8 KiB were below the cap when each was taken
    pending[0]!();
    await settle();
    expect(pending).toHaveLength(4);
    pending[1]!();
    await settle();
    expect(pending).toHaveLength(5);
    for (const done of pending.slice(2)) done();
    await settle();
    expect(q.getUsed()).toHaveLength(5);
  });
});

describe("virtio-fs device snapshot", () => {
  /** A device on `bus` whose handler answers with the request's first byte + 1, or never when that byte is 255. */
  function answering(bus: FakeBus) {
    const handled: number[] = [];
    const device = new VirtioFsDevice(bus, {
      tag: "myfs",
      numRequestQueues: 2,
      handler: (chain: DescriptorChain) => {
        const b = chain.reader.read(chain.reader.readable)[0]!;
        handled.push(b);
        if (b === 255) return new Promise<number>(() => {});
        chain.writer.write(Uint8Array.of(b + 1));
        return Promise.resolve(1);
      },
    });
    return { device, handled };
  }

  it("restores registers and rings in a new device and serves the chain that was in flight again", async () => {
    const busA = new FakeBus();
    const a = answering(busA);
    const driver = new ReferenceDriver(busA);
    driver.probe({ eventIdx: true, indirect: true });
    const q = driver.queues[1]!;
    expect((await driver.post(1, [Uint8Array.of(1)], [1])).map((u) => Array.from(u.data))).toEqual([[2]]);
    const stuck = q.add([Uint8Array.of(255)], [1]);
    driver.kick(1);
    await settle();
    expect(a.handled).toEqual([1, 255]);
    const saved = a.device.save();
    expect(saved.queues[1]!.ring?.inflight).toEqual([stuck]);

    // A new device over the same RAM, as a restored machine has it; the driver never notices.
    const busB = new FakeBus(busA.memory);
    const b = answering(busB);
    b.device.restore(structuredClone(saved));
    const regs = new ReferenceDriver(busB);
    expect(regs.status).toBe(driver.status);
    regs.writeCommon(COMMON.queue_select, 2, 1);
    expect(regs.readCommon(COMMON.queue_desc, 4)).toBe(q.layout.desc);
    expect(regs.readCommon(COMMON.queue_enable, 2)).toBe(1);
    // The stuck chain reached the new handler again: its answer lands where the driver expects it.
    expect(b.handled).toEqual([255]);
    // …and new requests go on at the next used index.
    q.add([Uint8Array.of(7)], [1]);
    new ReferenceDriver(busB).kick(1);
    await settle();
    expect(q.getUsed().map((u) => Array.from(u.data))).toEqual([[8]]); // the replayed chain still waits (255 never answers)
    expect(b.handled).toEqual([255, 7]);
    expect(q.usedIdx()).toBe(2);
  });

  it("completes a replayed chain into the used ring the driver reads", async () => {
    const busA = new FakeBus();
    let release: ((n: number) => void) | undefined;
    const held = new VirtioFsDevice(busA, { tag: "myfs", numRequestQueues: 2, handler: () => new Promise<number>((r) => (release = r)) });
    const driver = new ReferenceDriver(busA);
    driver.probe();
    const head = driver.queues[1]!.add([Uint8Array.of(41)], [1]);
    driver.kick(1);
    expect(release).toBeDefined();
    const saved = held.save();
    const busB = new FakeBus(busA.memory);
    const b = answering(busB);
    b.device.restore(saved);
    await settle();
    expect(driver.queues[1]!.getUsed().map((u) => [u.id, Array.from(u.data)])).toEqual([[head, [42]]]);
    expect(busB.functions[0]!.irq).toBe(true);
  });

  it("refuses a state that does not fit the device, and resets", () => {
    const busA = new FakeBus();
    const a = answering(busA);
    new ReferenceDriver(busA).probe();
    const saved = a.device.save();
    const cases = [
      { ...saved, queues: saved.queues.slice(1) },
      { ...saved, driverFeatures: 1n << 60n },
      { ...saved, queues: saved.queues.map((q, i) => (i === 1 ? { ...q, size: 3 } : q)) },
      { ...saved, queues: saved.queues.map((q, i) => (i === 1 ? { ...q, desc: busA.memory.size } : q)) },
      { ...saved, queues: saved.queues.map((q, i) => (i === 1 && q.ring ? { ...q, ring: { ...q.ring, inflight: [5000] } } : q)) },
      { ...saved, queues: saved.queues.map((q, i) => (i === 1 && q.ring ? { ...q, ring: { ...q.ring, usedIdx: 70000 } } : q)) },
    ];
    for (const bad of cases) {
      const b = answering(new FakeBus(busA.memory));
      expect(() => b.device.restore(bad)).toThrow(VirtqueueError);
      expect(b.device.transport.deviceStatus).toBe(0);
    }
  });
});
