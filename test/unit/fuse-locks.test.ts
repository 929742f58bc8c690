// File locks kept by the device for guests sharing one backend: the lock table's POSIX and flock rules,
// then two devices and two reference drivers over one memfs tree, as two guests would use them.
import { Volume } from "memfs";
import { describe, expect, it } from "vitest";
import { VirtioFsDevice } from "../../device/virtio-fs.ts";
import { FUSE_FLOCK_LOCKS, FUSE_INIT_EXT, FUSE_LK_FLOCK, FUSE_NO_OPEN_SUPPORT, FUSE_POSIX_LOCKS, FUSE_ROOT_ID, FuseOpcode as Op, fuse_entry_out, fuse_file_lock, fuse_flush_in, fuse_init_out, fuse_lk_in, fuse_lk_out, fuse_open_in, fuse_open_out, fuse_out_header, fuse_release_in, initFlags } from "../../src/fuse/abi.ts";
import { F_RDLCK, F_UNLCK, F_WRLCK, LOCKS_PER_INODE, LockTable, OFFSET_MAX, type LockRequest } from "../../src/fuse/locks.ts";
import { FuseServer } from "../../src/fuse/server.ts";
import type { LockMode } from "../../src/fuse/session.ts";
import { MemFs } from "../../src/fs/memfs/memfs.ts";
import { Errno } from "../../src/vfs/errno.ts";
import type { FileSystem } from "../../src/vfs/filesystem.ts";
import { FakeBus } from "../support/fake-bus.ts";
import { ReferenceDriver, args, cstr, parseReply, settle, type FuseReply } from "../support/reference-driver.ts";

const A = { name: "A" };
const B = { name: "B" };
const C = { name: "C" };
const lock = (o: Partial<LockRequest> & { type: number }): LockRequest => ({ ino: 7, flock: false, owner: 1n, fh: 1, start: 0n, end: OFFSET_MAX, pid: 100, ...o });
/** The owner's locks byte by byte, as another session sees them: w, r or "." (none), up to the last lock. */
const ranges = (t: LockTable) => {
  let out = "";
  for (let at = 0n; at < 100n; at++) {
    const c = t.test(C, lock({ type: F_WRLCK, owner: 999n, start: at, end: at }));
    out += !c ? "." : c.type === F_WRLCK ? "w" : "r";
  }
  return out.replace(/\.+$/, "");
};

