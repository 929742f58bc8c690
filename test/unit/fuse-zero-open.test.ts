// Zero-message open (FUSE_NO_OPEN_SUPPORT): the first OPEN is answered ENOSYS, files are then read and
// written through fh 0, which stands for one backend handle per node, held until the node is forgotten.
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Volume } from "memfs";
import { describe, expect, it } from "vitest";
import { VirtioFsDevice } from "../../device/virtio-fs.ts";
import {
  FUSE_NO_OPEN_SUPPORT,
  FUSE_ROOT_ID,
  FuseOpcode as Op,
  fuse_create_in,
  fuse_entry_out,
  fuse_flush_in,
  fuse_forget_in,
  fuse_open_in,
  fuse_open_out,
  fuse_read_in,
  fuse_release_in,
  fuse_rename_in,
  fuse_write_in,
} from "../../src/fuse/abi.ts";
import { FuseServer } from "../../src/fuse/server.ts";
import type { CacheMode } from "../../src/fuse/session.ts";
import { Errno } from "../../src/vfs/errno.ts";
import type { FileSystem, Handle, Ino } from "../../src/vfs/filesystem.ts";
import { HostDirFs } from "../../src/fs/hostdir/hostdir.ts";
import { MemFs } from "../../src/fs/memfs/memfs.ts";
import { FakeBus } from "../support/fake-bus.ts";
import { ReferenceDriver, args, cstr, settle } from "../support/reference-driver.ts";

const O_RDONLY = 0;
const O_WRONLY = 1;
const O_RDWR = 2;
const O_CREAT = 0o100;
const S_IFREG = 0o100000;

/** MemFs that counts the backend handles open right now. */
class CountingFs extends MemFs {
  readonly live = new Set<Handle>();
  override open(ino: Ino, flags: number): Handle {
    const fh = super.open(ino, flags);
    this.live.add(fh);
    return fh;
  }
  override create(...a: Parameters<MemFs["create"]>): ReturnType<MemFs["create"]> {
    const r = super.create(...a);
    this.live.add(r.fh);
    return r;
  }
  override release(fh: Handle): void {
    this.live.delete(fh);
    super.release(fh);
  }
}

/** CountingFs with a flush that records the handles it flushed, as a backend that buffers writes. */
class FlushingFs extends CountingFs {
  readonly flushed: Handle[] = [];
  async flush(fh: Handle): Promise<void> {
    this.flushed.push(fh);
  }
}

async function boot(fs: FileSystem, cache: CacheMode, offer: boolean) {
  const bus = new FakeBus(32 << 20);
  const server = new FuseServer({ fs, cache });
  new VirtioFsDevice(bus, { tag: "t", handler: server.handle });
  const d = new ReferenceDriver(bus);
  d.probe({ eventIdx: true, indirect: true });
  expect((await d.init(offer ? Number(FUSE_NO_OPEN_SUPPORT) : 0)).error).toBe(0);
  const lookup = async (name: string) => (await d.fuse(Op.FUSE_LOOKUP, FUSE_ROOT_ID, cstr(name))).view.getBigUint64(fuse_entry_out.nodeid, true);
  return { d, lookup };
}

async function ready(opts: { cache?: CacheMode; readOnly?: boolean; offer?: boolean } = {}) {
  const vol = new Volume();
  vol.writeFileSync("/f", "0123456789");
  const fs = new CountingFs(vol, { readOnly: opts.readOnly });
  return { fs, vol, ...(await boot(fs, opts.cache ?? "auto", opts.offer !== false)) };
}

const openIn = (flags: number) => args(fuse_open_in.SIZE, (v) => v.setUint32(fuse_open_in.flags, flags, true));
const readIn = (fh: bigint, offset: number, size: number) =>
  args(fuse_read_in.SIZE, (v) => {
    v.setBigUint64(fuse_read_in.fh, fh, true);
    v.setBigUint64(fuse_read_in.offset, BigInt(offset), true);
    v.setUint32(fuse_read_in.size, size, true);
  });
