// Byte-range and flock locks served by the device: the lock table, and GETLK/SETLK/SETLKW/INTERRUPT
// through the whole device and server.
import { describe, expect, it } from "vitest";
import { VirtioFsDevice } from "../../device/virtio-fs.ts";
import { Errno, FUSE_LK_FLOCK, FUSE_ROOT_ID, FuseOpcode as Op, fuse_file_lock, fuse_interrupt_in, fuse_lk_in, fuse_lk_out, fuse_open_in, fuse_open_out } from "../../src/fuse/abi.ts";
import { F_RDLCK, F_UNLCK, F_WRLCK, LockError, LockTable, OFFSET_MAX } from "../../src/fuse/locks.ts";
import { FuseServer } from "../../src/fuse/server.ts";
import { MemFs } from "../../src/fs/memfs.ts";
import { Volume } from "memfs";
import { FakeBus } from "../support/fake-bus.ts";
import { ReferenceDriver, cstr, parseReply, settle } from "../support/reference-driver.ts";

const lock = <T extends number>(type: T, start: bigint, end: bigint, owner: bigint) => ({ type, start, end, owner, pid: Number(owner) });

describe("LockTable", () => {
  it("shares read locks, excludes write locks of other owners, never conflicts with itself", async () => {
    const t = new LockTable();
    await t.set("posix", 1, lock(F_RDLCK, 0n, 99n, 1n), false, 1n);
    await t.set("posix", 1, lock(F_RDLCK, 50n, 150n, 2n), false, 2n);
    await expect(t.set("posix", 1, lock(F_WRLCK, 90n, 95n, 3n), false, 3n)).rejects.toMatchObject({ errno: Errno.EAGAIN });
    await t.set("posix", 1, lock(F_WRLCK, 0n, 10n, 1n), false, 4n); // upgrade a part of its own read lock
    expect(t.test("posix", 1, lock(F_RDLCK, 5n, 5n, 2n))).toMatchObject({ type: F_WRLCK, owner: 1n });
    expect(t.test("posix", 1, lock(F_WRLCK, 200n, 300n, 2n))).toBeUndefined();
    expect(t.test("posix", 2, lock(F_WRLCK, 0n, 10n, 2n))).toBeUndefined(); // another inode
  });

  it("splits and merges an owner's ranges as fcntl does", async () => {
    const t = new LockTable();
    await t.set("posix", 1, lock(F_WRLCK, 0n, OFFSET_MAX, 1n), false, 1n);
    await t.set("posix", 1, lock(F_UNLCK, 100n, 199n, 1n), false, 2n);
    expect(t.held("posix", 1).map((l) => [l.start, l.end])).toEqual([
      [0n, 99n],
      [200n, OFFSET_MAX],
    ]);
    await t.set("posix", 1, lock(F_WRLCK, 100n, 199n, 1n), false, 3n);
    expect(t.held("posix", 1).map((l) => [l.start, l.end])).toEqual([[0n, OFFSET_MAX]]);
  });

  it("wakes a waiter when the conflicting lock goes, and fails it on interrupt", async () => {
    const t = new LockTable();
    await t.set("posix", 1, lock(F_WRLCK, 0n, 9n, 1n), false, 1n);
    let granted = false;
    const waiting = t.set("posix", 1, lock(F_WRLCK, 5n, 5n, 2n), true, 2n).then(() => (granted = true));
    await settle();
    expect(granted).toBe(false);
    t.releaseOwner("posix", 1, 1n);
    await waiting;
    expect(granted).toBe(true);
    const blocked = t.set("posix", 1, lock(F_RDLCK, 0n, 9n, 3n), true, 7n);
    expect(t.interrupt(7n)).toBe(true);
    await expect(blocked).rejects.toBeInstanceOf(LockError);
    expect(t.interrupt(7n)).toBe(false);
  });

  it("keeps flock and POSIX locks apart, as Linux does", async () => {
    const t = new LockTable();
    await t.set("flock", 1, lock(F_WRLCK, 0n, OFFSET_MAX, 1n), false, 1n);
    await t.set("posix", 1, lock(F_WRLCK, 0n, OFFSET_MAX, 2n), false, 2n);
    await expect(t.set("flock", 1, lock(F_RDLCK, 0n, OFFSET_MAX, 3n), false, 3n)).rejects.toMatchObject({ errno: Errno.EAGAIN });
  });
});

