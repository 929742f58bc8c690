// The write side of the FUSE server over memfs, through the device: argument decoding, reply layouts,
// lookup counting for everything that creates a name, and what a hostile guest may send instead.
import { describe, expect, it } from "vitest";
import { VirtioFsDevice } from "../../device/virtio-fs.ts";
import { FATTR_ATIME, FATTR_ATIME_NOW, FATTR_GID, FATTR_KILL_SUIDGID, FATTR_MODE, FATTR_MTIME, FATTR_SIZE, FATTR_UID, FUSE_OPEN_KILL_SUIDGID, FUSE_WRITE_KILL_SUIDGID, FUSE_ROOT_ID, FuseOpcode as Op, RENAME_EXCHANGE, RENAME_NOREPLACE, fuse_attr, fuse_attr_out, fuse_copy_file_range_in, fuse_create_in, fuse_entry_out, fuse_fallocate_in, fuse_getxattr_in, fuse_getxattr_out, fuse_link_in, fuse_mkdir_in, fuse_mknod_in, fuse_open_in, fuse_open_out, fuse_read_in, fuse_rename2_in, fuse_setattr_in, fuse_write_in, fuse_write_out } from "../../src/fuse/abi.ts";
import { Errno } from "../../src/vfs/errno.ts";
import { FuseServer } from "../../src/fuse/server.ts";
import type { CacheMode } from "../../src/fuse/session.ts";
import { MemFs } from "../../src/fs/memfs/memfs.ts";
import { FakeBus } from "../support/fake-bus.ts";
import { ReferenceDriver, cstr, type FuseReply } from "../support/reference-driver.ts";

const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFIFO = 0o010000;
const O_RDWR = 2;
const O_CREAT = 0o100;
const O_EXCL = 0o200;
const O_TRUNC = 0o1000;

async function ready(opts: { cache?: CacheMode; readOnly?: boolean } = {}) {
  const bus = new FakeBus(32 << 20);
  const server = new FuseServer({ fs: new MemFs(undefined, { readOnly: opts.readOnly }), cache: opts.cache });
  new VirtioFsDevice(bus, { tag: "t", handler: server.handle });
  const d = new ReferenceDriver(bus);
  d.probe({ eventIdx: true, indirect: true });
  expect((await d.init()).error).toBe(0);
  return { d, server };
}

function bytes(size: number, fill: (v: DataView) => void, tail: Uint8Array[] = []): Uint8Array {
  const head = new Uint8Array(size);
  fill(new DataView(head.buffer));
  const out = new Uint8Array(size + tail.reduce((n, t) => n + t.length, 0));
  out.set(head);
  let at = size;
  for (const t of tail) {
    out.set(t, at);
    at += t.length;
  }
  return out;
}

const attrOf = (r: FuseReply, at: number) => ({
  mode: r.view.getUint32(at + fuse_attr.mode, true),
  size: Number(r.view.getBigUint64(at + fuse_attr.size, true)),
  nlink: r.view.getUint32(at + fuse_attr.nlink, true),
  uid: r.view.getUint32(at + fuse_attr.uid, true),
  rdev: r.view.getUint32(at + fuse_attr.rdev, true),
  atime: Number(r.view.getBigUint64(at + fuse_attr.atime, true)),
  mtime: Number(r.view.getBigUint64(at + fuse_attr.mtime, true)),
});

async function create(d: ReferenceDriver, parent: bigint | number, name: string, flags = O_RDWR | O_CREAT, mode = S_IFREG | 0o644, openFlags = 0) {
  const r = await d.fuse(
    Op.FUSE_CREATE,
    parent,
    bytes(fuse_create_in.SIZE, (v) => {
      v.setUint32(fuse_create_in.flags, flags, true);
      v.setUint32(fuse_create_in.mode, mode, true);
      v.setUint32(fuse_create_in.open_flags, openFlags, true);
    }, [cstr(name)]),
  );
  if (r.error) return { r, nodeid: 0n, fh: 0n };
  return { r, nodeid: r.view.getBigUint64(fuse_entry_out.nodeid, true), fh: r.view.getBigUint64(fuse_entry_out.SIZE + fuse_open_out.fh, true) };
}

