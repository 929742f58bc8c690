// A guest that mounts the share and sends FUSE requests the way virtiofs.ko does (probe, INIT, requests
// on well-formed chains, replies read back), learning node ids and handles from the replies to use them
// (or misuse them) later; requests and chains are often hostile, and resets come in the middle.
import { VIRTIO_F_RING_EVENT_IDX, VIRTIO_F_RING_INDIRECT_DESC, VIRTIO_F_VERSION_1 } from "../device/virtio-pci.ts";
import { FuseOpcode as O, FUSE_ROOT_ID, fuse_attr, fuse_direntplus, fuse_dirent, fuse_entry_out, fuse_open_out, fuse_out_header } from "../src/fuse/abi.ts";
import { DriverQueue, type UsedElem } from "../test/support/driver-queue.ts";
import { MEM, type Guest } from "./guest.ts";
import { header, init, knowNothing, request, type Known, type Request } from "./messages.ts";
import { WINDOW_AT } from "./world.ts";

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const ENTRY = new Set<number>([O.FUSE_LOOKUP, O.FUSE_MKNOD, O.FUSE_MKDIR, O.FUSE_SYMLINK, O.FUSE_LINK, O.FUSE_CREATE, O.FUSE_TMPFILE]);
const OPENS = new Set<number>([O.FUSE_OPEN, O.FUSE_OPENDIR]);
const INIT_FLAGS = [0x3fffffff, 0x40000000 | 0x2000 | 0x1, 0x7ffffffff, 0];

interface Mount {
  queues: DriverQueue[];
  /** Opcode of each outstanding request, by queue and head. */
  sent: Map<number, number>[];
}

export async function fuseSession(g: Guest, window: number): Promise<void> {
  const rng = g.rng;
  let k = knowNothing(window);
  let unique = 1n;
  let m = await mount(g);
  if (rng.chance(0.7)) await prologue(g, m, k);
  const n = rng.range(1, 30);
  for (let i = 0; i < n && !g.failed; i++) {
    const r = rng.int(100);
    if (r < 2) {
      // A reboot in the middle: whatever was in flight is gone, and so is everything the guest knew.
      if (rng.chance(0.5)) await g.reset();
      else await g.common("device_status", 1, 0);
      k = knowNothing(window);
      m = await mount(g);
      continue;
    }
    if (r < 5 && window) {
      // The guest's stores through a mapping reach the window's memory, not the device.
      g.poke(WINDOW_AT + rng.int(window - 64), rng.bytes(rng.range(1, 64)));
      continue;
    }
    const batch = rng.chance(0.25) ? rng.range(2, 8) : 1;
    const touched = new Set<number>();
    for (let b = 0; b < batch; b++) {
      const req = request(rng, k, unique++);
      if (post(g, m, req)) touched.add(req.queue);
    }
    for (const q of touched) if (m.queues[q]!.kickNeeded() || rng.chance(0.05)) await g.notify(q);
    await g.settle(rng.chance(0.9) ? 0 : rng.int(3));
    collect(g, m, k);
  }
  await g.settle(0);
  collect(g, m, k);
}

/** What a shell's first commands make the kernel send: names looked up, a file and a directory opened. */
async function prologue(g: Guest, m: Mount, k: Known): Promise<void> {
  const rng = g.rng;
  const cstr = (name: string) => Uint8Array.from([...new TextEncoder().encode(name), 0]);
  const send = async (opcode: number, nodeid: bigint, args: Uint8Array) => {
    const bytes = new Uint8Array(40 + args.length);
    bytes.set(header(opcode, BigInt(1000 + g.steps.length), nodeid, args.length));
    bytes.set(args, 40);
    if (post(g, m, { opcode, bytes, queue: 1, replyLens: [16 + 4096] })) await g.notify(1);
    await g.settle(0);
    collect(g, m, k);
  };
  for (const name of ["hello", "big", "dir"]) if (rng.chance(0.8)) await send(O.FUSE_LOOKUP, BigInt(FUSE_ROOT_ID), cstr(name));
  const openIn = (flags: number) => Uint8Array.of(flags, 0, 0, 0, 0, 0, 0, 0);
  if (k.files.length) await send(O.FUSE_OPEN, rng.pick(k.files), openIn(rng.pick([0, 1, 2])));
  if (rng.chance(0.5)) await send(O.FUSE_OPENDIR, rng.pick(k.dirs), openIn(0));
}

