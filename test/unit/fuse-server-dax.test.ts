// FUSE_SETUPMAPPING and FUSE_REMOVEMAPPING through the real device and server over fake memory, with the
// guest's loads and stores going straight to the window's BAR, as fs/fuse/dax.c's would: what the guest
// sees through a mapping, what reaches the backend and when, and what a hostile guest may send instead.
import { Volume } from "memfs";
import { describe, expect, it } from "vitest";
import { DAX_PAGE_SIZE, DaxWindow } from "../../device/dax-window.ts";
import { VirtioFsDevice } from "../../device/virtio-fs.ts";
import { VIRTIO_PCI_CAP_SHARED_MEMORY_CFG } from "../../device/virtio-pci.ts";
import { FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, O_TRUNC, SEEK_DATA } from "../../src/vfs/linux.ts";
import { FsError, type FileSystem } from "../../src/vfs/filesystem.ts";
import { MemFs } from "../../src/fs/memfs/memfs.ts";
import { FATTR_SIZE, FOPEN_NOFLUSH, FUSE_ATTR_DAX, FUSE_POSIX_LOCKS, FUSE_HANDLE_KILLPRIV_V2, FUSE_HAS_INODE_DAX, FUSE_INIT_EXT, FUSE_MAP_ALIGNMENT, FUSE_NO_OPEN_SUPPORT, FUSE_REMOVEMAPPING_MAX_ENTRY, FUSE_ROOT_ID, FUSE_SETUPMAPPING_FLAG_READ, FUSE_SETUPMAPPING_FLAG_WRITE, FuseOpcode as Op, fuse_attr, fuse_attr_out, fuse_copy_file_range_in, fuse_entry_out, fuse_fallocate_in, fuse_flush_in, fuse_forget_in, fuse_create_in, fuse_fsync_in, fuse_init_out, fuse_lseek_in, fuse_lseek_out, fuse_open_in, fuse_open_out, fuse_read_in, fuse_release_in, fuse_removemapping_in, fuse_removemapping_one, fuse_setattr_in, fuse_setupmapping_in, fuse_syncfs_in, fuse_write_in, initFlags } from "../../src/fuse/abi.ts";
import { Errno } from "../../src/vfs/errno.ts";
import { MAX_MAPPED_INODES } from "../../src/fuse/dax.ts";
import { FuseServer } from "../../src/fuse/server.ts";
import { FakeBus } from "../support/fake-bus.ts";
import { waitingFs } from "../support/waiting-fs.ts";
import { ReferenceDriver, args, cstr, parseReply, settle, type FuseReply } from "../support/reference-driver.ts";

const MiB = 1 << 20;
const PAGE = DAX_PAGE_SIZE;
const WINDOW = 8 * MiB;
const FH_NONE = 0xffff_ffff_ffff_ffffn;
const R = FUSE_SETUPMAPPING_FLAG_READ;
const RW = FUSE_SETUPMAPPING_FLAG_READ | FUSE_SETUPMAPPING_FLAG_WRITE;
const O_RDONLY = 0;
const O_WRONLY = 1;
const O_RDWR = 2;
const FILE = Uint8Array.from({ length: 10_000 }, (_, i) => (i * 7 + 1) & 0xff);
const text = (s: string): Uint8Array => new TextEncoder().encode(s);

function tree(): Volume {
  const vol = new Volume();
  vol.mkdirSync("/dir");
  vol.writeFileSync("/f", FILE);
  vol.writeFileSync("/g", "gee\n");
  vol.writeFileSync("/big", new Uint8Array(3 * MiB).fill(0xab));
  return vol;
}

interface Options {
  window?: number | null;
  fs?: (vol: Volume) => FileSystem;
  vol?: Volume;
  initFlags?: bigint;
  daxInodeMinSize?: number;
  locks?: "guest" | "device";
}

async function ready(o: Options = {}) {
  const vol = o.vol ?? tree();
  const fs = o.fs ? o.fs(vol) : new MemFs(vol);
  const size = o.window === null ? undefined : (o.window ?? WINDOW);
  const logs: string[] = [];
  // The window sits in guest memory above the RAM the driver uses, as attachVirtioFs puts it in v86's.
  const bus = new FakeBus(32 * MiB + (size ?? 0));
  const window = size === undefined ? undefined : new DaxWindow(size, bus.memory.range(32 * MiB, size));
  const server = new FuseServer({ fs, dax: window, log: (m) => logs.push(m), daxInodeMinSize: o.daxInodeMinSize, locks: o.locks });
  new VirtioFsDevice(bus, {
    tag: "t",
    handler: server.handle,
    onReset: () => void server.reset(),
    dax: window && { bar: 2, address: 32 * MiB, size: window.size },
  });
  const d = new ReferenceDriver(bus);
  d.probe({ indirect: true, eventIdx: true });
  const offered = o.initFlags ?? FUSE_INIT_EXT | FUSE_MAP_ALIGNMENT;
  const init = await d.init(Number(offered & 0xffff_ffffn), Number(offered >> 32n));
  expect(init.error).toBe(0);
  // The guest reaches the window at the address of the BAR its shared memory capability names.
  const shm = window && d.fn.bar(d.cap(VIRTIO_PCI_CAP_SHARED_MEMORY_CFG).bar);
  const bar = shm && bus.memory.u8.subarray(shm.address, shm.address + shm.size);
  return { d, server, window: window!, bar: bar!, vol, fs, logs, init };
}

/** memfs with a flush of its own, as a backend that buffers until close (hostdir, OPFS). */
class FlushingMemFs extends MemFs {
  async flush(): Promise<void> {}
}

const bytesOf = (vol: Volume, path: string): Uint8Array => new Uint8Array(vol.readFileSync(path) as Buffer);

interface MapArgs {
  moffset: bigint | number;
  len: bigint | number;
  foffset?: bigint | number;
  flags?: bigint;
  fh?: bigint;
}

const setupIn = (m: MapArgs) =>
  args(fuse_setupmapping_in.SIZE, (v) => {
    const f = fuse_setupmapping_in;
    v.setBigUint64(f.fh, m.fh ?? FH_NONE, true);
    v.setBigUint64(f.foffset, BigInt(m.foffset ?? 0), true);
    v.setBigUint64(f.len, BigInt(m.len), true);
    v.setBigUint64(f.flags, m.flags ?? R, true);
    v.setBigUint64(f.moffset, BigInt(m.moffset), true);
  });

async function setup(d: ReferenceDriver, nodeid: bigint | number, m: MapArgs): Promise<number> {
  return (await d.fuse(Op.FUSE_SETUPMAPPING, nodeid, setupIn(m))).error;
}

function removeIn(ranges: [bigint | number, bigint | number][], count = ranges.length): Uint8Array {
  const one = fuse_removemapping_one;
  return args(fuse_removemapping_in.SIZE + ranges.length * one.SIZE, (v) => {
    v.setUint32(fuse_removemapping_in.count, count, true);
    ranges.forEach(([moffset, len], i) => {
      const at = fuse_removemapping_in.SIZE + i * one.SIZE;
      v.setBigUint64(at + one.moffset, BigInt(moffset), true);
      v.setBigUint64(at + one.len, BigInt(len), true);
    });
  });
}

