import { createHash } from "node:crypto";
import { Volume } from "memfs";
import { beforeAll, describe, expect, it } from "vitest";
import { O_CREAT, O_RDWR, O_WRONLY, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from "../../src/vfs/linux.ts";
import type { FileAttr } from "../../src/vfs/filesystem.ts";
import { MemFs, SparseData } from "../../src/fs/memfs/memfs.ts";
import { createSampleTree } from "../../src/fs/sample-tree.ts";
import { buildVolume } from "../support/memfs-fixture.ts";
import { errnoOf, fsConformance } from "./fs-conformance.ts";

fsConformance(
  "memfs",
  async (items, options) => {
    const vol = buildVolume(items);
    return {
      fs: new MemFs(vol, options),
      addFile: async (path) => vol.writeFileSync(`/${path}`, "new"),
      remove: async (path) => vol.unlinkSync(`/${path}`),
      cleanup: async () => {},
    };
  },
  { holeGranularity: SparseData.CHUNK, timePrecisionNs: 1 },
);

const CRED = { uid: 1000, gid: 1000 };
const text = (s: string): Uint8Array => new TextEncoder().encode(s);

describe("memfs backend", () => {
  it("reports the statfs capacity it was given and the space in use", async () => {
    const vol = new Volume();
    vol.writeFileSync("/f", new Uint8Array(10_000));
    const fs = new MemFs(vol, { capacity: 1 << 20, maxInodes: 100 });
    expect(await fs.statfs(fs.rootIno)).toEqual({
      blocks: 256,
      bfree: 256 - 3,
      bavail: 256 - 3,
      files: 100,
      ffree: 98, // the root and /f
      bsize: 4096,
      namelen: 255,
      frsize: 4096,
    });
  });

  it("counts the blocks and inodes written, holes excluded, and frees them with the last link and handle", async () => {
    const fs = new MemFs(new Volume(), { capacity: 16 << 20, maxInodes: 100 });
    const empty = await fs.statfs(fs.rootIno);
    const { attr, fh } = await fs.create(fs.rootIno, "f", 0o644, O_CREAT | O_RDWR, CRED);
    await fs.write(fh, 0, new Uint8Array(1 << 20).fill(1));
    await fs.write(fh, 2 ** 32 + 5, text("x"));
    expect((await fs.getattr(attr.ino)).blocks).toBe(((1 << 20) / 4096 + 1) * 8);
    expect(await fs.statfs(fs.rootIno)).toMatchObject({ bfree: empty.bfree - 257, ffree: empty.ffree - 1 });
    await fs.mkdir(fs.rootIno, "d", 0o755, CRED);
    expect((await fs.statfs(fs.rootIno)).ffree).toBe(empty.ffree - 2);
    await fs.unlink(fs.rootIno, "f");
    expect((await fs.statfs(fs.rootIno)).bfree).toBe(empty.bfree - 257); // still open
    await fs.release(fh);
    await fs.rmdir(fs.rootIno, "d");
    expect(await fs.statfs(fs.rootIno)).toMatchObject({ bfree: empty.bfree, ffree: empty.ffree });
  });

  it("refuses fallocate past its capacity with ENOSPC, but not writes", async () => {
    const fs = new MemFs(new Volume(), { capacity: 1 << 20 });
    const { fh } = await fs.create(fs.rootIno, "f", 0o644, O_CREAT | O_RDWR, CRED);
    await fs.fallocate(fh, 0, 0, 512 << 10);
    expect(await errnoOf(() => fs.fallocate(fh, 0, 0, 2 << 20))).toBe("ENOSPC");
    expect(await fs.write(fh, 0, new Uint8Array(2 << 20))).toBe(2 << 20);
    await fs.release(fh);
  });

  it("keeps the Volume a faithful view of what the guest writes, and the other way round", async () => {
    const vol = new Volume();
    vol.writeFileSync("/old", "memfs wrote this");
    const fs = new MemFs(vol);
    const old = await fs.lookup(fs.rootIno, "old");
    const fh = await fs.open(old.ino, O_RDWR);
    await fs.write(fh, 0, text("MEMFS"));
    expect(vol.readFileSync("/old", "utf8")).toBe("MEMFS wrote this");
    vol.appendFileSync("/old", "!");
    expect(new TextDecoder().decode(await fs.read(fh, 0, 100))).toBe("MEMFS wrote this!");
    vol.truncateSync("/old", 5);
    expect((await fs.getattr(old.ino)).size).toBe(5);
    await fs.release(fh);

    const made = await fs.create(fs.rootIno, "new", 0o666, O_CREAT | O_WRONLY, CRED); // memfs's own calls check modes
    await fs.write(made.fh, 3, text("abc"));
    await fs.release(made.fh);
    await fs.mkdir(fs.rootIno, "dir", 0o755, CRED);
    await fs.rename(fs.rootIno, "new", (await fs.lookup(fs.rootIno, "dir")).ino, "moved", 0);
    expect([...vol.readFileSync("/dir/moved")]).toEqual([0, 0, 0, 0x61, 0x62, 0x63]);
    expect(vol.statSync("/dir/moved")).toMatchObject({ size: 6, mode: S_IFREG | 0o666, uid: CRED.uid });
    expect(vol.readdirSync("/")).toEqual(["dir", "old"]);
    vol.writeFileSync("/dir/moved", "replaced");
    expect(await fs.getattr(made.attr.ino)).toMatchObject({ size: 8 });
  });

  it("gives memfs's times to the millisecond, and times set through the backend to the nanosecond", async () => {
    const vol = new Volume();
    vol.writeFileSync("/f", "x");
    vol.utimesSync("/f", 1_700_000_000.25, 1_600_000_000.5);
    const fs = new MemFs(vol);
    const attr = await fs.lookup(1, "f");
    expect(attr.atime).toEqual({ sec: 1_700_000_000, nsec: 250_000_000 });
    expect(attr.mtime).toEqual({ sec: 1_600_000_000, nsec: 500_000_000 });
    const exact = { sec: 1_234_567_890, nsec: 123_456_789 };
    expect(await fs.setattr(attr.ino, { mtime: exact, ctime: exact })).toMatchObject({ mtime: exact, ctime: exact });
    vol.utimesSync("/f", 1, 2); // memfs changes it behind the backend's back: its value wins
    expect((await fs.getattr(attr.ino)).mtime).toEqual({ sec: 2, nsec: 0 });
  });

  it("is read-write by default and read-only on request", () => {
    expect(new MemFs().capabilities.readOnly).toBe(false);
    expect(new MemFs(new Volume(), { readOnly: true }).capabilities.readOnly).toBe(true);
  });
});

describe("SparseData", () => {
  it("reads zeros in holes and keeps bytes past the end zero through truncation", () => {
    const d = new SparseData();
    d.write(Uint8Array.from([1, 2, 3]), 4094);
    expect(d.size).toBe(4097);
    expect(d.chunkCount).toBe(2);
    d.setSize(4095);
    d.setSize(9000);
    const out = new Uint8Array(9000);
    expect(d.read(out, 0)).toBe(9000);
    expect([...out.subarray(4093, 4097)]).toEqual([0, 1, 0, 0]);
    expect(d.chunkCount).toBe(1);
  });

  it("punches holes, dropping whole chunks", () => {
    const d = new SparseData();
    d.write(new Uint8Array(3 * 4096).fill(7), 0);
    d.punch(100, 2 * 4096);
    expect(d.chunkCount).toBe(2);
    expect(d.nextHole(0)).toBe(4096);
    expect(d.nextData(4096)).toBe(2 * 4096);
    const out = new Uint8Array(3 * 4096);
    d.read(out, 0);
    expect(out.subarray(0, 100).every((b) => b === 7)).toBe(true);
    expect(out.subarray(100, 100 + 2 * 4096).every((b) => b === 0)).toBe(true);
    expect(out.subarray(100 + 2 * 4096).every((b) => b === 7)).toBe(true);
  });

  it("copies holes as holes", () => {
    const src = new SparseData();
    src.write(text("a"), 0);
    src.write(text("z"), 1 << 30);
    const dst = new SparseData();
    dst.write(new Uint8Array(8192).fill(9), 4096);
    dst.copy(src, 0, 0, src.size);
    expect(dst.size).toBe((1 << 30) + 1);
    expect(dst.chunkCount).toBe(2);
    const out = new Uint8Array(3);
    dst.read(out, 4095);
    expect([...out]).toEqual([0, 0, 0]);
  });
});

describe("createSampleTree", () => {
  const fs = new MemFs();
  beforeAll(() => createSampleTree(fs));

  async function resolve(path: string): Promise<FileAttr> {
    let attr = await fs.getattr(fs.rootIno);
    for (const name of path.split("/")) attr = await fs.lookup(attr.ino, name);
    return attr;
  }

  async function read(path: string): Promise<Uint8Array> {
    const fh = await fs.open((await resolve(path)).ino, 0);
    const data = await fs.read(fh, 0, 4 << 20);
    await fs.release(fh);
    return data;
  }

  const decode = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

  it("is owned by root, with a 0755 root directory", async () => {
    expect(await fs.getattr(fs.rootIno)).toMatchObject({ mode: S_IFDIR | 0o755, uid: 0, gid: 0 });
    for (const path of ["README", "bin/hello.sh", "odd names/日本語.txt", "deepest"]) {
      expect(await resolve(path)).toMatchObject({ uid: 0, gid: 0 });
    }
  });

  it("has a README that explains the mount, and whose checksum matches the data file", async () => {
    const readme = decode(await read("README"));
    expect(readme).toContain("virtiofs.ko");
    const data = await read("data/random-1MiB.bin");
    expect(data.length).toBe(1 << 20);
    expect(readme).toContain(createHash("sha256").update(data).digest("hex"));
  });

  it("has an executable script, nested directories, symlinks, a hard link and odd names", async () => {
    expect(await resolve("bin/hello.sh")).toMatchObject({ mode: S_IFREG | 0o755 });
    expect(decode(await read("bin/hello.sh"))).toMatch(/^#!\/bin\/sh\n/);
    expect(decode(await read("docs/deep/deeper/deepest/bottom.txt"))).toContain("bottom");
    expect((await resolve("deepest")).mode & S_IFMT).toBe(S_IFLNK);
    expect(await fs.readlink((await resolve("deepest")).ino)).toBe("docs/deep/deeper/deepest");
    expect(await fs.readlink((await resolve("README.link")).ino)).toBe("README");
    const hello = await resolve("hello.txt");
    expect(hello.nlink).toBe(2);
    expect((await resolve("docs/hello-again.txt")).ino).toBe(hello.ino);
    for (const name of ["with spaces.txt", "ünïcødé.txt", "日本語.txt", "penguin 🐧.txt"]) {
      expect((await resolve(`odd names/${name}`)).mode).toBe(S_IFREG | 0o644);
    }
    expect((await resolve("empty")).nlink).toBe(2);
  });
});