const writeIn = (fh: bigint, offset: number, data: Uint8Array, sizeOverride?: number, writeFlags = 0) =>
  bytes(fuse_write_in.SIZE, (v) => {
    v.setBigUint64(fuse_write_in.fh, fh, true);
    v.setBigUint64(fuse_write_in.offset, BigInt(offset), true);
    v.setUint32(fuse_write_in.size, sizeOverride ?? data.length, true);
    v.setUint32(fuse_write_in.write_flags, writeFlags, true);
  }, [data]);

const readIn = (fh: bigint, offset: number, size: number) =>
  bytes(fuse_read_in.SIZE, (v) => {
    v.setBigUint64(fuse_read_in.fh, fh, true);
    v.setBigUint64(fuse_read_in.offset, BigInt(offset), true);
    v.setUint32(fuse_read_in.size, size, true);
  });

describe("creating and writing", () => {
  it("CREATE answers fuse_entry_out then fuse_open_out, owned by the caller's uid", async () => {
    const { d, server } = await ready();
    const { r, nodeid, fh } = await create(d, FUSE_ROOT_ID, "new");
    expect(r.error).toBe(0);
    expect(r.payload.length).toBe(fuse_entry_out.SIZE + fuse_open_out.SIZE);
    expect(attrOf(r, fuse_entry_out.attr)).toMatchObject({ mode: S_IFREG | 0o644, size: 0, nlink: 1 });
    expect(nodeid).toBeGreaterThan(1n);
    expect(fh).toBeGreaterThan(0n);
    expect(server.nodeCount).toBe(2);
    expect((await create(d, FUSE_ROOT_ID, "new", O_RDWR | O_CREAT | O_EXCL)).r.error).toBe(-Errno.EEXIST);
  });

  it("WRITE then READ round-trips, past EOF leaves zeros", async () => {
    const { d } = await ready();
    const { nodeid, fh } = await create(d, FUSE_ROOT_ID, "f");
    const w = await d.fuse(Op.FUSE_WRITE, nodeid, writeIn(fh, 10, new TextEncoder().encode("hello")));
    expect(w.error).toBe(0);
    expect(w.view.getUint32(fuse_write_out.size, true)).toBe(5);
    const r = await d.fuse(Op.FUSE_READ, nodeid, readIn(fh, 0, 100), 100);
    expect(Array.from(r.payload)).toEqual([...new Array(10).fill(0), ...new TextEncoder().encode("hello")]);
  });

  it("refuses a WRITE whose size disagrees with its data, or exceeds max_write", async () => {
    const { d } = await ready();
    const { nodeid, fh } = await create(d, FUSE_ROOT_ID, "f");
    expect((await d.fuse(Op.FUSE_WRITE, nodeid, writeIn(fh, 0, new Uint8Array(8), 9))).error).toBe(-Errno.EINVAL);
    expect((await d.fuse(Op.FUSE_WRITE, nodeid, writeIn(fh, 0, new Uint8Array(8), 7))).error).toBe(-Errno.EINVAL);
    expect((await d.fuse(Op.FUSE_WRITE, nodeid, writeIn(fh + 99n, 0, new Uint8Array(8)))).error).toBe(-Errno.EBADF);
  });

  it("MKDIR, MKNOD (a FIFO) and SYMLINK report what was made", async () => {
    const { d } = await ready();
    const dir = await d.fuse(Op.FUSE_MKDIR, FUSE_ROOT_ID, bytes(fuse_mkdir_in.SIZE, (v) => v.setUint32(fuse_mkdir_in.mode, 0o750, true), [cstr("sub")]));
    expect(attrOf(dir, fuse_entry_out.attr).mode).toBe(S_IFDIR | 0o750);
    const fifo = await d.fuse(Op.FUSE_MKNOD, FUSE_ROOT_ID, bytes(fuse_mknod_in.SIZE, (v) => v.setUint32(fuse_mknod_in.mode, S_IFIFO | 0o600, true), [cstr("pipe")]));
    expect(attrOf(fifo, fuse_entry_out.attr).mode).toBe(S_IFIFO | 0o600);
    const link = await d.fuse(Op.FUSE_SYMLINK, FUSE_ROOT_ID, bytes(0, () => {}, [cstr("ln"), cstr("sub/target")]));
    expect(link.error).toBe(0);
    const target = await d.fuse(Op.FUSE_READLINK, link.view.getBigUint64(fuse_entry_out.nodeid, true));
    expect(new TextDecoder().decode(target.payload)).toBe("sub/target");
  });

  it("LINK gives a second name to the same node id and counts nlink", async () => {
    const { d } = await ready();
    const { nodeid } = await create(d, FUSE_ROOT_ID, "a");
    const l = await d.fuse(Op.FUSE_LINK, FUSE_ROOT_ID, bytes(fuse_link_in.SIZE, (v) => v.setBigUint64(fuse_link_in.oldnodeid, nodeid, true), [cstr("b")]));
    expect(l.error).toBe(0);
    expect(l.view.getBigUint64(fuse_entry_out.nodeid, true)).toBe(nodeid);
    expect(attrOf(l, fuse_entry_out.attr).nlink).toBe(2);
    const bad = await d.fuse(Op.FUSE_LINK, FUSE_ROOT_ID, bytes(fuse_link_in.SIZE, (v) => v.setBigUint64(fuse_link_in.oldnodeid, 12345n, true), [cstr("c")]));
    expect(bad.error).toBe(-Errno.ENOENT);
  });
});