async function remove(d: ReferenceDriver, nodeid: bigint | number, ranges: [bigint | number, bigint | number][], count?: number): Promise<number> {
  return (await d.fuse(Op.FUSE_REMOVEMAPPING, nodeid, removeIn(ranges, count))).error;
}

/** The guest's loads and stores: plain memory accesses. */
const load = (bar: Uint8Array, offset: number, length: number): Uint8Array => bar.slice(offset, offset + length);
const store = (bar: Uint8Array, offset: number, data: Uint8Array): void => bar.set(data, offset);

async function lookup(d: ReferenceDriver, name: string, parent: bigint | number = FUSE_ROOT_ID): Promise<bigint> {
  const r = await d.fuse(Op.FUSE_LOOKUP, parent, cstr(name));
  expect(r.error).toBe(0);
  return r.view.getBigUint64(fuse_entry_out.nodeid, true);
}

async function open(d: ReferenceDriver, nodeid: bigint, flags = O_RDWR): Promise<bigint> {
  const r = await d.fuse(Op.FUSE_OPEN, nodeid, args(fuse_open_in.SIZE, (v) => v.setUint32(fuse_open_in.flags, flags, true)));
  expect(r.error).toBe(0);
  return r.view.getBigUint64(fuse_open_out.fh, true);
}

const fhArgs = (size: number, fh: bigint) => args(size, (v) => v.setBigUint64(0, fh, true));

const readIn = (fh: bigint, offset: number, size: number) =>
  args(fuse_read_in.SIZE, (v) => {
    v.setBigUint64(fuse_read_in.fh, fh, true);
    v.setBigUint64(fuse_read_in.offset, BigInt(offset), true);
    v.setUint32(fuse_read_in.size, size, true);
  });

function read(d: ReferenceDriver, nodeid: bigint, fh: bigint, offset: number, size: number): Promise<FuseReply> {
  return d.fuse(Op.FUSE_READ, nodeid, readIn(fh, offset, size), size);
}

const writeIn = (fh: bigint, offset: number, data: Uint8Array) =>
  args(
    fuse_write_in.SIZE,
    (v) => {
      v.setBigUint64(fuse_write_in.fh, fh, true);
      v.setBigUint64(fuse_write_in.offset, BigInt(offset), true);
      v.setUint32(fuse_write_in.size, data.length, true);
    },
    data,
  );

async function write(d: ReferenceDriver, nodeid: bigint, fh: bigint, offset: number, data: Uint8Array): Promise<number> {
  return (await d.fuse(Op.FUSE_WRITE, nodeid, writeIn(fh, offset, data))).error;
}

async function truncate(d: ReferenceDriver, nodeid: bigint, size: number): Promise<number> {
  const r = await d.fuse(
    Op.FUSE_SETATTR,
    nodeid,
    args(fuse_setattr_in.SIZE, (v) => {
      v.setUint32(fuse_setattr_in.valid, FATTR_SIZE, true);
      v.setBigUint64(fuse_setattr_in.size, BigInt(size), true);
    }),
  );
  expect(r.error).toBe(0);
  return Number(r.view.getBigUint64(fuse_attr_out.attr + fuse_attr.size, true));
}

async function fallocate(d: ReferenceDriver, nodeid: bigint, fh: bigint, mode: number, offset: number, length: number): Promise<number> {
  const f = fuse_fallocate_in;
  const r = await d.fuse(
    Op.FUSE_FALLOCATE,
    nodeid,
    args(f.SIZE, (v) => {
      v.setBigUint64(f.fh, fh, true);
      v.setBigUint64(f.offset, BigInt(offset), true);
      v.setBigUint64(f.length, BigInt(length), true);
      v.setUint32(f.mode, mode, true);
    }),
  );
  return r.error;
}

interface CopyArgs {
  nodeIn: bigint;
  fhIn: bigint;
  offIn?: number;
  nodeOut: bigint;
  fhOut: bigint;
  offOut: number;
  len: number;
}

async function copyRange(d: ReferenceDriver, c: CopyArgs): Promise<number> {
  const f = fuse_copy_file_range_in;
  const r = await d.fuse(
    Op.FUSE_COPY_FILE_RANGE,
    c.nodeIn,
    args(f.SIZE, (v) => {
      v.setBigUint64(f.fh_in, c.fhIn, true);
      v.setBigUint64(f.off_in, BigInt(c.offIn ?? 0), true);
      v.setBigUint64(f.nodeid_out, c.nodeOut, true);
      v.setBigUint64(f.fh_out, c.fhOut, true);
      v.setBigUint64(f.off_out, BigInt(c.offOut), true);
      v.setBigUint64(f.len, BigInt(c.len), true);
    }),
  );
  return r.error;
}

const fsync = async (d: ReferenceDriver, nodeid: bigint, fh: bigint): Promise<number> => (await d.fuse(Op.FUSE_FSYNC, nodeid, fhArgs(fuse_fsync_in.SIZE, fh))).error;

/** Wraps a backend: `hook` may replace any of its methods. */
function wrap(fs: FileSystem, hook: (name: string, call: (...a: unknown[]) => unknown) => ((...a: unknown[]) => unknown) | undefined): FileSystem {
  return new Proxy(fs, {
    get(target, key) {
      const value: unknown = Reflect.get(target, key);
      if (typeof value !== "function") return value;
      const call = (...a: unknown[]): unknown => (value as (...a: unknown[]) => unknown).apply(target, a);
      return (typeof key === "string" && hook(key, call)) || call;
    },
  });
}

const nextTurn = () => new Promise<void>((r) => setImmediate(r));