const writeIn = (fh: bigint, offset: number, data: string) =>
  args(
    fuse_write_in.SIZE,
    (v) => {
      v.setBigUint64(fuse_write_in.fh, fh, true);
      v.setBigUint64(fuse_write_in.offset, BigInt(offset), true);
      v.setUint32(fuse_write_in.size, data.length, true);
    },
    new TextEncoder().encode(data),
  );
const forgetIn = (n: number) => args(fuse_forget_in.SIZE, (v) => v.setBigUint64(fuse_forget_in.nlookup, BigInt(n), true));
const text = (b: Uint8Array) => new TextDecoder().decode(b);

describe("zero-message open", () => {
  it("answers OPEN with ENOSYS, then serves READ and WRITE on fh 0 through one handle per node", async () => {
    const { d, fs, vol, lookup } = await ready();
    const node = await lookup("f");
    expect((await d.fuse(Op.FUSE_OPEN, node, openIn(O_RDONLY))).error).toBe(-Errno.ENOSYS);
    expect(fs.live.size).toBe(0); // nothing opened until data moves
    expect(text((await d.fuse(Op.FUSE_READ, node, readIn(0n, 2, 4))).payload)).toBe("2345");
    expect((await d.fuse(Op.FUSE_WRITE, node, writeIn(0n, 8, "xy"))).error).toBe(0);
    expect(vol.readFileSync("/f", "utf8")).toBe("01234567xy");
    expect(fs.live.size).toBe(1); // the read and the write shared the node's handle
    // FORGET of the last reference gives it back.
    await d.post(0, [d.request(Op.FUSE_FORGET, node, forgetIn(1))], []);
    await settle();
    expect(fs.live.size).toBe(0);
  });

  it("stays off for cache=never (FOPEN_DIRECT_IO travels in OPEN's reply), for a read-only export, and when the kernel does not offer it", async () => {
    for (const opts of [{ cache: "never" as const }, { cache: "metadata" as const }, { readOnly: true }, { offer: false }]) {
      const { d, lookup } = await ready(opts);
      const node = await lookup("f");
      const r = await d.fuse(Op.FUSE_OPEN, node, openIn(O_RDONLY));
      expect(r.error).toBe(0);
      expect(r.view.getBigUint64(fuse_open_out.fh, true)).toBeGreaterThan(0n);
      // ...and fh 0 is then no handle at all.
      expect((await d.fuse(Op.FUSE_READ, node, readIn(0n, 0, 4))).error).toBe(-Errno.EBADF);
    }
  });

  it("CREATE answers fh 0; a write-only create still leaves a node handle that reads", async () => {
    const { d, fs, vol } = await ready();
    const r = await d.fuse(
      Op.FUSE_CREATE,
      FUSE_ROOT_ID,
      args(fuse_create_in.SIZE, (v) => {
        v.setUint32(fuse_create_in.flags, O_WRONLY | O_CREAT, true);
        v.setUint32(fuse_create_in.mode, S_IFREG | 0o644, true);
      }, cstr("new")),
    );
    expect(r.error).toBe(0);
    expect(r.view.getBigUint64(fuse_entry_out.SIZE + fuse_open_out.fh, true)).toBe(0n);
    const node = r.view.getBigUint64(fuse_entry_out.nodeid, true);
    expect((await d.fuse(Op.FUSE_WRITE, node, writeIn(0n, 0, "hello"))).error).toBe(0);
    expect(text((await d.fuse(Op.FUSE_READ, node, readIn(0n, 0, 16))).payload)).toBe("hello");
    expect(vol.readFileSync("/new", "utf8")).toBe("hello");
    expect(fs.live.size).toBe(1); // the write-only create handle went back; the node's is read-write
    // Before the kernel's first OPEN met ENOSYS, it still releases CREATE's fh 0: a no-op.
    expect((await d.fuse(Op.FUSE_RELEASE, node, args(fuse_release_in.SIZE, () => {}))).error).toBe(0);
    expect(fs.live.size).toBe(1);
  });

  it("a file the guest holds stays readable after its last name goes (UNLINK, or RENAME over it), on a host directory", async () => {
    // hostdir reaches an unlinked file only through an open handle: the node's is opened before the name goes.
    const root = await mkdtemp(join(tmpdir(), "vfsw-zero-open-"));
    try {
      await writeFile(join(root, "f"), "0123456789");
      await writeFile(join(root, "g"), "other");
      await writeFile(join(root, "h"), "new");
      const fs = await HostDirFs.open(root);
      const { d } = await boot(fs, "auto", true);
      const lookup = async (name: string) => (await d.fuseAwait(Op.FUSE_LOOKUP, FUSE_ROOT_ID, cstr(name))).view.getBigUint64(fuse_entry_out.nodeid, true);
      const f = await lookup("f");
      const g = await lookup("g");
      expect((await d.fuseAwait(Op.FUSE_UNLINK, FUSE_ROOT_ID, cstr("f"))).error).toBe(0);
      expect(existsSync(join(root, "f"))).toBe(false);
      expect(text((await d.fuseAwait(Op.FUSE_READ, f, readIn(0n, 0, 16))).payload)).toBe("0123456789");
      const rename = new Uint8Array([...args(fuse_rename_in.SIZE, (v) => v.setBigUint64(fuse_rename_in.newdir, BigInt(FUSE_ROOT_ID), true)), ...cstr("h"), ...cstr("g")]);
      expect((await d.fuseAwait(Op.FUSE_RENAME, FUSE_ROOT_ID, rename)).error).toBe(0);
      expect(text((await d.fuseAwait(Op.FUSE_READ, g, readIn(0n, 0, 16))).payload)).toBe("other");
      await fs.close();
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it("FLUSH is ENOSYS where the backend has nothing to do on close, so Linux stops sending it", async () => {
    const { d, fs, lookup } = await ready();
    expect((await d.fuse(Op.FUSE_FLUSH, await lookup("f"), new Uint8Array(fuse_flush_in.SIZE))).error).toBe(-Errno.ENOSYS);
    expect(fs.live.size).toBe(0);
  });

  it("FLUSH on fh 0 flushes the node's handle, and opens none for a file never read", async () => {
    const fs = new FlushingFs(Volume.fromJSON({ "/f": "0123456789" }));
    const { d, lookup } = await boot(fs, "auto", true);
    const node = await lookup("f");
    const flush = () => d.fuse(Op.FUSE_FLUSH, node, new Uint8Array(fuse_flush_in.SIZE));
    expect((await flush()).error).toBe(0);
    expect([fs.live.size, fs.flushed.length]).toEqual([0, 0]);
    expect((await d.fuse(Op.FUSE_READ, node, readIn(0n, 0, 4))).error).toBe(0);
    expect((await flush()).error).toBe(0);
    expect(fs.flushed).toEqual([...fs.live]);
  });

  it("DESTROY gives every node handle back", async () => {
    const { d, fs, vol, lookup } = await ready();
    vol.writeFileSync("/g", "other");
    for (const name of ["f", "g"]) expect((await d.fuse(Op.FUSE_READ, await lookup(name), readIn(0n, 0, 4))).error).toBe(0);
    expect(fs.live.size).toBe(2);
    expect((await d.fuse(Op.FUSE_DESTROY, FUSE_ROOT_ID)).error).toBe(0);
    expect(fs.live.size).toBe(0);
  });

  it("a write on a read-only export never reaches zero-open (OPEN for writing fails with EROFS)", async () => {
    const { d, lookup } = await ready({ readOnly: true });
    expect((await d.fuse(Op.FUSE_OPEN, await lookup("f"), openIn(O_RDWR))).error).toBe(-Errno.EROFS);
  });
});