describe("the lock table", () => {
  it("splits and merges one owner's record locks as POSIX says", () => {
    const t = new LockTable();
    expect(t.set(A, lock({ type: F_WRLCK, start: 0n, end: 9n }), false)).toBe(0);
    expect(t.set(A, lock({ type: F_RDLCK, start: 3n, end: 5n }), false)).toBe(0);
    expect(ranges(t)).toBe("wwwrrrwwww");
    expect(t.set(A, lock({ type: F_UNLCK, start: 8n, end: 8n }), false)).toBe(0);
    expect(ranges(t)).toBe("wwwrrrww.w");
    expect(t.set(A, lock({ type: F_WRLCK, start: 3n, end: 8n }), false)).toBe(0);
    expect(ranges(t)).toBe("wwwwwwwwww");
    expect(t.size.held).toBe(1); // merged back into one lock
    expect(t.set(A, lock({ type: F_UNLCK }), false)).toBe(0);
    expect(t.size.held).toBe(0);
  });

  it("read locks share, a write lock excludes, and GETLK names the holder", () => {
    const t = new LockTable();
    expect(t.set(A, lock({ type: F_RDLCK, start: 10n, end: 19n }), false)).toBe(0);
    expect(t.set(B, lock({ type: F_RDLCK, start: 15n, end: 30n }), false)).toBe(0);
    expect(t.set(B, lock({ type: F_WRLCK, start: 18n, end: 18n }), false)).toBe(Errno.EAGAIN);
    expect(t.set(B, lock({ type: F_WRLCK, start: 20n, end: 20n }), false)).toBe(0); // B's own read lock upgrades
    // Same session, other owner: the holder's pid; another session's lock: pid 0.
    expect(t.test(A, lock({ type: F_WRLCK, owner: 2n, start: 0n, end: 12n }))).toEqual({ type: F_RDLCK, start: 10n, end: 19n, pid: 100 });
    expect(t.test(C, lock({ type: F_WRLCK, start: 20n, end: 20n }))).toEqual({ type: F_WRLCK, start: 20n, end: 20n, pid: 0 });
    expect(t.test(C, lock({ type: F_RDLCK, start: 0n, end: 19n }))).toBeUndefined();
  });

  it("a waiter is granted when the holder unlocks, in arrival order, and not before", async () => {
    const t = new LockTable();
    t.set(A, lock({ type: F_WRLCK }), false);
    const order: string[] = [];
    const b = Promise.resolve(t.set(B, lock({ type: F_WRLCK, start: 5n, end: 5n }), true)).then((e) => order.push(`B${e}`));
    const c = Promise.resolve(t.set(C, lock({ type: F_WRLCK, start: 5n, end: 9n }), true)).then((e) => order.push(`C${e}`));
    await settle();
    expect(order).toEqual([]);
    expect(t.size.waiting).toBe(2);
    t.set(A, lock({ type: F_UNLCK, start: 0n, end: 4n }), false); // not enough
    await settle();
    expect(order).toEqual([]);
    t.set(A, lock({ type: F_UNLCK }), false);
    await b;
    await settle();
    expect(order).toEqual(["B0"]); // C still conflicts with B
    t.releaseOwner(B, 7, 1n);
    await c;
    expect(order).toEqual(["B0", "C0"]);
  });

  it("refuses a wait that closes a cycle (EDEADLK) and answers waiters EINTR when their session ends", async () => {
    const t = new LockTable();
    t.set(A, lock({ type: F_WRLCK, start: 0n, end: 0n }), false);
    t.set(B, lock({ type: F_WRLCK, start: 1n, end: 1n }), false);
    const a = t.set(A, lock({ type: F_WRLCK, start: 1n, end: 1n }), true); // A waits for B
    expect(t.set(B, lock({ type: F_WRLCK, start: 0n, end: 0n }), true)).toBe(Errno.EDEADLK);
    t.endSession(A);
    await expect(a).resolves.toBe(Errno.EINTR);
    expect(t.set(B, lock({ type: F_WRLCK, start: 0n, end: 0n }), false)).toBe(0); // A's lock went too
  });

  it("keeps flock apart from record locks, converts by dropping, and releases with the handle", () => {
    const t = new LockTable();
    const fl = (o: Partial<LockRequest> & { type: number }) => lock({ flock: true, ...o });
    expect(t.set(A, fl({ type: F_WRLCK, owner: 5n, fh: 3 }), false)).toBe(0);
    expect(t.set(B, lock({ type: F_WRLCK }), false)).toBe(0); // a record lock does not meet a flock lock
    expect(t.set(B, fl({ type: F_RDLCK }), false)).toBe(Errno.EAGAIN);
    expect(t.set(A, fl({ type: F_RDLCK, owner: 5n, fh: 3 }), false)).toBe(0); // downgrade
    expect(t.set(B, fl({ type: F_RDLCK }), false)).toBe(0);
    t.releaseHandle(A, 3);
    t.releaseHandle(B, 1);
    expect(t.size.held).toBe(0);
  });

  it("bounds the locks one session holds on one inode (ENOLCK)", () => {
    const t = new LockTable();
    for (let i = 0; i < LOCKS_PER_INODE; i++) expect(t.set(A, lock({ type: F_WRLCK, start: BigInt(2 * i), end: BigInt(2 * i) }), false)).toBe(0);
    expect(t.set(A, lock({ type: F_RDLCK, start: 1n, end: 1n }), false)).toBe(Errno.ENOLCK);
    expect(t.set(A, lock({ type: F_UNLCK }), false)).toBe(0);
    expect(t.size.held).toBe(0);
  });
});