describe("dax=inode: which files use the window", () => {
  const daxFlag = async (o: Options, name: string, mode?: number) => {
    const { d, vol } = await ready(o);
    vol.writeFileSync("/x", "#!/bin/sh\n");
    if (mode !== undefined) vol.chmodSync(`/${name}`, mode);
    const r = await d.fuse(Op.FUSE_LOOKUP, FUSE_ROOT_ID, cstr(name));
    return r.view.getUint32(fuse_entry_out.attr + fuse_attr.flags, true);
  };
  const inode = { initFlags: FUSE_INIT_EXT | FUSE_MAP_ALIGNMENT | FUSE_HAS_INODE_DAX };

  it("agrees to FUSE_HAS_INODE_DAX only with a window", async () => {
    for (const [o, want] of [[inode, FUSE_HAS_INODE_DAX], [{ ...inode, window: null }, 0n]] as const) {
      const { init } = await ready(o);
      expect(initFlags(init.view.getUint32(fuse_init_out.flags, true), init.view.getUint32(fuse_init_out.flags2, true)) & FUSE_HAS_INODE_DAX).toBe(want);
    }
  });

  it("marks regular files FUSE_ATTR_DAX, programs too, but not directories, or without dax=inode", async () => {
    expect(await daxFlag(inode, "f", 0o644)).toBe(FUSE_ATTR_DAX);
    expect(await daxFlag(inode, "x", 0o755)).toBe(FUSE_ATTR_DAX); // the guest runs code from the window
    expect(await daxFlag(inode, "dir")).toBe(0);
    expect(await daxFlag({}, "f", 0o644)).toBe(0); // dax=always or no DAX: the flag says nothing
  });

  it("with daxInodeMinSize marks only the files at least that big, and follows a file's size", async () => {
    const { d, vol } = await ready({ ...inode, daxInodeMinSize: MiB });
    const flagOf = (r: FuseReply, at: number) => r.view.getUint32(at + fuse_attr.flags, true);
    const entry = async (name: string) => flagOf(await d.fuse(Op.FUSE_LOOKUP, FUSE_ROOT_ID, cstr(name)), fuse_entry_out.attr);
    expect(await entry("f")).toBe(0); // 10,000 bytes
    expect(await entry("big")).toBe(FUSE_ATTR_DAX); // 3 MiB
    vol.writeFileSync("/edge", new Uint8Array(MiB));
    expect(await entry("edge")).toBe(FUSE_ATTR_DAX);
    // A file that grows past the line says so in its next attributes (Linux then drops the unused inode).
    const f = await lookup(d, "f");
    vol.truncateSync("/f", 2 * MiB);
    expect(flagOf(await d.fuse(Op.FUSE_GETATTR, f, args(16, () => {})), fuse_attr_out.attr)).toBe(FUSE_ATTR_DAX);
  });

  const create = async (d: ReferenceDriver, name: string, flags = O_RDWR) => {
    const r = await d.fuse(Op.FUSE_CREATE, FUSE_ROOT_ID, args(fuse_create_in.SIZE, (v) => {
      v.setUint32(fuse_create_in.flags, flags, true);
      v.setUint32(fuse_create_in.mode, 0o100644, true);
    }, cstr(name)));
    expect(r.error).toBe(0);
    return r.view.getUint32(fuse_entry_out.SIZE + fuse_open_out.open_flags, true);
  };

  it("says FOPEN_NOFLUSH on CREATE of a file outside the window: its close(2) has nothing to write back", async () => {
    const zeroOpen = inode.initFlags | FUSE_NO_OPEN_SUPPORT;
    const { d } = await ready({ initFlags: zeroOpen, daxInodeMinSize: MiB });
    expect(await create(d, "new") & FOPEN_NOFLUSH).toBe(FOPEN_NOFLUSH);
    // A name the guest already holds an inode for (its dentry was stale): that inode may be in the window.
    await lookup(d, "g");
    expect(await create(d, "g", O_RDWR | O_TRUNC) & FOPEN_NOFLUSH).toBe(0);
    // Every regular file in the window (no size line), dax=always, device locks (FLUSH drops them), a
    // backend that buffers until close: FLUSH stays.
    for (const o of [{ initFlags: zeroOpen }, { initFlags: FUSE_INIT_EXT | FUSE_MAP_ALIGNMENT | FUSE_NO_OPEN_SUPPORT, daxInodeMinSize: MiB }, { initFlags: zeroOpen | FUSE_POSIX_LOCKS, daxInodeMinSize: MiB, locks: "device" as const }, { initFlags: zeroOpen, daxInodeMinSize: MiB, fs: (vol: Volume) => new FlushingMemFs(vol) }]) {
      const { d: other } = await ready(o);
      expect(await create(other, "new") & FOPEN_NOFLUSH).toBe(0);
    }
  });
});

describe("FUSE_INIT with a DAX window", () => {
  it("advertises FUSE_MAP_ALIGNMENT with map_alignment 12 (4 KiB) when the device has a window", async () => {
    const { init } = await ready();
    const flags = initFlags(init.view.getUint32(fuse_init_out.flags, true), init.view.getUint32(fuse_init_out.flags2, true));
    expect(flags & FUSE_MAP_ALIGNMENT).toBe(FUSE_MAP_ALIGNMENT);
    expect(init.view.getUint16(fuse_init_out.map_alignment, true)).toBe(12);
  });

  it("agrees to FUSE_HANDLE_KILLPRIV_V2 only without a window: stores through it reach no server", async () => {
    for (const [window, want] of [[undefined, 0n], [null, FUSE_HANDLE_KILLPRIV_V2]] as const) {
      const { init } = await ready({ window, initFlags: FUSE_INIT_EXT | FUSE_MAP_ALIGNMENT | FUSE_HANDLE_KILLPRIV_V2 });
      expect(initFlags(init.view.getUint32(fuse_init_out.flags, true), init.view.getUint32(fuse_init_out.flags2, true)) & FUSE_HANDLE_KILLPRIV_V2).toBe(want);
    }
  });

  it.each([
    ["without a window", { window: null }],
    ["when the kernel did not offer the flag", { initFlags: FUSE_INIT_EXT }],
  ])("advertises no alignment %s", async (_, o: Options) => {
    const { init } = await ready(o);
    expect(init.view.getUint32(fuse_init_out.flags, true) & Number(FUSE_MAP_ALIGNMENT)).toBe(0);
    expect(init.view.getUint16(fuse_init_out.map_alignment, true)).toBe(0);
  });

  it("answers SETUPMAPPING and REMOVEMAPPING with ENOSYS without a window", async () => {
    const { d } = await ready({ window: null });
    const f = await lookup(d, "f");
    expect(await setup(d, f, { moffset: 0, len: 2 * MiB })).toBe(-Errno.ENOSYS);
    expect(await remove(d, f, [[0, 2 * MiB]])).toBe(-Errno.ENOSYS);
    expect((await d.fuse(Op.FUSE_REMOVEMAPPING, f)).error).toBe(-Errno.ENOSYS);
  });
});

