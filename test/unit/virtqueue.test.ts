import { describe, expect, it } from "vitest";
import {
  ChainBoundsError,
  SplitQueue,
  VIRTQ_AVAIL_F_NO_INTERRUPT,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_USED_F_NO_NOTIFY,
  VirtqueueError,
  type SplitQueueLayout,
  type SplitQueueOptions,
} from "../../device/virtqueue.ts";
import { DriverQueue } from "../support/driver-queue.ts";
import { FakeMemory } from "../support/fake-memory.ts";

const RAM = 0x100000;
const NEXT = VIRTQ_DESC_F_NEXT;
const WRITE = VIRTQ_DESC_F_WRITE;
const INDIRECT = VIRTQ_DESC_F_INDIRECT;

function setup(size = 8, opts: Partial<SplitQueueOptions> = {}) {
  const mem = new FakeMemory(RAM);
  const layout: SplitQueueLayout = { size, desc: 0x1000, driver: 0x9000, device: 0xb000 };
  const full = { indirect: true, eventIdx: false, ...opts };
  const drv = new DriverQueue(mem, layout, { addr: 0x20000, len: RAM - 0x20000 }, full.eventIdx);
  const q = new SplitQueue(mem, layout, full);
  return { mem, drv, q, layout };
}

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** Pops a chain that must exist. */
function popOne(q: SplitQueue) {
  const c = q.pop();
  if (!c) throw new Error("expected a chain");
  return c;
}

