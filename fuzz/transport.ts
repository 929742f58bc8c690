// A guest that ignores the rules of the transport: random register traffic, any feature bits, queues of
// any size anywhere, descriptor tables with loops, out-of-range addresses and lengths, indirect and nested
// indirect tables, avail indices that jump or wrap, notifies of queues that do not exist, resets while
// requests are in flight, and stores over rings the device is reading.
import { BAR0, COMMON, VIRTIO_CONFIG_S_ACKNOWLEDGE, VIRTIO_CONFIG_S_DRIVER, VIRTIO_CONFIG_S_DRIVER_OK, VIRTIO_CONFIG_S_FEATURES_OK, VIRTIO_F_RING_EVENT_IDX, VIRTIO_F_RING_INDIRECT_DESC, VIRTIO_F_VERSION_1 } from "../device/virtio-pci.ts";
import { VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, type SplitQueueLayout } from "../device/virtqueue.ts";
import { FUSE_ROOT_ID } from "../src/fuse/abi.ts";
import { MEM, type Guest } from "./guest.ts";
import { request, type Known } from "./messages.ts";
import { RAM, WINDOW_AT } from "./world.ts";
import type { Width } from "./input.ts";

const MiB = 1 << 20;
const FIELDS = Object.values(COMMON);
const NOTIFY_OFFSETS = [BAR0.notify, BAR0.notify + 2, BAR0.notify + 4, BAR0.notify + 1, 0xfe, 0xff];

interface Ring {
  q: number;
  layout: SplitQueueLayout;
  avail: number;
}

function desc(addr: number, len: number, flags: number, next: number): Uint8Array {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  v.setUint32(0, addr >>> 0, true);
  v.setUint32(4, Math.floor(addr / 2 ** 32) >>> 0, true);
  v.setUint32(8, len >>> 0, true);
  v.setUint16(12, flags, true);
  v.setUint16(14, next, true);
  return b;
}