describe("what a mapping shows", () => {
  it("shows the file's bytes, and zeros past its end, as fs/fuse/dax.c maps them (2 MiB, fh -1)", async () => {
    const { d, bar, window } = await ready();
    window.write(2 * MiB, new Uint8Array(2 * MiB).fill(0xee)); // whatever the window held before
    const f = await lookup(d, "f");
    expect(await setup(d, f, { moffset: 2 * MiB, len: 2 * MiB })).toBe(0);
    expect(load(bar, 2 * MiB, FILE.length)).toEqual(FILE);
    expect(load(bar, 2 * MiB + FILE.length, 4 * MiB - (2 * MiB + FILE.length)).every((b) => b === 0)).toBe(true);
  });

  it("maps from a page-aligned file offset", async () => {
    const { d, bar } = await ready();
    const f = await lookup(d, "f");
    expect(await setup(d, f, { moffset: PAGE, foffset: 2 * PAGE, len: PAGE })).toBe(0);
    expect(load(bar, PAGE, FILE.length - 2 * PAGE)).toEqual(FILE.subarray(2 * PAGE));
  });

  it("fills a mapping larger than one backend read", async () => {
    const { d, bar } = await ready();
    const big = await lookup(d, "big");
    expect(await setup(d, big, { moffset: 4 * MiB, len: 4 * MiB })).toBe(0);
    for (const at of [0, 2 * MiB - 1, 2 * MiB, 3 * MiB - 4]) expect(load(bar, 4 * MiB + at, 4)).toEqual(Uint8Array.of(0xab, 0xab, 0xab, 0xab));
    expect(load(bar, 7 * MiB, 4)).toEqual(new Uint8Array(4));
  });

  it("never writes back stores to a read-only mapping; the upgrade to writable keeps its bytes and takes them", async () => {
    const { d, bar, window, vol } = await ready();
    const f = await lookup(d, "f");
    expect(await setup(d, f, { moffset: 0, len: 2 * MiB, flags: R })).toBe(0);
    store(bar, 0, text("nope")); // only a guest ignoring its own page tables can
    expect(window.dirtyPages()).toBe(0);
    expect(await remove(d, f, [[0, 2 * MiB]])).toBe(0);
    expect(bytesOf(vol, "/f")).toEqual(FILE);
    expect(await setup(d, f, { moffset: 0, len: 2 * MiB, flags: R })).toBe(0);
    // What fs/fuse/dax.c sends on a write fault in a read-only range: the same mapping, writable.
    expect(await setup(d, f, { moffset: 0, len: 2 * MiB, flags: RW })).toBe(0);
    expect(load(bar, 0, FILE.length)).toEqual(FILE);
    store(bar, 0, text("yes!"));
    expect(window.dirtyPages()).toBe(1);
    expect(await remove(d, f, [[0, 2 * MiB]])).toBe(0);
    expect(bytesOf(vol, "/f").subarray(0, 4)).toEqual(text("yes!"));
  });

  it("names each mapping's node, file range, writability and dirty pages in the snapshot", async () => {
    const { d, bar, server } = await ready();
    const f = await lookup(d, "f");
    const g = await lookup(d, "g");
    expect(server.daxSnapshot()).toEqual({ size: WINDOW, dirtyPages: 0, mappings: [] });
    await setup(d, f, { moffset: 2 * MiB, foffset: 0, len: 2 * MiB, flags: RW });
    await setup(d, g, { moffset: 0, len: PAGE, flags: R });
    store(bar, 2 * MiB + 3 * PAGE, text("dirt"));
    expect(server.daxSnapshot()).toEqual({
      size: WINDOW,
      dirtyPages: 1,
      mappings: [
        { nodeid: Number(g), moffset: 0, foffset: 0, length: PAGE, writable: false, dirtyPages: 0 },
        { nodeid: Number(f), moffset: 2 * MiB, foffset: 0, length: 2 * MiB, writable: true, dirtyPages: 1 },
      ],
    });
    expect(new FuseServer({ fs: new MemFs() }).daxSnapshot()).toBeUndefined();
  });
});

describe("stores reaching the backend", () => {
  it("on REMOVEMAPPING, after which the range reads as zeros", async () => {
    const { d, bar, vol, window } = await ready();
    const f = await lookup(d, "f");
    expect(await setup(d, f, { moffset: 0, len: 2 * MiB, flags: RW })).toBe(0);
    store(bar, 100, text("hello"));
    expect(await remove(d, f, [[0, 2 * MiB]])).toBe(0);
    const want = FILE.slice();
    want.set(text("hello"), 100);
    expect(bytesOf(vol, "/f")).toEqual(want);
    expect(load(bar, 0, PAGE).every((b) => b === 0)).toBe(true);
    expect(window.extents()).toEqual([]);
  });

  it.each([
    ["FUSE_FSYNC", (d: ReferenceDriver, f: bigint, fh: bigint) => d.fuse(Op.FUSE_FSYNC, f, fhArgs(fuse_fsync_in.SIZE, fh))],
    ["FUSE_FLUSH", (d: ReferenceDriver, f: bigint, fh: bigint) => d.fuse(Op.FUSE_FLUSH, f, fhArgs(fuse_flush_in.SIZE, fh))],
    ["FUSE_RELEASE", (d: ReferenceDriver, f: bigint, fh: bigint) => d.fuse(Op.FUSE_RELEASE, f, fhArgs(fuse_release_in.SIZE, fh))],
    ["FUSE_SYNCFS", (d: ReferenceDriver, f: bigint) => d.fuse(Op.FUSE_SYNCFS, f, new Uint8Array(fuse_syncfs_in.SIZE))],
    ["FUSE_DESTROY", (d: ReferenceDriver) => d.fuse(Op.FUSE_DESTROY, FUSE_ROOT_ID)],
  ])("on %s", async (_, send) => {
    const { d, bar, vol } = await ready();
    const f = await lookup(d, "f");
    const fh = await open(d, f);
    expect(await setup(d, f, { moffset: 2 * MiB, len: 2 * MiB, flags: RW })).toBe(0);
    store(bar, 2 * MiB + 5000, text("stored"));
    expect((await send(d, f, fh)).error).toBe(0);
    expect(bytesOf(vol, "/f").subarray(5000, 5006)).toEqual(text("stored"));
    expect(bytesOf(vol, "/f")).toHaveLength(FILE.length);
  });

  it.each([
    ["FUSE_FSYNC", (d: ReferenceDriver, f: bigint) => d.fuse(Op.FUSE_FSYNC, f, fhArgs(fuse_fsync_in.SIZE, 0n))],
    ["FUSE_FLUSH", (d: ReferenceDriver, f: bigint) => d.fuse(Op.FUSE_FLUSH, f, fhArgs(fuse_flush_in.SIZE, 0n))],
  ])("on %s of fh 0 with zero-message open, for a file only ever mapped", async (_, send) => {
    const { d, bar, vol } = await ready({ initFlags: FUSE_INIT_EXT | FUSE_MAP_ALIGNMENT | FUSE_NO_OPEN_SUPPORT });
    const f = await lookup(d, "f");
    expect((await d.fuse(Op.FUSE_OPEN, f, new Uint8Array(fuse_open_in.SIZE))).error).toBe(-Errno.ENOSYS);
    expect(await setup(d, f, { moffset: 0, len: 2 * MiB, flags: RW })).toBe(0);
    store(bar, 5000, text("stored"));
    expect((await send(d, f)).error).toBe(0);
    expect(bytesOf(vol, "/f").subarray(5000, 5006)).toEqual(text("stored"));
  });

  it("when the device resets (the guest rebooted), and the next session maps the stored bytes", async () => {
    const { d, bar, vol, window } = await ready();
    const f = await lookup(d, "f");
    expect(await setup(d, f, { moffset: 0, len: 2 * MiB, flags: RW })).toBe(0);
    store(bar, 64, text("survives"));
    d.status = 0;
    await settle();
    expect(bytesOf(vol, "/f").subarray(64, 72)).toEqual(text("survives"));
    expect(window.extents()).toEqual([]);
    d.probe();
    expect((await d.init(Number(FUSE_INIT_EXT | FUSE_MAP_ALIGNMENT))).error).toBe(0);
    const again = await lookup(d, "f");
    expect(await setup(d, again, { moffset: 2 * MiB, len: 2 * MiB })).toBe(0);
    expect(load(bar, 2 * MiB + 64, 8)).toEqual(text("survives"));
  });

  it("when the guest forgets the node without unmapping it", async () => {
    const { d, bar, vol, window } = await ready();
    const f = await lookup(d, "f");
    expect(await setup(d, f, { moffset: 0, len: 2 * MiB, flags: RW })).toBe(0);
    store(bar, 8, text("kept"));
    await d.post(0, [d.request(Op.FUSE_FORGET, f, args(fuse_forget_in.SIZE, (v) => v.setBigUint64(fuse_forget_in.nlookup, 1n, true)))], []);
    expect(bytesOf(vol, "/f").subarray(8, 12)).toEqual(text("kept"));
    expect(window.extents()).toEqual([]);
  });

  it("never past the end of file: the guest cannot extend a file through the window", async () => {
    const { d, bar, vol } = await ready();
    const f = await lookup(d, "f");
    const fh = await open(d, f);
    expect(await setup(d, f, { moffset: 0, len: 2 * MiB, flags: RW })).toBe(0);
    store(bar, FILE.length - 2, text("edge"));
    store(bar, 3 * PAGE, text("beyond"));
    expect((await d.fuse(Op.FUSE_FSYNC, f, fhArgs(fuse_fsync_in.SIZE, fh))).error).toBe(0);
    const after = bytesOf(vol, "/f");
    expect(after).toHaveLength(FILE.length);
    expect(after.subarray(FILE.length - 2)).toEqual(text("ed"));
  });

  it("keeps pages dirty when the backend fails, answers EIO, and writes them on the next try", async () => {
    let failing = true;
    const { d, bar, vol, window } = await ready({
      fs: (vol) =>
        wrap(new MemFs(vol), (name, call) =>
          name === "write"
            ? async (...a) => {
                if (failing) throw new FsError(Errno.EIO, "disk on fire");
                return call(...a);
              }
            : undefined,
        ),
    });
    const f = await lookup(d, "f");
    const fh = await open(d, f);
    expect(await setup(d, f, { moffset: 0, len: 2 * MiB, flags: RW })).toBe(0);
    store(bar, 0, text("data"));
    expect((await d.fuse(Op.FUSE_FSYNC, f, fhArgs(fuse_fsync_in.SIZE, fh))).error).toBe(-Errno.EIO);
    expect(window.dirtyPages()).toBe(1);
    expect(await remove(d, f, [[0, 2 * MiB]])).toBe(-Errno.EIO);
    expect(window.dirtyPages()).toBe(1);
    expect(load(bar, 0, 4)).toEqual(text("data"));
    failing = false;
    expect((await d.fuse(Op.FUSE_FSYNC, f, fhArgs(fuse_fsync_in.SIZE, fh))).error).toBe(0);
    expect(window.dirtyPages()).toBe(0);
    expect(bytesOf(vol, "/f").subarray(0, 4)).toEqual(text("data"));
  });
});