describe("SETATTR", () => {
  const setattr = (valid: number, f: (v: DataView) => void = () => {}) =>
    bytes(fuse_setattr_in.SIZE, (v) => {
      v.setUint32(fuse_setattr_in.valid, valid, true);
      f(v);
    });

  it("changes mode (keeping the type) and size", async () => {
    const { d } = await ready();
    const { nodeid } = await create(d, FUSE_ROOT_ID, "f");
    const r = await d.fuse(Op.FUSE_SETATTR, nodeid, setattr(FATTR_MODE | FATTR_SIZE, (v) => {
      v.setUint32(fuse_setattr_in.mode, 0o4711, true);
      v.setBigUint64(fuse_setattr_in.size, 5000n, true);
    }));
    expect(attrOf(r, fuse_attr_out.attr)).toMatchObject({ mode: S_IFREG | 0o4711, size: 5000 });
  });

  it("sets a given mtime, leaves atime alone when omitted, and takes the clock for *_NOW", async () => {
    const { d } = await ready();
    const { nodeid } = await create(d, FUSE_ROOT_ID, "f");
    const before = attrOf(await d.fuse(Op.FUSE_SETATTR, nodeid, setattr(0)), fuse_attr_out.attr);
    const r = await d.fuse(Op.FUSE_SETATTR, nodeid, setattr(FATTR_MTIME, (v) => v.setBigUint64(fuse_setattr_in.mtime, 1000000000n, true)));
    expect(attrOf(r, fuse_attr_out.attr)).toMatchObject({ mtime: 1000000000, atime: before.atime });
    const now = await d.fuse(Op.FUSE_SETATTR, nodeid, setattr(FATTR_ATIME | FATTR_ATIME_NOW));
    expect(Math.abs(attrOf(now, fuse_attr_out.attr).atime - Date.now() / 1000)).toBeLessThan(5);
  });

  it("refuses nanoseconds of a second or more", async () => {
    const { d } = await ready();
    const { nodeid } = await create(d, FUSE_ROOT_ID, "f");
    const r = await d.fuse(Op.FUSE_SETATTR, nodeid, setattr(FATTR_MTIME, (v) => v.setUint32(fuse_setattr_in.mtimensec, 1e9, true)));
    expect(r.error).toBe(-Errno.EINVAL);
  });
});