/** One guest: a device and a reference driver over a fake machine, serving `fs`. */
function guest(fs: FileSystem, locks?: LockMode) {
  const bus = new FakeBus(32 * 1024 * 1024);
  const server = new FuseServer({ fs, locks });
  let ended = Promise.resolve();
  new VirtioFsDevice(bus, { tag: "t", handler: server.handle, onReset: () => (ended = server.reset()) });
  const d = new ReferenceDriver(bus);
  const probe = () => d.probe({ indirect: true, eventIdx: true });
  probe();
  /** The guest reboots: the device resets (replies of requests in flight go nowhere) and the driver probes again. */
  const reboot = async () => {
    probe();
    await ended;
  };
  return { d, server, reboot };
}

const LINUX_FLAGS = FUSE_POSIX_LOCKS | FUSE_FLOCK_LOCKS | FUSE_NO_OPEN_SUPPORT | FUSE_INIT_EXT;

async function initFlagsOf(d: ReferenceDriver): Promise<bigint> {
  const r = await d.init(Number(LINUX_FLAGS & 0xffff_ffffn), Number(LINUX_FLAGS >> 32n));
  expect(r.error).toBe(0);
  return initFlags(r.view.getUint32(fuse_init_out.flags, true), r.view.getUint32(fuse_init_out.flags2, true));
}

async function openFile(d: ReferenceDriver, name: string): Promise<{ nodeid: bigint; fh: bigint }> {
  const e = await d.fuse(Op.FUSE_LOOKUP, FUSE_ROOT_ID, cstr(name));
  expect(e.error).toBe(0);
  const nodeid = e.view.getBigUint64(fuse_entry_out.nodeid, true);
  const o = await d.fuse(Op.FUSE_OPEN, nodeid, args(fuse_open_in.SIZE, (v) => v.setUint32(fuse_open_in.flags, 2, true)));
  if (o.error === -Errno.ENOSYS) return { nodeid, fh: 0n }; // zero-message open
  expect(o.error).toBe(0);
  return { nodeid, fh: o.view.getBigUint64(fuse_open_out.fh, true) };
}

const lkIn = (fh: bigint, owner: bigint, type: number, start = 0n, end = OFFSET_MAX, flags = 0) =>
  args(fuse_lk_in.SIZE, (v) => {
    v.setBigUint64(fuse_lk_in.fh, fh, true);
    v.setBigUint64(fuse_lk_in.owner, owner, true);
    v.setBigUint64(fuse_lk_in.lk + fuse_file_lock.start, start, true);
    v.setBigUint64(fuse_lk_in.lk + fuse_file_lock.end, end, true);
    v.setUint32(fuse_lk_in.lk + fuse_file_lock.type, type, true);
    v.setUint32(fuse_lk_in.lk + fuse_file_lock.pid, 42, true);
    v.setUint32(fuse_lk_in.lk_flags, flags, true);
  });

/** Posts a request on queue 1 without waiting for its reply; `replies` collects every completion by unique. */
function poster(d: ReferenceDriver) {
  const replies = new Map<bigint, FuseReply>();
  return {
    replies,
    async post(opcode: number, nodeid: bigint, a: Uint8Array): Promise<bigint> {
      const req = d.request(opcode, nodeid, a);
      const unique = new DataView(req.buffer).getBigUint64(8, true);
      for (const u of await d.post(1, [req], [fuse_out_header.SIZE + 4096])) {
        const r = parseReply(u);
        replies.set(r.unique, r);
      }
      return unique;
    },
  };
}