describe("coherence with the READ/WRITE path", () => {
  it("a READ sees bytes stored through the window", async () => {
    const { d, bar } = await ready();
    const f = await lookup(d, "f");
    const fh = await open(d, f);
    expect(await setup(d, f, { moffset: 0, len: 2 * MiB, flags: RW })).toBe(0);
    store(bar, 5000, text("XYZ"));
    const r = await read(d, f, fh, 4990, 20);
    expect(r.error).toBe(0);
    expect(r.payload.subarray(10, 13)).toEqual(text("XYZ"));
    expect(r.payload.subarray(0, 10)).toEqual(FILE.subarray(4990, 5000));
  });

  it("a WRITE shows in mapped pages, appending past the old end included", async () => {
    const { d, bar } = await ready();
    const f = await lookup(d, "f");
    const fh = await open(d, f);
    expect(await setup(d, f, { moffset: 0, len: 2 * MiB, flags: R })).toBe(0);
    expect(await write(d, f, fh, 200, text("new"))).toBe(0);
    expect(load(bar, 200, 3)).toEqual(text("new"));
    expect(await write(d, f, fh, FILE.length + 50, text("tail"))).toBe(0);
    const want = new Uint8Array(54);
    want.set(text("tail"), 50);
    expect(load(bar, FILE.length, 54)).toEqual(want);
  });

  it("an extending WRITE clears stale stores between the old and the new end of file", async () => {
    const { d, bar, vol } = await ready();
    const f = await lookup(d, "f");
    const fh = await open(d, f);
    expect(await setup(d, f, { moffset: 0, len: 2 * MiB, flags: RW })).toBe(0);
    store(bar, FILE.length + 10, text("junk")); // past the end: never the file's
    expect(await write(d, f, fh, FILE.length + 100, text("end"))).toBe(0);
    expect(load(bar, FILE.length + 10, 4)).toEqual(new Uint8Array(4));
    expect((await d.fuse(Op.FUSE_FSYNC, f, fhArgs(fuse_fsync_in.SIZE, fh))).error).toBe(0);
    const after = bytesOf(vol, "/f");
    expect(after).toHaveLength(FILE.length + 103);
    expect(after.subarray(FILE.length, FILE.length + 100).every((b) => b === 0)).toBe(true);
  });

  it("truncation zeroes mapped bytes past the new size and drops stores there; growing reads zeros", async () => {
    const { d, bar, vol } = await ready();
    const f = await lookup(d, "f");
    const fh = await open(d, f);
    expect(await setup(d, f, { moffset: 0, len: 2 * MiB, flags: RW })).toBe(0);
    store(bar, 100, text("keep"));
    store(bar, 9000, text("drop"));
    expect(await truncate(d, f, 5000)).toBe(5000);
    expect(load(bar, 5000, 2 * PAGE).every((b) => b === 0)).toBe(true);
    expect(load(bar, 100, 4)).toEqual(text("keep"));
    expect(await truncate(d, f, 12_000)).toBe(12_000);
    expect(load(bar, 9000, 4)).toEqual(new Uint8Array(4));
    expect((await d.fuse(Op.FUSE_FSYNC, f, fhArgs(fuse_fsync_in.SIZE, fh))).error).toBe(0);
    const after = bytesOf(vol, "/f");
    expect(after).toHaveLength(12_000);
    expect(after.subarray(100, 104)).toEqual(text("keep"));
    expect(after.subarray(5000).every((b) => b === 0)).toBe(true);
  });

  it("COPY_FILE_RANGE and FALLOCATE into a mapped file show in its pages", async () => {
    const { d, bar } = await ready();
    const f = await lookup(d, "f");
    const g = await lookup(d, "g");
    const fhF = await open(d, f);
    const fhG = await open(d, g);
    expect(await setup(d, f, { moffset: 0, len: 2 * MiB, flags: R })).toBe(0);
    expect(await copyRange(d, { nodeIn: g, fhIn: fhG, nodeOut: f, fhOut: fhF, offOut: 300, len: 4 })).toBe(0);
    expect(load(bar, 300, 4)).toEqual(text("gee\n"));
    expect(await fallocate(d, f, fhF, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, PAGE, PAGE)).toBe(0);
    expect(load(bar, PAGE, PAGE).every((b) => b === 0)).toBe(true);
    expect(load(bar, 2 * PAGE, 4)).toEqual(FILE.subarray(2 * PAGE, 2 * PAGE + 4));
  });

  it("a WRITE racing a SETUPMAPPING of the same file: the mapping ends up showing the write", async () => {
    // Big reads (a fill) take their bytes at once but answer later; small ones (a refresh) answer at once. A
    // write that slipped in between would be overwritten by the fill's stale bytes.
    const { d, bar } = await ready({
      fs: (vol) =>
        wrap(new MemFs(vol), (name, call) =>
          name === "read"
            ? async (...a) => {
                const data = await call(...a);
                if ((a[2] as number) >= MiB) for (let i = 0; i < 3; i++) await nextTurn();
                return data;
              }
            : undefined,
        ),
    });
    const f = await lookup(d, "f");
    const fh = await open(d, f);
    const q = d.queues[1]!;
    q.add([d.request(Op.FUSE_SETUPMAPPING, f, setupIn({ moffset: 0, len: 2 * MiB }))], [64]);
    d.kick(1);
    await nextTurn(); // the fill has read the file and waits for its answer
    q.add([d.request(Op.FUSE_WRITE, f, writeIn(fh, 0, text("race")))], [64]);
    d.kick(1);
    await settle();
    const used = q.getUsed();
    expect(used.map((u) => parseReply(u).error)).toEqual([0, 0]);
    expect(load(bar, 0, 4)).toEqual(text("race"));
  });
});