/** Probe with random features and queue sizes, then FUSE_INIT. */
async function mount(g: Guest): Promise<Mount> {
  const rng = g.rng;
  const eventIdx = rng.chance(0.5);
  const features = (1n << BigInt(VIRTIO_F_VERSION_1)) | (rng.chance(0.7) ? 1n << BigInt(VIRTIO_F_RING_INDIRECT_DESC) : 0n) | (eventIdx ? 1n << BigInt(VIRTIO_F_RING_EVENT_IDX) : 0n);
  const layouts = [g.ringLayout(0, rng.pick([1, 2, 8, 16, 64])), g.ringLayout(1, rng.pick([2, 4, 8, 16, 64, 128, 256]))];
  await g.probe(features, layouts);
  const m: Mount = {
    queues: layouts.map((l, q) => new DriverQueue(g.memory, l, { addr: MEM.heaps + q * MEM.heapSize, len: MEM.heapSize }, eventIdx)),
    sent: layouts.map(() => new Map()),
  };
  const args = init(rng, knowNothing(0));
  const v = new DataView(args.buffer, args.byteOffset);
  if (rng.chance(0.9)) {
    const flags = rng.pick(INIT_FLAGS);
    v.setUint32(12, flags >>> 0, true);
    v.setUint32(16, rng.chance(0.5) ? 0x3 : rng.u32(), true);
  }
  const bytes = new Uint8Array(40 + args.length);
  bytes.set(header(O.FUSE_INIT, 0n, BigInt(FUSE_ROOT_ID), args.length));
  bytes.set(args, 40);
  post(g, m, { opcode: O.FUSE_INIT, bytes, queue: 1, replyLens: [4096] });
  await g.notify(1);
  await g.settle(0);
  collect(g, m, knowNothing(0));
  return m;
}

/** Puts a request on its queue, its readable part sometimes split, sometimes indirect; false if it did not fit. */
function post(g: Guest, m: Mount, req: Request): boolean {
  const rng = g.rng;
  const dq = m.queues[req.queue]!;
  const parts: Uint8Array[] = [];
  let rest = req.bytes;
  while (rest.length > 1 && rng.chance(0.2)) {
    const cut = rng.range(1, rest.length - 1);
    parts.push(rest.subarray(0, cut));
    rest = rest.subarray(cut);
  }
  parts.push(rest);
  try {
    const head = dq.add(parts, req.replyLens, { indirect: rng.chance(0.3) });
    m.sent[req.queue]!.set(head, req.opcode);
    return true;
  } catch {
    return false; // the ring or the driver's heap is full: a real driver would wait too
  }
}

/** Reads the replies and learns node ids and handles from them. */
function collect(g: Guest, m: Mount, k: Known): void {
  m.queues.forEach((dq, q) => {
    let used: UsedElem[];
    try {
      used = dq.getUsed();
    } catch (e) {
      g.world.finding(`the used ring of queue ${q}: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    for (const u of used) {
      const opcode = m.sent[q]!.get(u.id);
      m.sent[q]!.delete(u.id);
      if (opcode === undefined || u.data.length < fuse_out_header.SIZE) continue;
      const v = new DataView(u.data.buffer, u.data.byteOffset, u.data.byteLength);
      if (v.getInt32(fuse_out_header.error, true) !== 0) continue;
      const at = fuse_out_header.SIZE;
      const entry = (e: number) => {
        const nodeid = v.getBigUint64(e + fuse_entry_out.nodeid, true);
        const type = v.getUint32(e + fuse_entry_out.attr + fuse_attr.mode, true) & S_IFMT;
        if (nodeid !== 0n) (type === S_IFREG ? k.files : type === S_IFDIR ? k.dirs : k.others).push(nodeid);
      };
      if (ENTRY.has(opcode) && u.data.length >= at + fuse_entry_out.SIZE) entry(at);
      if (opcode === O.FUSE_READDIRPLUS) {
        for (let e = at; e + fuse_direntplus.SIZE <= u.data.length; e += (fuse_direntplus.SIZE + v.getUint32(e + fuse_direntplus.dirent + fuse_dirent.namelen, true) + 7) & ~7) entry(e);
      }
      if (OPENS.has(opcode) && u.data.length >= at + fuse_open_out.SIZE) (opcode === O.FUSE_OPENDIR ? k.dhs : k.fhs).push(v.getBigUint64(at + fuse_open_out.fh, true));
      if ((opcode === O.FUSE_CREATE || opcode === O.FUSE_TMPFILE) && u.data.length >= at + fuse_entry_out.SIZE + fuse_open_out.SIZE) k.fhs.push(v.getBigUint64(at + fuse_entry_out.SIZE + fuse_open_out.fh, true));
    }
  });
}