describe("two guests on one backend", () => {
  const files = () => new MemFs(Volume.fromJSON({ "/f": "data", "/g": "" }));

  it("with one server the guest keeps its locks; with two (auto) the device does, without zero-message open", async () => {
    const fs = files();
    const opens = async (d: ReferenceDriver) => (await openFile(d, "f")).fh !== 0n;
    const one = guest(fs);
    expect((await initFlagsOf(one.d)) & (FUSE_POSIX_LOCKS | FUSE_FLOCK_LOCKS)).toBe(0n);
    expect(one.server.deviceLocks).toBe(false);
    expect(await opens(one.d)).toBe(false); // zero-message open
    const two = guest(fs);
    expect((await initFlagsOf(two.d)) & (FUSE_POSIX_LOCKS | FUSE_FLOCK_LOCKS)).toBe(FUSE_POSIX_LOCKS | FUSE_FLOCK_LOCKS);
    expect(await opens(two.d)).toBe(true); // RELEASE must come: it drops flock and OFD locks
    await two.server.close();
    await one.reboot();
    expect((await initFlagsOf(one.d)) & FUSE_POSIX_LOCKS).toBe(0n); // alone again
    const again = await initFlagsOf(guest(files(), "device").d);
    expect(again & FUSE_POSIX_LOCKS).toBe(FUSE_POSIX_LOCKS); // asked for, alone
  });

  it("B's SETLK fails while A holds the lock, B's SETLKW waits without stalling B, and A's FLUSH wakes it", async () => {
    const fs = files();
    const a = guest(fs, "device");
    const b = guest(fs, "device");
    await initFlagsOf(a.d);
    await initFlagsOf(b.d);
    const fa = await openFile(a.d, "f");
    const fb = await openFile(b.d, "f");
    expect((await a.d.fuse(Op.FUSE_SETLK, fa.nodeid, lkIn(fa.fh, 1n, F_WRLCK, 0n, 9n))).error).toBe(0);
    expect((await b.d.fuse(Op.FUSE_SETLK, fb.nodeid, lkIn(fb.fh, 1n, F_WRLCK, 5n, 5n))).error).toBe(-Errno.EAGAIN);
    const held = await b.d.fuse(Op.FUSE_GETLK, fb.nodeid, lkIn(fb.fh, 1n, F_RDLCK, 0n, 100n));
    const lk = (at: number) => held.view.getBigUint64(fuse_lk_out.lk + at, true);
    expect([lk(fuse_file_lock.start), lk(fuse_file_lock.end), held.view.getUint32(fuse_lk_out.lk + fuse_file_lock.type, true), held.view.getUint32(fuse_lk_out.lk + fuse_file_lock.pid, true)]).toEqual([0n, 9n, F_WRLCK, 0]);

    const pb = poster(b.d);
    const waiting = await pb.post(Op.FUSE_SETLKW, fb.nodeid, lkIn(fb.fh, 1n, F_WRLCK, 5n, 5n));
    const other = await pb.post(Op.FUSE_GETATTR, fb.nodeid, new Uint8Array(16));
    expect(pb.replies.get(other)?.error).toBe(0); // B's queue goes on
    expect(pb.replies.has(waiting)).toBe(false);
    // A closes a descriptor of the file: its record locks on it go, and B gets the lock.
    const flush = args(fuse_flush_in.SIZE, (v) => {
      v.setBigUint64(fuse_flush_in.fh, fa.fh, true);
      v.setBigUint64(fuse_flush_in.lock_owner, 1n, true);
    });
    expect((await a.d.fuse(Op.FUSE_FLUSH, fa.nodeid, flush)).error).toBe(0);
    await settle();
    await pb.post(Op.FUSE_GETATTR, fb.nodeid, new Uint8Array(16));
    expect(pb.replies.get(waiting)?.error).toBe(0);
    expect((await a.d.fuse(Op.FUSE_SETLK, fa.nodeid, lkIn(fa.fh, 1n, F_RDLCK, 5n, 5n))).error).toBe(-Errno.EAGAIN);
  });

  it("flock locks go with RELEASE, and a guest's reset drops its locks and answers its waiter", async () => {
    const fs = files();
    const a = guest(fs, "device");
    const b = guest(fs, "device");
    await initFlagsOf(a.d);
    await initFlagsOf(b.d);
    const fa = await openFile(a.d, "g");
    const fb = await openFile(b.d, "g");
    expect((await a.d.fuse(Op.FUSE_SETLK, fa.nodeid, lkIn(fa.fh, 7n, F_WRLCK, 0n, OFFSET_MAX, FUSE_LK_FLOCK))).error).toBe(0);
    expect((await b.d.fuse(Op.FUSE_SETLK, fb.nodeid, lkIn(fb.fh, 8n, F_RDLCK, 0n, OFFSET_MAX, FUSE_LK_FLOCK))).error).toBe(-Errno.EAGAIN);
    const release = args(fuse_release_in.SIZE, (v) => v.setBigUint64(fuse_release_in.fh, fa.fh, true));
    expect((await a.d.fuse(Op.FUSE_RELEASE, fa.nodeid, release)).error).toBe(0);
    expect((await b.d.fuse(Op.FUSE_SETLK, fb.nodeid, lkIn(fb.fh, 8n, F_WRLCK, 0n, OFFSET_MAX, FUSE_LK_FLOCK))).error).toBe(0);

    // A waits for B's flock lock; B's machine resets: the lock is gone and A's waiter is granted.
    const fa2 = await openFile(a.d, "g");
    const pa = poster(a.d);
    const waiting = await pa.post(Op.FUSE_SETLKW, fa2.nodeid, lkIn(fa2.fh, 9n, F_WRLCK, 0n, OFFSET_MAX, FUSE_LK_FLOCK));
    expect(pa.replies.has(waiting)).toBe(false);
    await b.reboot();
    await pa.post(Op.FUSE_GETATTR, fa2.nodeid, new Uint8Array(16));
    expect(pa.replies.get(waiting)?.error).toBe(0);

    // B, in a new session, waits for A's lock; B's own reset answers that waiter and leaves A's lock be.
    await initFlagsOf(b.d);
    const fb2 = await openFile(b.d, "g");
    const pb = poster(b.d);
    const blocked = await pb.post(Op.FUSE_SETLKW, fb2.nodeid, lkIn(fb2.fh, 3n, F_WRLCK, 0n, OFFSET_MAX, FUSE_LK_FLOCK));
    expect(pb.replies.has(blocked)).toBe(false);
    await b.reboot(); // B's own waiter is answered, or the session would never end
    await initFlagsOf(b.d);
    const fb3 = await openFile(b.d, "g");
    expect((await b.d.fuse(Op.FUSE_SETLK, fb3.nodeid, lkIn(fb3.fh, 3n, F_RDLCK, 0n, OFFSET_MAX, FUSE_LK_FLOCK))).error).toBe(-Errno.EAGAIN); // A's lock stayed
  });

  it("answers lock opcodes with ENOSYS when the guest keeps its locks, and EINVAL for a range no kernel sends", async () => {
    const fs = files();
    const solo = guest(fs, "guest");
    await initFlagsOf(solo.d);
    const f = await openFile(solo.d, "f");
    expect((await solo.d.fuse(Op.FUSE_SETLK, f.nodeid, lkIn(f.fh, 1n, F_WRLCK))).error).toBe(-Errno.ENOSYS);
    const dev = guest(fs, "device");
    await initFlagsOf(dev.d);
    const g = await openFile(dev.d, "f");
    expect((await dev.d.fuse(Op.FUSE_SETLK, g.nodeid, lkIn(g.fh, 1n, F_WRLCK, 9n, 3n))).error).toBe(-Errno.EINVAL);
    expect((await dev.d.fuse(Op.FUSE_SETLK, g.nodeid, lkIn(g.fh, 1n, 7))).error).toBe(-Errno.EINVAL);
    expect((await dev.d.fuse(Op.FUSE_SETLK, g.nodeid, lkIn(12345n, 1n, F_WRLCK))).error).toBe(-Errno.EBADF);
  });
});