describe("files with nothing in the window", () => {
  it("are read and written inside the kick over a backend that answers at once", async () => {
    const { d, bar } = await ready();
    const f = await lookup(d, "f");
    const g = await lookup(d, "g");
    const fh = await open(d, f);
    expect(await setup(d, g, { moffset: 0, len: 2 * MiB })).toBe(0); // another file's mapping is no obstacle
    const q = d.queues[1]!;
    q.add([d.request(Op.FUSE_WRITE, f, writeIn(fh, 0, text("now")))], [64]);
    q.add([d.request(Op.FUSE_READ, f, readIn(fh, 0, 5))], [64]);
    d.kick(1);
    const used = q.getUsed().map(parseReply);
    expect(used.map((r) => r.error)).toEqual([0, 0]);
    expect(used[1]!.payload).toEqual(Uint8Array.from([...text("now"), FILE[3]!, FILE[4]!]));
    expect(load(bar, 0, 4)).toEqual(text("gee\n"));
  });

  it("a SETUPMAPPING arriving while such a file's WRITE waits on the backend maps what the WRITE wrote", async () => {
    const threeTurns = async () => {
      for (let i = 0; i < 3; i++) await nextTurn();
    };
    const { d, bar } = await ready({ fs: (vol) => waitingFs(new MemFs(vol), ["write"], threeTurns) });
    const f = await lookup(d, "f");
    const fh = await open(d, f);
    const q = d.queues[1]!;
    q.add([d.request(Op.FUSE_WRITE, f, writeIn(fh, 0, text("late")))], [64]);
    d.kick(1);
    q.add([d.request(Op.FUSE_SETUPMAPPING, f, setupIn({ moffset: 0, len: 2 * MiB }))], [64]);
    d.kick(1);
    await settle();
    expect(q.getUsed().map((u) => parseReply(u).error)).toEqual([0, 0]);
    expect(load(bar, 0, 4)).toEqual(text("late"));
  });
});

describe("stores in the window survive a change behind it", () => {
  // Page 2 of f holds a store not yet written back while a request changes f through the backend: the
  // change refreshes mapped bytes from the backend, which must have the store first.
  const KEPT = 2 * PAGE + 8;
  it.each<[string, (d: ReferenceDriver, f: bigint, fh: bigint) => Promise<number>, (after: Uint8Array) => void]>([
    ["WRITE", (d, f, fh) => write(d, f, fh, 100, text("new")), (after) => expect(after.subarray(100, 103)).toEqual(text("new"))],
    ["FALLOCATE", (d, f, fh) => fallocate(d, f, fh, 0, 0, PAGE), (after) => expect(after).toHaveLength(FILE.length)],
    ["FALLOCATE with FALLOC_FL_PUNCH_HOLE", (d, f, fh) => fallocate(d, f, fh, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, PAGE), (after) => expect(after.subarray(0, PAGE).every((b) => b === 0)).toBe(true)],
    [
      "COPY_FILE_RANGE into it",
      async (d, f, fh) => {
        const g = await lookup(d, "g");
        return copyRange(d, { nodeIn: g, fhIn: await open(d, g), nodeOut: f, fhOut: fh, offOut: 100, len: 4 });
      },
      (after) => expect(after.subarray(100, 104)).toEqual(text("gee\n")),
    ],
    ["COPY_FILE_RANGE within it, from the stored page", (d, f, fh) => copyRange(d, { nodeIn: f, fhIn: fh, offIn: KEPT, nodeOut: f, fhOut: fh, offOut: 100, len: 4 }), (after) => expect(after.subarray(100, 104)).toEqual(text("kept"))],
    ["SETATTR of the size", async (d, f) => (await truncate(d, f, KEPT + 100), 0), (after) => expect(after).toHaveLength(KEPT + 100)],
  ])("%s", async (_, change, check) => {
    const { d, bar, vol } = await ready();
    const f = await lookup(d, "f");
    const fh = await open(d, f);
    expect(await setup(d, f, { moffset: 0, len: 2 * MiB, flags: RW })).toBe(0);
    store(bar, KEPT, text("kept"));
    expect(await change(d, f, fh)).toBe(0);
    expect(load(bar, KEPT, 4)).toEqual(text("kept"));
    expect(await fsync(d, f, fh)).toBe(0);
    const after = bytesOf(vol, "/f");
    expect(after.subarray(KEPT, KEPT + 4)).toEqual(text("kept"));
    check(after);
    // The window shows the file as it now is, and zeros past its end.
    expect(load(bar, 0, 4 * PAGE)).toEqual(Uint8Array.from({ length: 4 * PAGE }, (_, i) => after[i] ?? 0));
  });

  it("a WRITE to the page a store went to keeps both", async () => {
    const { d, bar, vol } = await ready();
    const f = await lookup(d, "f");
    const fh = await open(d, f);
    expect(await setup(d, f, { moffset: 0, len: 2 * MiB, flags: RW })).toBe(0);
    store(bar, 300, text("mine"));
    expect(await write(d, f, fh, 100, text("new"))).toBe(0);
    expect([load(bar, 100, 3), load(bar, 300, 4)]).toEqual([text("new"), text("mine")]);
    expect(await fsync(d, f, fh)).toBe(0);
    const after = bytesOf(vol, "/f");
    expect([after.subarray(100, 103), after.subarray(300, 304)]).toEqual([text("new"), text("mine")]);
  });
});