describe("FUSE_HANDLE_KILLPRIV_V2: set-id bits go where Linux would drop them", () => {
  const setattr = (valid: number, f: (v: DataView) => void = () => {}) =>
    bytes(fuse_setattr_in.SIZE, (v) => {
      v.setUint32(fuse_setattr_in.valid, valid, true);
      f(v);
    });
  const modeOf = async (d: ReferenceDriver, nodeid: bigint) => attrOf(await d.fuse(Op.FUSE_GETATTR, nodeid, new Uint8Array(16)), fuse_attr_out.attr).mode & 0o7777;

  it("WRITE with FUSE_WRITE_KILL_SUIDGID: S_ISUID always, S_ISGID only when the group may execute", async () => {
    const { d } = await ready();
    for (const [mode, left] of [[0o6755, 0o755], [0o6745, 0o2745], [0o2710, 0o710], [0o644, 0o644]] as const) {
      const { nodeid, fh } = await create(d, FUSE_ROOT_ID, `f${mode.toString(8)}`, O_RDWR | O_CREAT, S_IFREG | mode);
      expect((await d.fuse(Op.FUSE_WRITE, nodeid, writeIn(fh, 0, new Uint8Array(4)))).error).toBe(0);
      expect(await modeOf(d, nodeid)).toBe(mode); // without the flag (a writer with CAP_FSETID): kept
      expect((await d.fuse(Op.FUSE_WRITE, nodeid, writeIn(fh, 0, new Uint8Array(4), undefined, FUSE_WRITE_KILL_SUIDGID))).error).toBe(0);
      expect(await modeOf(d, nodeid)).toBe(left);
    }
  });

  it("SETATTR with FATTR_KILL_SUIDGID: chown, truncate, and a mode given alongside", async () => {
    const { d } = await ready();
    const { nodeid } = await create(d, FUSE_ROOT_ID, "f", O_RDWR | O_CREAT, S_IFREG | 0o6755);
    const chown = await d.fuse(Op.FUSE_SETATTR, nodeid, setattr(FATTR_UID | FATTR_GID | FATTR_KILL_SUIDGID, (v) => v.setUint32(fuse_setattr_in.uid, 7, true)));
    expect(attrOf(chown, fuse_attr_out.attr)).toMatchObject({ mode: S_IFREG | 0o755, uid: 7 });
    await d.fuse(Op.FUSE_SETATTR, nodeid, setattr(FATTR_MODE, (v) => v.setUint32(fuse_setattr_in.mode, 0o4700, true)));
    const trunc = await d.fuse(Op.FUSE_SETATTR, nodeid, setattr(FATTR_SIZE | FATTR_KILL_SUIDGID, (v) => v.setBigUint64(fuse_setattr_in.size, 3n, true)));
    expect(attrOf(trunc, fuse_attr_out.attr)).toMatchObject({ mode: S_IFREG | 0o700, size: 3 });
    const both = await d.fuse(Op.FUSE_SETATTR, nodeid, setattr(FATTR_MODE | FATTR_KILL_SUIDGID, (v) => v.setUint32(fuse_setattr_in.mode, 0o6777, true)));
    expect(attrOf(both, fuse_attr_out.attr).mode).toBe(S_IFREG | 0o777);
  });

  it("CREATE with FUSE_OPEN_KILL_SUIDGID and O_TRUNC: an existing file loses its bits, a new one keeps its mode", async () => {
    const { d } = await ready();
    const old = await create(d, FUSE_ROOT_ID, "old", O_RDWR | O_CREAT, S_IFREG | 0o4755);
    await d.fuse(Op.FUSE_WRITE, old.nodeid, writeIn(old.fh, 0, new Uint8Array(10)));
    const again = await create(d, FUSE_ROOT_ID, "old", O_RDWR | O_CREAT | O_TRUNC, S_IFREG | 0o644, FUSE_OPEN_KILL_SUIDGID);
    expect(again.r.error).toBe(0);
    expect(attrOf(again.r, fuse_entry_out.attr)).toMatchObject({ mode: S_IFREG | 0o755, size: 0 });
    const fresh = await create(d, FUSE_ROOT_ID, "new", O_RDWR | O_CREAT | O_TRUNC, S_IFREG | 0o4755, FUSE_OPEN_KILL_SUIDGID);
    expect(attrOf(fresh.r, fuse_entry_out.attr).mode).toBe(S_IFREG | 0o4755);
  });
});