export async function transportChaos(g: Guest, window: number): Promise<void> {
  const rng = g.rng;
  const known: Known = { files: [2n, 3n], dirs: [BigInt(FUSE_ROOT_ID)], others: [], fhs: [0n, 1n, 2n], dhs: [1n], window };
  const rings: Ring[] = [];
  let unique = 1n;

  const randomRegister = async () => {
    const offset = rng.chance(0.7) ? rng.pick(FIELDS) + (rng.chance(0.2) ? rng.int(4) : 0) : rng.int(BAR0.size);
    const width = rng.pick([1, 2, 4] as Width[]);
    if (rng.chance(0.3)) await g.read(offset, width);
    else await g.write(offset, width, rng.chance(0.5) ? rng.u32() : rng.pick([0, 1, 2, 0xff, 0xffff, 0xffffffff, 1024, 4096]));
  };

  const address = (): number => {
    switch (rng.int(9)) {
      case 0: return rng.int(RAM);
      case 1: return RAM - rng.int(64);
      case 2: return RAM + rng.int(2 * MiB);
      case 3: return rng.pick([0xffffffff, 2 ** 32, 2 ** 40, 2 ** 52, 0xfffff000]);
      case 4: return window ? WINDOW_AT + rng.int(window) : rng.int(RAM);
      case 5: {
        const ring = rings.length ? rng.pick(rings) : undefined;
        return ring ? rng.pick([ring.layout.desc, ring.layout.driver, ring.layout.device]) + rng.int(64) : 0;
      }
      case 6: return MEM.big;
      default: return g.alloc(rng.range(1, 8192), rng.pick([1, 16])) ?? 0;
    }
  };
  const length = (): number => rng.pick([0, 1, 15, 16, 40, 64, 80, 4096, 4097, 65536, MiB, 16 * MiB, 16 * MiB + 1, 2 ** 31, 0xffffffff, rng.int(10_000)]);
  const flags = (): number => (rng.chance(0.9) ? rng.int(8) : rng.u32() & 0xffff);

  /** A readable buffer holding a FUSE request (often hostile), and a writable one for the reply. */
  const message = (): { read: [number, number]; write: [number, number] } | null => {
    const req = request(rng, known, unique++);
    const read = g.alloc(req.bytes.length);
    const write = g.alloc(4096 + 16);
    if (read === null || write === null) return null;
    g.poke(read, req.bytes);
    return { read: [read, req.bytes.length], write: [write, 4096 + 16] };
  };

  const setup = async () => {
    rings.length = 0;
    await g.common("device_status", 1, VIRTIO_CONFIG_S_ACKNOWLEDGE);
    await g.common("device_status", 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    const valid = (1n << BigInt(VIRTIO_F_VERSION_1)) | (rng.chance(0.7) ? 1n << BigInt(VIRTIO_F_RING_INDIRECT_DESC) : 0n) | (rng.chance(0.5) ? 1n << BigInt(VIRTIO_F_RING_EVENT_IDX) : 0n);
    await g.features(rng.chance(0.85) ? valid : rng.u64());
    await g.common("device_status", 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
    for (const q of [0, 1, ...(rng.chance(0.2) ? [rng.pick([2, 3, 63, 0xffff])] : [])]) {
      const size = rng.chance(0.8) ? rng.pick([1, 2, 4, 8, 16, 64, 256, 1024]) : rng.pick([0, 3, 100, 2048, 0xffff]);
      let layout = g.ringLayout(q, size);
      if (rng.chance(0.15)) layout = { size, desc: address(), driver: address(), device: address() };
      else if (rng.chance(0.05)) layout = { ...layout, device: layout.device + rng.pick([1, 2, 0x8000]) };
      await g.queue(q, layout);
      if (rng.chance(0.1)) await g.common("queue_enable", 2, rng.pick([0, 2, 0xffff]));
      const inRam = (addr: number, len: number) => addr >= 0 && addr + len <= RAM;
      const usable = size > 0 && (size & (size - 1)) === 0 && size <= 1024 && inRam(layout.desc, 16 * size) && inRam(layout.driver, 6 + 2 * size) && inRam(layout.device, 6 + 8 * size);
      if (usable) rings.push({ q, layout, avail: 0 });
    }
    if (rng.chance(0.92)) await g.common("device_status", 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
  };

  for (let i = rng.int(8); i > 0; i--) await randomRegister();
  await setup();

  const actions = rng.range(4, 40);
  for (let i = 0; i < actions && !g.failed; i++) {
    const ring = rings.length ? rng.pick(rings) : undefined;
    const r = rng.int(100);
    if (!ring || r < 8) await randomRegister();
    else if (r < 30) {
      // A chain by hand: a request and room for its reply, or anything at all.
      const msg = rng.chance(0.6) ? message() : null;
      const len = rng.range(1, 4);
      const start = rng.int(ring.layout.size);
      for (let d = 0; d < len; d++) {
        const index = (start + d) % ring.layout.size;
        const last = d === len - 1;
        const next = rng.chance(0.85) ? (index + 1) % ring.layout.size : rng.int(rng.chance(0.5) ? ring.layout.size : 0x10000);
        let bytes: Uint8Array;
        if (msg && d === 0) bytes = desc(msg.read[0], msg.read[1], last ? 0 : VIRTQ_DESC_F_NEXT, next);
        else if (msg && d === 1) bytes = desc(msg.write[0], msg.write[1], VIRTQ_DESC_F_WRITE | (last ? 0 : VIRTQ_DESC_F_NEXT), next);
        else bytes = desc(address(), length(), flags() | (last ? 0 : VIRTQ_DESC_F_NEXT), next);
        g.poke(ring.layout.desc + 16 * index, bytes);
      }
    } else if (r < 42) {
      // An indirect table, sometimes with nested tables, loops, or a length that is no multiple of 16.
      const n = rng.range(1, 8);
      const table = g.alloc(16 * n);
      if (table === null) continue;
      const msg = rng.chance(0.5) ? message() : null;
      for (let j = 0; j < n; j++) {
        const next = rng.chance(0.85) ? j + 1 : rng.int(n + 2);
        const more = j < n - 1 ? VIRTQ_DESC_F_NEXT : 0;
        const entry = msg && j === 0 ? desc(msg.read[0], msg.read[1], more, next) : msg && j === 1 ? desc(msg.write[0], msg.write[1], VIRTQ_DESC_F_WRITE | more, next) : desc(rng.chance(0.2) ? table : address(), length(), flags() | more, next);
        g.poke(table + 16 * j, entry);
      }
      const tableLen = rng.chance(0.85) ? 16 * n : rng.pick([0, 8, 16 * n + 8, 0xffffffff, 16 * 0x10000]);
      g.poke(ring.layout.desc + 16 * rng.int(ring.layout.size), desc(table, tableLen, VIRTQ_DESC_F_INDIRECT | (rng.chance(0.1) ? VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE : 0), rng.int(ring.layout.size)));
    } else if (r < 62) {
      // Publish heads: in range, out of range, one already in flight; the index moving by one, many, or wrapping.
      const count = rng.chance(0.8) ? rng.range(1, 4) : rng.int(ring.layout.size + 3);
      for (let c = 0; c < count; c++) {
        const head = rng.chance(0.9) ? rng.int(ring.layout.size) : rng.int(0x10000);
        const slot = ring.layout.driver + 4 + 2 * ((ring.avail + c) & (ring.layout.size - 1));
        g.poke(slot, Uint8Array.of(head & 0xff, head >>> 8));
      }
      ring.avail = (rng.chance(0.9) ? ring.avail + count : rng.pick([ring.avail + 0x8000, ring.avail - 1, 0xffff, rng.u32()])) & 0xffff;
      g.poke(ring.layout.driver + 2, Uint8Array.of(ring.avail & 0xff, ring.avail >>> 8));
      if (rng.chance(0.8)) await g.notify(ring.q);
    } else if (r < 72) await g.notify(rng.chance(0.8) ? ring.q : rng.int(8), rng.chance(0.9) ? 2 : rng.pick([1, 4] as Width[]));
    else if (r < 74) await g.write(rng.pick(NOTIFY_OFFSETS), 2, rng.u32());
    else if (r < 86) await g.settle(rng.chance(0.6) ? 0 : rng.range(1, 3));
    else if (r < 90) {
      // Flags and event indices the driver owns: any value.
      const at = rng.chance(0.5) ? ring.layout.driver : ring.layout.driver + 4 + 2 * ring.layout.size;
      g.poke(at, rng.bytes(2));
    } else if (r < 93) g.poke(ring.layout.device + rng.int(6 + 8 * ring.layout.size), rng.bytes(rng.range(1, 8)));
    else if (r < 97) {
      // A reset with requests in flight, then (mostly) the driver starts over.
      if (rng.chance(0.5)) await g.reset();
      else await g.common("device_status", 1, 0);
      if (rng.chance(0.8)) await setup();
      else rings.length = 0;
    } else if (window) g.poke(WINDOW_AT + rng.int(window - 16), rng.bytes(16));
    else await randomRegister();
  }
  await g.settle(0);
}