describe("the window and the backend agree whoever asks", () => {
  it("LSEEK finds data stored through the window in a hole", async () => {
    const { d, bar } = await ready();
    const f = await lookup(d, "f");
    const fh = await open(d, f);
    expect(await setup(d, f, { moffset: 0, len: 2 * MiB, flags: RW })).toBe(0);
    expect(await fallocate(d, f, fh, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, PAGE, PAGE)).toBe(0);
    store(bar, PAGE + 8, text("data"));
    const r = await d.fuse(
      Op.FUSE_LSEEK,
      f,
      args(fuse_lseek_in.SIZE, (v) => {
        v.setBigUint64(fuse_lseek_in.fh, fh, true);
        v.setBigUint64(fuse_lseek_in.offset, BigInt(PAGE), true);
        v.setUint32(fuse_lseek_in.whence, SEEK_DATA, true);
      }),
    );
    expect(r.error).toBe(0);
    expect(Number(r.view.getBigUint64(fuse_lseek_out.offset, true))).toBeLessThanOrEqual(PAGE + 8);
  });

  it.each([
    ["OPEN", (d: ReferenceDriver, f: bigint) => open(d, f, O_RDWR | O_TRUNC)],
    [
      "CREATE of an existing name",
      async (d: ReferenceDriver) => {
        const r = await d.fuse(
          Op.FUSE_CREATE,
          FUSE_ROOT_ID,
          args(
            fuse_create_in.SIZE,
            (v) => {
              v.setUint32(fuse_create_in.flags, O_RDWR | O_TRUNC, true);
              v.setUint32(fuse_create_in.mode, 0o100644, true);
            },
            cstr("f"),
          ),
        );
        expect(r.error).toBe(0);
        return r.view.getBigUint64(fuse_entry_out.SIZE + fuse_open_out.fh, true);
      },
    ],
  ])("%s with O_TRUNC empties the mapped pages and drops their stores", async (_, truncating) => {
    const { d, bar, vol, window } = await ready();
    const f = await lookup(d, "f");
    expect(await setup(d, f, { moffset: 0, len: 2 * MiB, flags: RW })).toBe(0);
    store(bar, 100, text("gone"));
    const fh = await truncating(d, f);
    expect(load(bar, 0, 4 * PAGE).every((b) => b === 0)).toBe(true);
    expect(window.dirtyPages()).toBe(0);
    expect(await fsync(d, f, fh)).toBe(0);
    expect(bytesOf(vol, "/f")).toHaveLength(0);
  });

  it("READ and WRITE through fh 0 under zero-message open are coherent with the window", async () => {
    const { d, bar, vol } = await ready({ initFlags: FUSE_INIT_EXT | FUSE_MAP_ALIGNMENT | FUSE_NO_OPEN_SUPPORT });
    const f = await lookup(d, "f");
    expect((await d.fuse(Op.FUSE_OPEN, f, new Uint8Array(fuse_open_in.SIZE))).error).toBe(-Errno.ENOSYS);
    expect(await setup(d, f, { moffset: 0, len: 2 * MiB, flags: RW })).toBe(0);
    store(bar, 2 * PAGE + 8, text("kept"));
    expect(await write(d, f, 0n, 100, text("new"))).toBe(0);
    expect([load(bar, 100, 3), load(bar, 2 * PAGE + 8, 4)]).toEqual([text("new"), text("kept")]);
    const r = await read(d, f, 0n, 2 * PAGE, 12);
    expect(r.payload.subarray(8, 12)).toEqual(text("kept"));
    expect(bytesOf(vol, "/f").subarray(2 * PAGE + 8, 2 * PAGE + 12)).toEqual(text("kept"));
  });
});