describe("RENAME2", () => {
  const rename2 = (newdir: number, flags: number, from: string, to: string) =>
    bytes(fuse_rename2_in.SIZE, (v) => {
      v.setBigUint64(fuse_rename2_in.newdir, BigInt(newdir), true);
      v.setUint32(fuse_rename2_in.flags, flags, true);
    }, [cstr(from), cstr(to)]);

  it("NOREPLACE refuses an existing target; EXCHANGE swaps", async () => {
    const { d } = await ready();
    const a = await create(d, FUSE_ROOT_ID, "a");
    const b = await create(d, FUSE_ROOT_ID, "b");
    expect((await d.fuse(Op.FUSE_RENAME2, FUSE_ROOT_ID, rename2(FUSE_ROOT_ID, RENAME_NOREPLACE, "a", "b"))).error).toBe(-Errno.EEXIST);
    expect((await d.fuse(Op.FUSE_RENAME2, FUSE_ROOT_ID, rename2(FUSE_ROOT_ID, RENAME_EXCHANGE, "a", "b"))).error).toBe(0);
    const nowB = await d.fuse(Op.FUSE_LOOKUP, FUSE_ROOT_ID, cstr("b"));
    expect(nowB.view.getBigUint64(fuse_entry_out.nodeid, true)).toBe(a.nodeid);
    const nowA = await d.fuse(Op.FUSE_LOOKUP, FUSE_ROOT_ID, cstr("a"));
    expect(nowA.view.getBigUint64(fuse_entry_out.nodeid, true)).toBe(b.nodeid);
  });

  it("refuses unknown flags and NOREPLACE|EXCHANGE together", async () => {
    const { d } = await ready();
    await create(d, FUSE_ROOT_ID, "a");
    for (const flags of [RENAME_NOREPLACE | RENAME_EXCHANGE, 4, 0x80000000]) {
      expect((await d.fuse(Op.FUSE_RENAME2, FUSE_ROOT_ID, rename2(FUSE_ROOT_ID, flags, "a", "z"))).error).toBe(-Errno.EINVAL);
    }
  });

  it("takes a rename whose second name is missing as EINVAL", async () => {
    const { d } = await ready();
    await create(d, FUSE_ROOT_ID, "a");
    const r = await d.fuse(Op.FUSE_RENAME2, FUSE_ROOT_ID, bytes(fuse_rename2_in.SIZE, (v) => v.setBigUint64(0, 1n, true), [cstr("a"), new TextEncoder().encode("zz")]));
    expect(r.error).toBe(-Errno.EINVAL);
  });
});