describe("locks through the device", () => {
  async function setup() {
    const vol = new Volume();
    vol.writeFileSync("/f", "0123456789");
    const bus = new FakeBus(32 << 20);
    const server = new FuseServer({ fs: new MemFs(vol) });
    new VirtioFsDevice(bus, { tag: "t", handler: server.handle });
    const d = new ReferenceDriver(bus);
    d.probe({ eventIdx: true, indirect: true });
    expect((await d.init()).error).toBe(0);
    const look = await d.fuse(Op.FUSE_LOOKUP, FUSE_ROOT_ID, cstr("f"));
    const nodeid = look.view.getBigUint64(0, true);
    const opened = await d.fuse(Op.FUSE_OPEN, nodeid, new Uint8Array(fuse_open_in.SIZE));
    const fh = opened.view.getBigUint64(fuse_open_out.fh, true);
    return { d, nodeid, fh };
  }

  const lk = (fh: bigint, owner: bigint, type: number, start: bigint, end: bigint, flags = 0) => {
    const a = new Uint8Array(fuse_lk_in.SIZE);
    const v = new DataView(a.buffer);
    v.setBigUint64(fuse_lk_in.fh, fh, true);
    v.setBigUint64(fuse_lk_in.owner, owner, true);
    v.setBigUint64(fuse_lk_in.lk + fuse_file_lock.start, start, true);
    v.setBigUint64(fuse_lk_in.lk + fuse_file_lock.end, end, true);
    v.setUint32(fuse_lk_in.lk + fuse_file_lock.type, type, true);
    v.setUint32(fuse_lk_in.lk + fuse_file_lock.pid, Number(owner), true);
    v.setUint32(fuse_lk_in.lk_flags, flags, true);
    return a;
  };

  it("GETLK reports the conflicting lock and SETLK refuses with EAGAIN", async () => {
    const { d, nodeid, fh } = await setup();
    expect((await d.fuse(Op.FUSE_SETLK, nodeid, lk(fh, 1n, F_WRLCK, 2n, 4n))).error).toBe(0);
    const r = await d.fuse(Op.FUSE_GETLK, nodeid, lk(fh, 2n, F_RDLCK, 0n, OFFSET_MAX));
    expect(r.view.getUint32(fuse_lk_out.lk + fuse_file_lock.type, true)).toBe(F_WRLCK);
    expect(r.view.getBigUint64(fuse_lk_out.lk + fuse_file_lock.start, true)).toBe(2n);
    expect(r.view.getUint32(fuse_lk_out.lk + fuse_file_lock.pid, true)).toBe(1);
    expect((await d.fuse(Op.FUSE_SETLK, nodeid, lk(fh, 2n, F_RDLCK, 3n, 3n))).error).toBe(-Errno.EAGAIN);
    const free = await d.fuse(Op.FUSE_GETLK, nodeid, lk(fh, 2n, F_RDLCK, 5n, 9n));
    expect(free.view.getUint32(fuse_lk_out.lk + fuse_file_lock.type, true)).toBe(F_UNLCK);
  });

  it("a blocked SETLKW does not stall other requests, and completes when the lock is released", async () => {
    const { d, nodeid, fh } = await setup();
    await d.fuse(Op.FUSE_SETLK, nodeid, lk(fh, 1n, F_WRLCK, 0n, OFFSET_MAX));
    const q = d.queues[1]!;
    const waiter = q.add([d.request(Op.FUSE_SETLKW, nodeid, lk(fh, 2n, F_WRLCK, 0n, 0n))], [16]);
    d.kick(1);
    await settle();
    expect(q.getUsed()).toEqual([]);
    // Other requests go through meanwhile.
    expect((await d.fuse(Op.FUSE_GETATTR, nodeid, new Uint8Array(16))).error).toBe(0);
    const unlock = q.add([d.request(Op.FUSE_SETLK, nodeid, lk(fh, 1n, F_UNLCK, 0n, OFFSET_MAX))], [16]);
    d.kick(1);
    await settle();
    const done = q.getUsed();
    expect(done.map((u) => u.id).sort()).toEqual([waiter, unlock].sort());
    expect(done.map((u) => parseReply(u).error)).toEqual([0, 0]);
  });

  it("FUSE_INTERRUPT on the hiprio queue ends a blocked SETLKW with EINTR", async () => {
    const { d, nodeid, fh } = await setup();
    await d.fuse(Op.FUSE_SETLK, nodeid, lk(fh, 1n, F_WRLCK, 0n, OFFSET_MAX, FUSE_LK_FLOCK));
    const q = d.queues[1]!;
    q.add([d.request(Op.FUSE_SETLKW, nodeid, lk(fh, 2n, F_WRLCK, 0n, OFFSET_MAX, FUSE_LK_FLOCK), { unique: 4242n })], [16]);
    d.kick(1);
    await settle();
    expect(q.getUsed()).toEqual([]);
    const intr = new Uint8Array(fuse_interrupt_in.SIZE);
    new DataView(intr.buffer).setBigUint64(fuse_interrupt_in.unique, 4242n, true);
    expect(await d.post(0, [d.request(Op.FUSE_INTERRUPT, 0, intr)], [])).toEqual([expect.objectContaining({ len: 0 })]);
    await settle();
    const r = parseReply(q.getUsed()[0]!);
    expect(r).toMatchObject({ unique: 4242n, error: -Errno.EINTR });
  });

  it("FLUSH drops the closing owner's POSIX locks", async () => {
    const { d, nodeid, fh } = await setup();
    await d.fuse(Op.FUSE_SETLK, nodeid, lk(fh, 1n, F_WRLCK, 0n, OFFSET_MAX));
    const flush = new Uint8Array(24);
    const v = new DataView(flush.buffer);
    v.setBigUint64(0, fh, true);
    v.setBigUint64(16, 1n, true);
    expect((await d.fuse(Op.FUSE_FLUSH, nodeid, flush)).error).toBe(0);
    expect((await d.fuse(Op.FUSE_SETLK, nodeid, lk(fh, 2n, F_WRLCK, 0n, OFFSET_MAX))).error).toBe(0);
  });

  it("refuses a lock on a handle that is not open, and nonsense types", async () => {
    const { d, nodeid, fh } = await setup();
    expect((await d.fuse(Op.FUSE_SETLK, nodeid, lk(fh + 100n, 1n, F_WRLCK, 0n, 1n))).error).toBe(-Errno.EBADF);
    expect((await d.fuse(Op.FUSE_SETLK, nodeid, lk(fh, 1n, 7, 0n, 1n))).error).toBe(-Errno.EINVAL);
    expect((await d.fuse(Op.FUSE_GETLK, nodeid, lk(fh, 1n, F_UNLCK, 0n, 1n))).error).toBe(-Errno.EINVAL);
    expect((await d.fuse(Op.FUSE_SETLK, nodeid, lk(fh, 1n, F_WRLCK, 9n, 1n))).error).toBe(-Errno.EINVAL);
  });
});