describe("hostile mappings", () => {
  const TOP = 1n << 64n;
  it.each<[string, MapArgs]>([
    ["an unaligned moffset", { moffset: 100, len: PAGE }],
    ["an unaligned foffset", { moffset: 0, foffset: 100, len: PAGE }],
    ["an unaligned len", { moffset: 0, len: 100 }],
    ["len 0", { moffset: 0, len: 0 }],
    ["a range starting at the window's end", { moffset: WINDOW, len: PAGE }],
    ["a range running past the window", { moffset: WINDOW - PAGE, len: 2 * PAGE }],
    ["moffset + len wrapping around 2^64", { moffset: TOP - BigInt(PAGE), len: 2 * PAGE }],
    ["a len near 2^64", { moffset: PAGE, len: TOP - BigInt(PAGE) }],
    ["foffset + len wrapping around 2^64", { moffset: 0, foffset: TOP - BigInt(PAGE), len: 2 * PAGE }],
    ["a file offset past 2^53", { moffset: 0, foffset: 1n << 60n, len: PAGE }],
    ["an unknown flag", { moffset: 0, len: PAGE, flags: R | (1n << 2n) }],
    ["flag bit 63", { moffset: 0, len: PAGE, flags: 1n << 63n }],
  ])("refuses %s with EINVAL", async (_, m) => {
    const { d, window } = await ready();
    const f = await lookup(d, "f");
    expect(await setup(d, f, m)).toBe(-Errno.EINVAL);
    expect(window.extents()).toEqual([]);
  });

  it("refuses arguments shorter than fuse_setupmapping_in", async () => {
    const { d } = await ready();
    const f = await lookup(d, "f");
    expect((await d.fuse(Op.FUSE_SETUPMAPPING, f, setupIn({ moffset: 0, len: PAGE }).subarray(0, 39))).error).toBe(-Errno.EINVAL);
  });

  it("maps only regular files the guest holds", async () => {
    const { d, window } = await ready();
    expect(await setup(d, 999, { moffset: 0, len: PAGE })).toBe(-Errno.ENOENT);
    expect(await setup(d, FUSE_ROOT_ID, { moffset: 0, len: PAGE })).toBe(-Errno.EISDIR);
    expect(await setup(d, await lookup(d, "dir"), { moffset: 0, len: PAGE })).toBe(-Errno.EISDIR);
    expect(window.extents()).toEqual([]);
  });

  it("takes a handle instead of -1 only if it is open on that node, with the access the mapping needs", async () => {
    const { d } = await ready();
    const f = await lookup(d, "f");
    const g = await lookup(d, "g");
    const rw = await open(d, f, O_RDWR);
    const ro = await open(d, f, O_RDONLY);
    const wo = await open(d, f, O_WRONLY);
    const gh = await open(d, g);
    const released = await open(d, f);
    expect((await d.fuse(Op.FUSE_RELEASE, f, fhArgs(fuse_release_in.SIZE, released))).error).toBe(0);
    expect(await setup(d, f, { moffset: 0, len: PAGE, fh: 12345n })).toBe(-Errno.EBADF);
    expect(await setup(d, f, { moffset: 0, len: PAGE, fh: released })).toBe(-Errno.EBADF);
    expect(await setup(d, f, { moffset: 0, len: PAGE, fh: gh })).toBe(-Errno.EBADF);
    expect(await setup(d, f, { moffset: 0, len: PAGE, fh: ro, flags: RW })).toBe(-Errno.EACCES);
    expect(await setup(d, f, { moffset: 0, len: PAGE, fh: wo, flags: R })).toBe(-Errno.EACCES);
    expect(await setup(d, f, { moffset: 0, len: PAGE, fh: ro, flags: R })).toBe(0);
    expect(await setup(d, f, { moffset: PAGE, len: PAGE, fh: rw, flags: RW })).toBe(0);
  });

  it("refuses writable mappings on a read-only export with EROFS and maps for reading", async () => {
    const { d, bar, window } = await ready({ fs: (vol) => new MemFs(vol, { readOnly: true }) });
    const f = await lookup(d, "f");
    expect(await setup(d, f, { moffset: 0, len: PAGE, flags: RW })).toBe(-Errno.EROFS);
    expect(await setup(d, f, { moffset: 0, len: PAGE, flags: R })).toBe(0);
    store(bar, 0, text("nope"));
    expect(window.dirtyPages()).toBe(0);
  });

  it("replaces mapped pages (MAP_FIXED) without losing what was stored in them", async () => {
    const { d, bar, vol, window } = await ready();
    const f = await lookup(d, "f");
    const g = await lookup(d, "g");
    const fh = await open(d, f);
    expect(await setup(d, f, { moffset: 0, len: 4 * PAGE, flags: RW })).toBe(0);
    store(bar, 0, text("CC"));
    store(bar, 2 * PAGE + 8, text("BB")); // in the part g replaces below
    expect(await setup(d, g, { moffset: 2 * PAGE, len: 2 * PAGE })).toBe(0);
    expect(bytesOf(vol, "/f").subarray(2 * PAGE + 8, 2 * PAGE + 10)).toEqual(text("BB"));
    expect(load(bar, 2 * PAGE, 4)).toEqual(text("gee\n"));
    expect(load(bar, 2 * PAGE + 4, PAGE - 4).every((b) => b === 0)).toBe(true);
    // What is left of f's mapping still works, and its stores still reach f.
    store(bar, PAGE, text("DD"));
    expect((await d.fuse(Op.FUSE_FSYNC, f, fhArgs(fuse_fsync_in.SIZE, fh))).error).toBe(0);
    const after = bytesOf(vol, "/f");
    expect(after.subarray(0, 2)).toEqual(text("CC"));
    expect(after.subarray(PAGE, PAGE + 2)).toEqual(text("DD"));
    expect(window.extents().map((e) => [e.offset, e.length])).toEqual([
      [0, 2 * PAGE],
      [2 * PAGE, 2 * PAGE],
    ]);
  });

  it("keeps at most MAX_MAPPED_INODES files mapped (each holds a backend handle)", async () => {
    const vol = tree();
    for (let i = 0; i <= MAX_MAPPED_INODES; i++) vol.writeFileSync(`/n${i}`, `${i}`);
    const { d } = await ready({ vol, window: 2 * MiB });
    const nodes: bigint[] = [];
    for (let i = 0; i <= MAX_MAPPED_INODES; i++) nodes.push(await lookup(d, `n${i}`));
    for (let i = 0; i < MAX_MAPPED_INODES; i++) expect(await setup(d, nodes[i]!, { moffset: i * PAGE, len: PAGE })).toBe(0);
    const last = nodes[MAX_MAPPED_INODES]!;
    expect(await setup(d, last, { moffset: MAX_MAPPED_INODES * PAGE, len: PAGE })).toBe(-Errno.EMFILE);
    expect(await remove(d, nodes[0]!, [[0, PAGE]])).toBe(0);
    expect(await setup(d, last, { moffset: MAX_MAPPED_INODES * PAGE, len: PAGE })).toBe(0);
  });

  it("closes the backend handles it opened once nothing of their files is mapped", async () => {
    let open = 0;
    const { d, server } = await ready({
      fs: (vol) =>
        wrap(new MemFs(vol), (name, call) =>
          name === "open" || name === "release"
            ? async (...a) => {
                const r = await call(...a);
                open += name === "open" ? 1 : -1;
                return r;
              }
            : undefined,
        ),
    });
    const f = await lookup(d, "f");
    const g = await lookup(d, "g");
    expect(await setup(d, f, { moffset: 0, len: 2 * MiB, flags: RW })).toBe(0);
    expect(await setup(d, g, { moffset: 2 * MiB, len: 2 * MiB })).toBe(0);
    expect(await setup(d, g, { moffset: 4 * MiB, len: 2 * MiB })).toBe(0);
    expect(open).toBe(2);
    expect(await setup(d, g, { moffset: 0, len: 2 * MiB })).toBe(0); // replaces all of f's pages
    expect(open).toBe(1);
    expect(await setup(d, await lookup(d, "dir"), { moffset: 0, len: PAGE })).toBe(-Errno.EISDIR);
    expect(await remove(d, g, [[0, 6 * MiB]])).toBe(0);
    expect(open).toBe(0);
    expect(await setup(d, f, { moffset: 0, len: 2 * MiB })).toBe(0);
    await server.reset();
    expect(open).toBe(0);
  });
});

describe("hostile REMOVEMAPPING", () => {
  it.each<[string, Uint8Array]>([
    ["count 0", removeIn([], 0)],
    ["count above FUSE_REMOVEMAPPING_MAX_ENTRY", removeIn(Array.from({ length: FUSE_REMOVEMAPPING_MAX_ENTRY + 1 }, () => [0, PAGE]))],
    ["fewer entries than count says", removeIn([[0, PAGE]], 2)],
    ["more entries than count says", removeIn([[0, PAGE], [PAGE, PAGE]], 1)],
    ["a truncated entry", removeIn([[0, PAGE]]).subarray(0, fuse_removemapping_in.SIZE + 8)],
    ["no fuse_removemapping_in", new Uint8Array(0)],
    ["an unaligned entry", removeIn([[0, PAGE], [PAGE + 1, PAGE]])],
    ["an empty entry", removeIn([[0, 0]])],
    ["an entry past the window", removeIn([[WINDOW - PAGE, 2 * PAGE]])],
    ["an entry wrapping around 2^64", removeIn([[(1n << 64n) - BigInt(PAGE), 2 * PAGE]])],
  ])("refuses %s with EINVAL and removes nothing", async (_, body) => {
    const { d, window } = await ready();
    const f = await lookup(d, "f");
    expect(await setup(d, f, { moffset: 0, len: 2 * PAGE })).toBe(0);
    expect((await d.fuse(Op.FUSE_REMOVEMAPPING, f, body)).error).toBe(-Errno.EINVAL);
    expect(window.extents()).toHaveLength(1);
  });

  it("takes FUSE_REMOVEMAPPING_MAX_ENTRY entries in one request", async () => {
    const { d, window } = await ready();
    const f = await lookup(d, "f");
    expect(await setup(d, f, { moffset: 0, len: 2 * MiB })).toBe(0);
    const entries = Array.from({ length: FUSE_REMOVEMAPPING_MAX_ENTRY }, (_, i): [number, number] => [i * PAGE, PAGE]);
    expect(await remove(d, f, entries)).toBe(0);
    expect(window.extents()).toEqual([{ offset: 256 * PAGE, length: 2 * MiB - 256 * PAGE, owner: expect.any(Number), fileOffset: 256 * PAGE, writable: false }]);
  });

  it("succeeds for ranges nothing is mapped in (munmap), removing only what is mapped", async () => {
    const { d, window } = await ready();
    const f = await lookup(d, "f");
    expect(await remove(d, f, [[0, 2 * MiB]])).toBe(0);
    expect(await setup(d, f, { moffset: 2 * MiB, len: 2 * MiB })).toBe(0);
    expect(await remove(d, FUSE_ROOT_ID, [[MiB, 2 * MiB]])).toBe(0);
    expect(window.extents().map((e) => [e.offset, e.length, e.fileOffset])).toEqual([[3 * MiB, MiB, MiB]]);
  });
});