describe("extended attributes", () => {
  const setx = (name: string, value: Uint8Array, flags = 0) =>
    bytes(8, (v) => {
      v.setUint32(0, value.length, true);
      v.setUint32(4, flags, true);
    }, [cstr(name), value]);
  const getx = (name: string, size: number) => bytes(fuse_getxattr_in.SIZE, (v) => v.setUint32(fuse_getxattr_in.size, size, true), [cstr(name)]);

  it("answers size probes, ERANGE for a short buffer, ENODATA when absent", async () => {
    const { d } = await ready();
    const { nodeid } = await create(d, FUSE_ROOT_ID, "f");
    expect((await d.fuse(Op.FUSE_SETXATTR, nodeid, setx("user.k", new TextEncoder().encode("value!")))).error).toBe(0);
    const probe = await d.fuse(Op.FUSE_GETXATTR, nodeid, getx("user.k", 0));
    expect(probe.view.getUint32(fuse_getxattr_out.size, true)).toBe(6);
    expect((await d.fuse(Op.FUSE_GETXATTR, nodeid, getx("user.k", 3))).error).toBe(-Errno.ERANGE);
    expect(new TextDecoder().decode((await d.fuse(Op.FUSE_GETXATTR, nodeid, getx("user.k", 64))).payload)).toBe("value!");
    expect((await d.fuse(Op.FUSE_GETXATTR, nodeid, getx("user.nope", 64))).error).toBe(-Errno.ENODATA);
    const list = await d.fuse(Op.FUSE_LISTXATTR, nodeid, bytes(fuse_getxattr_in.SIZE, (v) => v.setUint32(0, 100, true)));
    expect(new TextDecoder().decode(list.payload)).toBe("user.k\0");
    expect((await d.fuse(Op.FUSE_REMOVEXATTR, nodeid, cstr("user.k"))).error).toBe(0);
    expect((await d.fuse(Op.FUSE_REMOVEXATTR, nodeid, cstr("user.k"))).error).toBe(-Errno.ENODATA);
  });

  it("drop security.capability on every write, truncate, chown, fallocate and copy into a file, as Linux does; a directory's chown keeps it", async () => {
    const { d } = await ready();
    const caps = Uint8Array.from([0, 0, 0, 2, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    const has = async (nodeid: bigint) => (await d.fuse(Op.FUSE_GETXATTR, nodeid, getx("security.capability", 64))).error === 0;
    const src = await create(d, FUSE_ROOT_ID, "src");
    await d.fuse(Op.FUSE_WRITE, src.nodeid, writeIn(src.fh, 0, new Uint8Array(8)));
    const setattr = (valid: number, f: (v: DataView) => void = () => {}) =>
      bytes(fuse_setattr_in.SIZE, (v) => {
        v.setUint32(fuse_setattr_in.valid, valid, true);
        f(v);
      });
    const changes: [string, (nodeid: bigint, fh: bigint) => Promise<FuseReply>][] = [
      ["write", (n, fh) => d.fuse(Op.FUSE_WRITE, n, writeIn(fh, 0, new Uint8Array(4)))],
      ["truncate", (n) => d.fuse(Op.FUSE_SETATTR, n, setattr(FATTR_SIZE, (v) => v.setBigUint64(fuse_setattr_in.size, 2n, true)))],
      ["chown", (n) => d.fuse(Op.FUSE_SETATTR, n, setattr(FATTR_UID, (v) => v.setUint32(fuse_setattr_in.uid, 0, true)))],
      ["fallocate", (n, fh) => d.fuse(Op.FUSE_FALLOCATE, n, bytes(fuse_fallocate_in.SIZE, (v) => {
        v.setBigUint64(fuse_fallocate_in.fh, fh, true);
        v.setBigUint64(fuse_fallocate_in.length, 4096n, true);
      }))],
      ["copy_file_range", (n, fh) => d.fuse(Op.FUSE_COPY_FILE_RANGE, src.nodeid, bytes(fuse_copy_file_range_in.SIZE, (v) => {
        v.setBigUint64(fuse_copy_file_range_in.fh_in, src.fh, true);
        v.setBigUint64(fuse_copy_file_range_in.nodeid_out, n, true);
        v.setBigUint64(fuse_copy_file_range_in.fh_out, fh, true);
        v.setBigUint64(fuse_copy_file_range_in.len, 8n, true);
      }))],
    ];
    for (const [what, change] of changes) {
      const f = await create(d, FUSE_ROOT_ID, what);
      expect((await d.fuse(Op.FUSE_SETXATTR, f.nodeid, setx("security.capability", caps))).error).toBe(0);
      expect((await d.fuse(Op.FUSE_SETXATTR, f.nodeid, setx("user.kept", caps))).error).toBe(0);
      expect(await has(f.nodeid)).toBe(true);
      expect((await change(f.nodeid, f.fh)).error, what).toBe(0);
      expect(await has(f.nodeid), what).toBe(false);
      expect((await d.fuse(Op.FUSE_GETXATTR, f.nodeid, getx("user.kept", 64))).error, what).toBe(0);
    }
    // A directory's chown keeps them (Linux kills privileges of non-directories only).
    const dir = await d.fuse(Op.FUSE_MKDIR, FUSE_ROOT_ID, bytes(fuse_mkdir_in.SIZE, (v) => v.setUint32(fuse_mkdir_in.mode, 0o755, true), [cstr("dir")]));
    const dirId = dir.view.getBigUint64(fuse_entry_out.nodeid, true);
    expect((await d.fuse(Op.FUSE_SETXATTR, dirId, setx("security.capability", caps))).error).toBe(0);
    expect((await d.fuse(Op.FUSE_SETATTR, dirId, setattr(FATTR_UID, (v) => v.setUint32(fuse_setattr_in.uid, 0, true)))).error).toBe(0);
    expect(await has(dirId)).toBe(true);
  });

  it("refuses a SETXATTR whose size disagrees with the value sent, and values over 64 KiB", async () => {
    const { d } = await ready();
    const { nodeid } = await create(d, FUSE_ROOT_ID, "f");
    const lying = setx("user.k", new Uint8Array(4));
    new DataView(lying.buffer).setUint32(0, 40, true);
    expect((await d.fuse(Op.FUSE_SETXATTR, nodeid, lying)).error).toBe(-Errno.EINVAL);
    expect((await d.fuse(Op.FUSE_SETXATTR, nodeid, setx("user.big", new Uint8Array(65537)), 16)).error).toBe(-Errno.E2BIG);
    expect((await d.fuse(Op.FUSE_SETXATTR, nodeid, setx("user." + "x".repeat(300), new Uint8Array(1)))).error).toBe(-Errno.ENAMETOOLONG);
  });
});

describe("cache modes and read-only exports", () => {
  it("cache=never opens with FOPEN_DIRECT_IO and zero timeouts; always keeps the cache", async () => {
    for (const [mode, flags, timeout] of [["never", 1, 0n], ["always", 2, 86400n], ["auto", 0, 1n]] as const) {
      const { d } = await ready({ cache: mode });
      const { r } = await create(d, FUSE_ROOT_ID, "f");
      expect(r.view.getUint32(fuse_entry_out.SIZE + fuse_open_out.open_flags, true), mode).toBe(flags);
      expect(r.view.getBigUint64(fuse_entry_out.entry_valid, true), mode).toBe(timeout);
    }
  });

  it("a read-only export answers every write with EROFS", async () => {
    const { d } = await ready({ readOnly: true });
    expect((await create(d, FUSE_ROOT_ID, "f")).r.error).toBe(-Errno.EROFS);
    expect((await d.fuse(Op.FUSE_MKDIR, FUSE_ROOT_ID, bytes(fuse_mkdir_in.SIZE, () => {}, [cstr("d")]))).error).toBe(-Errno.EROFS);
    expect((await d.fuse(Op.FUSE_OPEN, FUSE_ROOT_ID, bytes(fuse_open_in.SIZE, (v) => v.setUint32(0, O_RDWR, true)))).error).not.toBe(0);
  });
});