/** The next pop must fail with VirtqueueError, write nothing, and leave the queue refusing further use. */
function expectRejected(mem: FakeMemory, q: SplitQueue, message: RegExp) {
  mem.clearWrites();
  let err: unknown;
  try {
    q.pop();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(VirtqueueError);
  expect((err as Error).message).toMatch(message);
  expect(mem.writes).toEqual([]);
  expect(q.error).toMatch(message);
  expect(() => q.pop()).toThrow(VirtqueueError);
  expect(() => q.enableNotifications()).toThrow(VirtqueueError);
  expect(mem.writes).toEqual([]);
}

describe("SplitQueue: normal chains", () => {
  it("gathers readable segments and scatters writes across writable ones (direct)", () => {
    const { mem, drv, q } = setup();
    const head = drv.add([bytes("hello"), bytes(" "), bytes("world")], [3, 5]);
    const c = popOne(q);
    expect(c.head).toBe(head);
    expect(c.reader.readable).toBe(11);
    expect(text(c.reader.read(3))).toBe("hel");
    const four = new Uint8Array(4);
    c.reader.readInto(four);
    expect(text(four)).toBe("lo w");
    c.reader.skip(1);
    expect(c.reader.remaining).toBe(3);
    expect(c.reader.consumed).toBe(8);
    expect(text(c.reader.read(3))).toBe("rld");
    expect(c.writer.writable).toBe(8);
    c.writer.write(bytes("ABCDE"));
    c.writer.write(bytes("FG"));
    expect(c.writer.written).toBe(7);
    expect(c.writer.remaining).toBe(1);
    const allowed = drv.deviceWritable();
    q.push(c);
    expect(mem.writesOutside(allowed)).toEqual([]);
    const used = drv.getUsed();
    expect(used.map((u) => [u.id, u.len, text(u.data)])).toEqual([[head, 7, "ABCDEFG"]]);
    expect(q.pop()).toBeNull();
  });

  it("follows an indirect table", () => {
    const { mem, drv, q } = setup();
    const head = drv.add([bytes("in1"), bytes("in2")], [2, 4], { indirect: true });
    const c = popOne(q);
    expect(c.head).toBe(head);
    expect(text(c.reader.read(6))).toBe("in1in2");
    c.writer.write(bytes("xyzuvw"));
    const allowed = drv.deviceWritable();
    q.push(c);
    expect(mem.writesOutside(allowed)).toEqual([]);
    expect(drv.getUsed().map((u) => [u.id, u.len, text(u.data)])).toEqual([[head, 6, "xyzuvw"]]);
  });

  it("accepts direct descriptors followed by an indirect table", () => {
    const { drv, q } = setup();
    const a = drv.alloc(2);
    drv.mem.u8.set(bytes("ab"), a);
    const b = drv.alloc(2);
    drv.mem.u8.set(bytes("cd"), b);
    const w = drv.alloc(4);
    const table = drv.alloc(32, 16);
    drv.writeDesc(0, { addr: a, len: 2, flags: NEXT, next: 5 });
    drv.writeDesc(5, { addr: table, len: 32, flags: INDIRECT });
    drv.writeDesc(0, { addr: b, len: 2, flags: NEXT, next: 1 }, table);
    drv.writeDesc(1, { addr: w, len: 4, flags: WRITE }, table);
    drv.publish(0);
    const c = popOne(q);
    expect(text(c.reader.read(4))).toBe("abcd");
    expect(c.writer.writable).toBe(4);
    // Every descriptor as walked, the one that points at the table included, for the inspector.
    expect(c.descriptors).toEqual([
      { index: 0, addr: a, len: 2, flags: NEXT, indirect: false },
      { index: 5, addr: table, len: 32, flags: INDIRECT, indirect: false },
      { index: 0, addr: b, len: 2, flags: NEXT, indirect: true },
      { index: 1, addr: w, len: 4, flags: WRITE, indirect: true },
    ]);
  });

  it("shows the ring as it stands: newest avail and used entries, chains in flight, interrupts sent and suppressed", () => {
    const { drv, q, layout } = setup(8, { eventIdx: true });
    const a = drv.add([bytes("one")], [4]);
    const b = drv.add([bytes("two")], [4]);
    const c1 = popOne(q);
    popOne(q);
    q.push(c1);
    drv.setUsedEvent(0);
    expect(q.needsInterrupt()).toBe(true);
    drv.setUsedEvent(5); // the driver wants no interrupt before used idx passes 5
    const c3 = (drv.add([bytes("three")], [4]), popOne(q));
    q.push(c3);
    expect(q.needsInterrupt()).toBe(false);
    const s = q.snapshot(2);
    expect(s).toMatchObject({ size: 8, eventIdx: true, desc: layout.desc, availIdx: 3, lastAvail: 3, usedIdx: 2, usedEvent: 5, inflight: [b], interrupts: { sent: 1, suppressed: 1 } });
    expect(s.avail.map((e) => e.idx)).toEqual([1, 2]);
    expect(s.avail[0]!.head).toBe(b);
    expect(s.used).toEqual([
      { idx: 0, id: a, len: 0 },
      { idx: 1, id: c3.head, len: 0 },
    ]);
    // Each listed chain's descriptors: one readable, one writable, linked by NEXT.
    const chainOfB = s.descriptors.filter((d) => d.index === b || d.index === s.descriptors.find((x) => x.index === b)!.next);
    expect(chainOfB.map((d) => d.flags)).toEqual([NEXT, WRITE]);
  });

  it("handles readable-only and writable-only chains", () => {
    const { drv, q } = setup();
    const r = drv.add([bytes("only-in")], []);
    const w = drv.add([], [16]);
    const c1 = popOne(q);
    const c2 = popOne(q);
    expect([c1.reader.readable, c1.writer.writable]).toEqual([7, 0]);
    expect([c2.reader.readable, c2.writer.writable]).toEqual([0, 16]);
    expect(() => c1.writer.write(bytes("x"))).toThrow(ChainBoundsError);
    c2.writer.write(bytes("out"));
    q.push(c1);
    q.push(c2);
    expect(drv.getUsed().map((u) => [u.id, u.len, text(u.data)])).toEqual([
      [r, 0, ""],
      [w, 3, "out"],
    ]);
  });

  it("accepts zero-length descriptors, which contribute nothing and whose address is never used", () => {
    const { mem, drv, q } = setup();
    const a = drv.alloc(3);
    mem.u8.set(bytes("abc"), a);
    const w = drv.alloc(2);
    drv.writeDesc(0, { addr: 0xffffffff, addrHi: 0xffffffff, len: 0, flags: NEXT, next: 1 });
    drv.writeDesc(1, { addr: a, len: 3, flags: NEXT, next: 2 });
    drv.writeDesc(2, { addr: 0, len: 0, flags: WRITE | NEXT, next: 3 });
    drv.writeDesc(3, { addr: w, len: 2, flags: WRITE | NEXT, next: 4 });
    drv.writeDesc(4, { addr: RAM + 100, len: 0, flags: WRITE });
    drv.publish(0);
    const c = popOne(q);
    expect(text(c.reader.read(3))).toBe("abc");
    expect(c.writer.writable).toBe(2);
    mem.clearWrites();
    c.writer.write(bytes("zz"));
    expect(mem.writes).toEqual([{ addr: w, len: 2 }]);
  });

  it("returns copies from read(), so later guest writes do not change parsed data", () => {
    const { mem, drv, q } = setup();
    drv.add([bytes("stable")], []);
    const c = popOne(q);
    const got = c.reader.read(6);
    mem.u8.fill(0x21, 0x20000, 0x20006);
    expect(text(got)).toBe("stable");
  });

  it("transfers nothing when a read or write overruns the chain", () => {
    const { mem, drv, q } = setup();
    drv.add([bytes("abc"), bytes("d")], [2, 2]);
    const c = popOne(q);
    c.reader.skip(1);
    expect(() => c.reader.read(4)).toThrow(ChainBoundsError);
    expect(() => c.reader.skip(4)).toThrow(ChainBoundsError);
    expect(c.reader.remaining).toBe(3);
    expect(text(c.reader.read(3))).toBe("bcd");
    mem.clearWrites();
    expect(() => c.writer.write(bytes("12345"))).toThrow(ChainBoundsError);
    expect(mem.writes).toEqual([]);
    expect(c.writer.written).toBe(0);
    c.writer.write(bytes("1234"));
    expect(c.writer.remaining).toBe(0);
    expect(() => c.reader.read(-1)).toThrow(RangeError);
  });

  it("completes out of order and reuses the freed descriptors", () => {
    const { mem, drv, q } = setup(8);
    const heads = [0, 1, 2].map((i) => drv.add([bytes(`r${i}`)], [2]));
    const chains = [0, 1, 2].map(() => popOne(q));
    expect(chains.map((c) => c.head)).toEqual(heads);
    expect(q.inflight).toBe(3);
    const allowed = drv.deviceWritable();
    for (const i of [2, 0, 1]) {
      chains[i]!.writer.write(bytes(`w${i}`));
      q.push(chains[i]!);
    }
    expect(mem.writesOutside(allowed)).toEqual([]);
    expect(q.inflight).toBe(0);
    expect(drv.getUsed().map((u) => [u.id, text(u.data)])).toEqual([
      [heads[2], "w2"],
      [heads[0], "w0"],
      [heads[1], "w1"],
    ]);
    const again = drv.add([bytes("x")], [1]);
    expect(popOne(q).head).toBe(again);
  });

  it("reports a used length below what was written when asked, and rejects misuse of push", () => {
    const { drv, q } = setup();
    drv.add([], [8]);
    const c = popOne(q);
    c.writer.write(bytes("abcdef"));
    expect(() => q.push(c, 7)).toThrow(RangeError);
    q.push(c, 4);
    expect(drv.getUsed().map((u) => [u.len, text(u.data)])).toEqual([[4, "abcd"]]);
    expect(() => q.push(c)).toThrow(/not in flight/);
    expect(() => c.writer.write(bytes("late"))).toThrow(/already returned/);
    const other = setup();
    other.drv.add([], [1]);
    expect(() => q.push(popOne(other.q))).toThrow(/not in flight/);
  });

  it("survives 16-bit index wraparound (70002 requests through a 4-entry queue)", () => {
    const { mem, drv, q } = setup(4, { eventIdx: true });
    const n = 70002;
    const u32 = (v: number) => {
      const b = new Uint8Array(4);
      new DataView(b.buffer).setUint32(0, v, true);
      return b;
    };
    // Per batch one direct request (2 descriptors) and two indirect ones (1 each) fill the 4 descriptors;
    // 3 avail slots per batch against 4 in the ring make every slot position come round.
    // Plain comparisons in the loop: an expect() per request would dominate the run time.
    const wrong: string[] = [];
    for (let base = 0; base < n && wrong.length === 0; base += 3) {
      const heads = [0, 1, 2].map((i) => drv.add([u32(base + i)], [4], { indirect: i > 0 }));
      const chains = [0, 1, 2].map(() => popOne(q));
      if (chains.some((c, i) => c.head !== heads[i]) || q.pop() !== null) wrong.push(`pop at ${base}`);
      for (const c of [chains[2]!, chains[0]!, chains[1]!]) {
        const v = new DataView(c.reader.read(4).buffer).getUint32(0, true);
        c.writer.write(u32(~v >>> 0));
        q.push(c);
      }
      const used = drv.getUsed();
      [2, 0, 1].forEach((i, k) => {
        const u = used[k];
        if (u === undefined || u.id !== heads[i] || u.len !== 4 || new DataView(u.data.buffer).getUint32(0, true) !== ~(base + i) >>> 0) {
          wrong.push(`used ${k} at ${base}: ${JSON.stringify(u)}`);
        }
      });
      if (used.length !== 3) wrong.push(`${used.length} used at ${base}`);
      mem.clearWrites();
    }
    expect(wrong).toEqual([]);
    expect(drv.availIdx).toBe(n & 0xffff);
    expect(drv.usedIdx()).toBe(n & 0xffff);
    expect(q.enableNotifications()).toBe(false);
    expect(drv.availEvent()).toBe(n & 0xffff);
  }, 30_000); // 70,002 round trips: seconds on a loaded machine
});

describe("SplitQueue: interrupt and notification suppression", () => {
  /** Pops and completes one request. */
  function roundTrip(drv: DriverQueue, q: SplitQueue) {
    drv.add([], [1]);
    const c = popOne(q);
    c.writer.write(bytes("!"));
    q.push(c);
    drv.getUsed();
  }

  it("honours VIRTQ_AVAIL_F_NO_INTERRUPT without EVENT_IDX and ignores used_event", () => {
    const { drv, q } = setup(8, { eventIdx: false });
    expect(q.needsInterrupt()).toBe(false);
    drv.setUsedEvent(5);
    roundTrip(drv, q);
    expect(q.needsInterrupt()).toBe(true);
    expect(q.needsInterrupt()).toBe(false);
    drv.setAvailFlags(VIRTQ_AVAIL_F_NO_INTERRUPT);
    roundTrip(drv, q);
    expect(q.needsInterrupt()).toBe(false);
    drv.setAvailFlags(0);
    roundTrip(drv, q);
    expect(q.needsInterrupt()).toBe(true);
  });

  it("with EVENT_IDX interrupts only when used idx crosses used_event", () => {
    const { drv, q } = setup(8, { eventIdx: true });
    drv.setAvailFlags(VIRTQ_AVAIL_F_NO_INTERRUPT); // ignored with EVENT_IDX
    drv.setUsedEvent(2);
    const seen: boolean[] = [];
    for (let i = 0; i < 4; i++) {
      roundTrip(drv, q);
      seen.push(q.needsInterrupt());
    }
    // Interrupt after the element at index 2 (used_event) is published, i.e. used idx goes 2 -> 3.
    expect(seen).toEqual([false, false, true, false]);
  });

  it("with EVENT_IDX judges a whole batch", () => {
    const { drv, q } = setup(8, { eventIdx: true });
    for (let i = 0; i < 3; i++) drv.add([], [1]);
    const cs = [0, 1, 2].map(() => popOne(q));
    drv.setUsedEvent(1);
    for (const c of cs) q.push(c);
    expect(q.needsInterrupt()).toBe(true); // used idx 0 -> 3 passed 1
    drv.getUsed();
    for (let i = 0; i < 3; i++) drv.add([], [1]);
    const more = [0, 1, 2].map(() => popOne(q));
    drv.setUsedEvent(6);
    for (const c of more) q.push(c);
    expect(q.needsInterrupt()).toBe(false); // entries 3..5 published, used_event 6 not yet
    drv.getUsed();
    roundTrip(drv, q);
    expect(q.needsInterrupt()).toBe(true); // entry 6 published
  });

  it("with EVENT_IDX always interrupts after 65536 or more pushes since the last check", () => {
    const { drv, q } = setup(1, { eventIdx: true });
    drv.setUsedEvent(0x8000);
    for (let i = 0; i < 0x10000; i++) roundTrip(drv, q);
    // used idx is back where it was: the 16-bit formula alone would say no.
    expect(drv.usedIdx()).toBe(0);
    expect(q.needsInterrupt()).toBe(true);
  });

  it("with EVENT_IDX moves avail_event so the driver kicks only when the device is idle", () => {
    const { mem, drv, q } = setup(8, { eventIdx: true });
    drv.add([], [1]);
    expect(drv.kickNeeded()).toBe(true); // avail_event 0 starts enabled
    mem.clearWrites();
    q.disableNotifications();
    expect(mem.writes).toEqual([]);
    popOne(q);
    drv.add([], [1]);
    expect(drv.kickNeeded()).toBe(false); // the device is busy draining
    // The lost-wakeup race: a chain arrived after the last pop, so re-enabling reports it.
    expect(q.enableNotifications()).toBe(true);
    expect(drv.availEvent()).toBe(1);
    popOne(q);
    expect(q.enableNotifications()).toBe(false);
    expect(drv.availEvent()).toBe(2);
    expect(mem.writesOutside([{ addr: 0xb000 + 4 + 8 * 8, len: 2 }])).toEqual([]);
    drv.add([], [1]);
    expect(drv.kickNeeded()).toBe(true);
  });

  it("without EVENT_IDX toggles VIRTQ_USED_F_NO_NOTIFY", () => {
    const { drv, q } = setup(8, { eventIdx: false });
    q.disableNotifications();
    expect(drv.usedFlags()).toBe(VIRTQ_USED_F_NO_NOTIFY);
    drv.add([], [1]);
    expect(drv.kickNeeded()).toBe(false);
    expect(q.enableNotifications()).toBe(true);
    expect(drv.usedFlags()).toBe(0);
    popOne(q);
    expect(q.enableNotifications()).toBe(false);
    drv.add([], [1]);
    expect(drv.kickNeeded()).toBe(true);
  });
});

describe("SplitQueue: hostile guest", () => {
  it("rejects a buffer that ends past guest RAM", () => {
    const { mem, drv, q } = setup();
    drv.writeDesc(0, { addr: RAM - 4, len: 8, flags: WRITE });
    drv.publish(0);
    expectRejected(mem, q, /outside guest RAM/);
  });

  it("accepts a buffer that ends exactly at the end of guest RAM", () => {
    const { drv, q } = setup();
    drv.writeDesc(0, { addr: RAM - 8, len: 8, flags: WRITE });
    drv.publish(0);
    expect(popOne(q).writer.writable).toBe(8);
  });

  it("rejects an address with the high 32 bits set", () => {
    const { mem, drv, q } = setup();
    drv.writeDesc(0, { addr: 0x20000, addrHi: 1, len: 16 });
    drv.publish(0);
    expectRejected(mem, q, /outside guest RAM/);
  });

  it("rejects addr + len that wraps past 2^32 into RAM", () => {
    const { mem, drv, q } = setup();
    drv.writeDesc(0, { addr: 0xfffff000, len: 0x2000, flags: WRITE });
    drv.publish(0);
    expectRejected(mem, q, /outside guest RAM/);
  });

  it("rejects a descriptor loop", () => {
    const { mem, drv, q } = setup();
    drv.writeDesc(0, { addr: 0x20000, len: 4, flags: NEXT, next: 1 });
    drv.writeDesc(1, { addr: 0x20010, len: 4, flags: NEXT, next: 0 });
    drv.publish(0);
    expectRejected(mem, q, /longer than queue size/);
  });

  it("rejects an indirect chain longer than the queue, and accepts one exactly as long", () => {
    const ok = setup(4);
    ok.drv.add([bytes("a"), bytes("b")], [1, 1], { indirect: true });
    expect(popOne(ok.q).reader.readable).toBe(2);

    const { mem, drv, q } = setup(4);
    drv.add([bytes("a"), bytes("b"), bytes("c")], [1, 1], { indirect: true });
    expectRejected(mem, q, /longer than queue size 4/);
  });

  it("rejects an indirect descriptor inside an indirect table", () => {
    const { mem, drv, q } = setup();
    const inner = drv.alloc(16, 16);
    drv.writeDesc(0, { addr: 0x20100, len: 4 }, inner);
    const outer = drv.alloc(16, 16);
    drv.writeDesc(0, { addr: inner, len: 16, flags: INDIRECT }, outer);
    drv.writeDesc(0, { addr: outer, len: 16, flags: INDIRECT });
    drv.publish(0);
    expectRejected(mem, q, /INDIRECT inside an indirect table/);
  });

  it("rejects INDIRECT together with NEXT", () => {
    const { mem, drv, q } = setup();
    const table = drv.alloc(16, 16);
    drv.writeDesc(0, { addr: 0x20100, len: 4 }, table);
    drv.writeDesc(0, { addr: table, len: 16, flags: INDIRECT | NEXT, next: 1 });
    drv.writeDesc(1, { addr: 0x20200, len: 4 });
    drv.publish(0);
    expectRejected(mem, q, /INDIRECT together with NEXT/);
  });

  for (const len of [24, 0, 8]) {
    it(`rejects an indirect table of length ${len}`, () => {
      const { mem, drv, q } = setup();
      drv.writeDesc(0, { addr: drv.alloc(32, 16), len, flags: INDIRECT });
      drv.publish(0);
      expectRejected(mem, q, /not a non-zero multiple of 16/);
    });
  }

  it("rejects an indirect table outside guest RAM", () => {
    const { mem, drv, q } = setup();
    drv.writeDesc(0, { addr: RAM - 16, len: 32, flags: INDIRECT });
    drv.publish(0);
    expectRejected(mem, q, /indirect table outside guest RAM/);
  });

  it("rejects INDIRECT when VIRTIO_F_INDIRECT_DESC was not negotiated", () => {
    const { mem, drv, q } = setup(8, { indirect: false });
    drv.writeDesc(0, { addr: drv.alloc(16, 16), len: 16, flags: INDIRECT });
    drv.publish(0);
    expectRejected(mem, q, /without VIRTIO_F_INDIRECT_DESC/);
  });

  it("rejects a next index beyond the indirect table", () => {
    const { mem, drv, q } = setup();
    const table = drv.alloc(32, 16);
    drv.writeDesc(0, { addr: 0x20100, len: 4, flags: NEXT, next: 2 }, table);
    drv.writeDesc(1, { addr: 0x20200, len: 4 }, table);
    drv.writeDesc(0, { addr: table, len: 32, flags: INDIRECT });
    drv.publish(0);
    expectRejected(mem, q, /next index 2 >= table length 2/);
  });

  it("rejects a head index >= queue size", () => {
    const { mem, drv, q } = setup(8);
    drv.publish(8);
    expectRejected(mem, q, /head index 8 >= queue size 8/);
  });

  it("rejects a next index >= queue size", () => {
    const { mem, drv, q } = setup(8);
    drv.writeDesc(0, { addr: 0x20000, len: 4, flags: NEXT, next: 8 });
    drv.publish(0);
    expectRejected(mem, q, /next index 8 >= queue size 8/);
  });

  it("rejects a readable descriptor after a writable one, also across an indirect table", () => {
    const a = setup();
    a.drv.writeDesc(0, { addr: 0x20000, len: 4, flags: WRITE | NEXT, next: 1 });
    a.drv.writeDesc(1, { addr: 0x20010, len: 4 });
    a.drv.publish(0);
    expectRejected(a.mem, a.q, /readable after device-writable/);

    const b = setup();
    const table = b.drv.alloc(16, 16);
    b.drv.writeDesc(0, { addr: 0x20100, len: 4 }, table);
    b.drv.writeDesc(0, { addr: 0x20000, len: 0, flags: WRITE | NEXT, next: 1 });
    b.drv.writeDesc(1, { addr: table, len: 16, flags: INDIRECT });
    b.drv.publish(0);
    expectRejected(b.mem, b.q, /indirect descriptor 0: device-readable after device-writable/);
  });

  it("rejects an avail idx more than queue size ahead (or behind) of the device", () => {
    const a = setup(8);
    a.drv.setAvailIdx(9);
    expectRejected(a.mem, a.q, /9 entries ahead/);

    const b = setup(8);
    b.drv.add([], [1]);
    popOne(b.q);
    b.drv.setAvailIdx(0); // went backwards: 0xffff ahead
    expectRejected(b.mem, b.q, /65535 entries ahead/);
  });

  it("rejects a head the device still holds", () => {
    const { mem, drv, q } = setup();
    const head = drv.add([], [4]);
    popOne(q);
    drv.publish(head);
    expectRejected(mem, q, /already in use/);
  });

  it("bounds the readable and the writable bytes of a chain separately", () => {
    const ok = setup(8, { maxChainBytes: 100 });
    ok.drv.add([new Uint8Array(60), new Uint8Array(40)], [50, 50]);
    expect(popOne(ok.q).reader.readable).toBe(100);

    const r = setup(8, { maxChainBytes: 100 });
    r.drv.add([new Uint8Array(60), new Uint8Array(41)], [1]);
    expectRejected(r.mem, r.q, /more than 100 readable bytes/);

    const w = setup(8, { maxChainBytes: 100 });
    w.drv.add([new Uint8Array(100)], [100, 1], { indirect: true });
    expectRejected(w.mem, w.q, /more than 100 writable bytes/);
  });

  it("bounds chains at 16 MiB by default", () => {
    const { mem, drv, q } = setup(32);
    // 17 descriptors each covering all of the 1 MiB RAM: every one is in bounds, the sum is 17 MiB.
    for (let i = 0; i < 17; i++) drv.writeDesc(i, { addr: 0, len: RAM, flags: WRITE | (i < 16 ? NEXT : 0), next: i + 1 });
    drv.publish(0);
    expectRejected(mem, q, /more than 16777216 writable bytes/);
  });

  it("refuses every operation after close(), including in-flight writers", () => {
    const { mem, drv, q } = setup();
    drv.add([bytes("req")], [4]);
    const c = popOne(q);
    q.close();
    mem.clearWrites();
    expect(() => c.writer.write(bytes("late"))).toThrow(VirtqueueError);
    expect(() => c.reader.read(1)).toThrow(VirtqueueError);
    expect(() => q.push(c)).toThrow(VirtqueueError);
    expect(() => q.pop()).toThrow(/reset/);
    expect(() => q.needsInterrupt()).toThrow(VirtqueueError);
    expect(() => q.disableNotifications()).toThrow(VirtqueueError);
    expect(mem.writes).toEqual([]);
  });

  it("never throws anything but VirtqueueError and never writes outside the used ring or a chain (fuzz)", () => {
    let seed = 0x9e3779b9;
    const rnd = (n: number) => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    const ram = 0x10000;
    const size = 8;
    const layout: SplitQueueLayout = { size, desc: 0x100, driver: 0x200, device: 0x300 };
    const usedRing = { addr: layout.device, len: 6 + 8 * size };
    const tables = [0x1000, 0x1100, 0x1200];
    const mem = new FakeMemory(ram);
    const drv = new DriverQueue(mem, layout, { addr: 0x2000, len: 0x1000 });
    const randomDesc = (table: number, i: number) => {
      const kind = rnd(10);
      const addr = kind < 6 ? 0x4000 + rnd(0xb000) : kind < 8 ? tables[rnd(3)]! : rnd(0xffffffff);
      const len = kind === 6 ? 16 * rnd(6) : kind === 9 ? rnd(0xffffffff) : rnd(0x3000);
      drv.writeDesc(i, { addr, addrHi: rnd(20) === 0 ? 1 : 0, len, flags: rnd(8), next: rnd(size + 2) }, table);
    };
    let chains = 0;
    let errors = 0;
    for (let iter = 0; iter < 3000; iter++) {
      for (let i = 0; i < size; i++) randomDesc(layout.desc, i);
      for (const t of tables) for (let i = 0; i < 16; i++) randomDesc(t, i);
      for (let i = 0; i < size; i++) mem.u8[layout.driver + 4 + 2 * i] = rnd(size + 1);
      drv.setAvailIdx(rnd(size + 3));
      const q = new SplitQueue(mem, layout, { indirect: rnd(2) === 0, eventIdx: rnd(2) === 0, maxChainBytes: 0x8000 });
      /** Runs a queue operation and checks it wrote only into the used ring. */
      const ringOp = <T>(op: () => T): T => {
        mem.clearWrites();
        const result = op();
        expect(mem.writesOutside([usedRing])).toEqual([]);
        return result;
      };
      try {
        for (let c = ringOp(() => q.pop()); c; c = ringOp(() => q.pop())) {
          chains++;
          expect(c.reader.read(c.reader.readable).length).toBe(c.reader.readable);
          mem.clearWrites();
          const chain = c;
          chain.writer.write(new Uint8Array(chain.writer.writable).fill(0xa5));
          // Exactly the chain's writable bytes went out (FakeMemory itself rejects anything outside RAM).
          expect(mem.writes.reduce((sum, w) => sum + w.len, 0)).toBe(chain.writer.writable);
          ringOp(() => q.push(chain));
          ringOp(() => q.needsInterrupt());
          ringOp(() => q.enableNotifications());
        }
      } catch (e) {
        if (!(e instanceof VirtqueueError)) throw e;
        errors++;
      }
    }
    expect(chains).toBeGreaterThan(100);
    expect(errors).toBeGreaterThan(100);
  });
});

describe("SplitQueue: layout validation", () => {
  const mem = new FakeMemory(RAM);
  const opts = { indirect: true, eventIdx: true };
  const good: SplitQueueLayout = { size: 256, desc: 0x1000, driver: 0x2000, device: 0x3000 };

  it("accepts valid layouts, including areas that end exactly at the end of RAM", () => {
    expect(() => new SplitQueue(mem, good, opts)).not.toThrow();
    expect(() => new SplitQueue(mem, { ...good, size: 1 }, opts)).not.toThrow();
    expect(() => new SplitQueue(mem, { ...good, size: 1024 }, opts)).not.toThrow();
    expect(() => new SplitQueue(mem, { ...good, desc: RAM - 16 * 256 }, opts)).not.toThrow();
    expect(() => new SplitQueue(mem, { ...good, driver: RAM - (6 + 2 * 256) }, opts)).not.toThrow();
    // 6 + 8 * size is never a multiple of 4, so the closest 4-aligned used ring ends 2 bytes short.
    expect(() => new SplitQueue(mem, { ...good, device: RAM - (6 + 8 * 256) - 2 }, opts)).not.toThrow();
  });

  const bad: [string, Partial<SplitQueueLayout>, RegExp][] = [
    ["size 0", { size: 0 }, /power of 2/],
    ["size 3", { size: 3 }, /power of 2/],
    ["size 2048", { size: 2048 }, /power of 2 in 1..1024/],
    ["misaligned descriptor table", { desc: 0x1008 }, /descriptor table .* 16-byte aligned/],
    ["misaligned available ring", { driver: 0x2001 }, /available ring .* 2-byte aligned/],
    ["misaligned used ring", { device: 0x3002 }, /used ring .* 4-byte aligned/],
    ["negative address", { desc: -16 }, /descriptor table address -16 is invalid/],
    ["address beyond 2^53", { device: 2 ** 60 }, /used ring address .* is invalid/],
    ["descriptor table past RAM", { desc: RAM - 16 * 255 }, /descriptor table .* outside guest RAM/],
    ["available ring past RAM", { driver: RAM - (6 + 2 * 256) + 2 }, /available ring .* outside guest RAM/],
    ["used ring past RAM", { device: RAM - (6 + 8 * 256) + 2 }, /used ring .* outside guest RAM/],
    ["used ring above 4 GiB", { device: 2 ** 32 }, /used ring .* outside guest RAM/],
  ];
  for (const [name, patch, message] of bad) {
    it(`rejects ${name}`, () => {
      expect(() => new SplitQueue(mem, { ...good, ...patch }, opts)).toThrow(VirtqueueError);
      expect(() => new SplitQueue(mem, { ...good, ...patch }, opts)).toThrow(message);
    });
  }
});
