import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Volume } from "memfs";
import { describe, expect, it } from "vitest";
import { ImageFs } from "../../src/fs/image/image.ts";
import { parseImageIndex } from "../../src/fs/image/index.ts";
import { OverlayFs } from "../../src/fs/image/overlay.ts";
import { MemFs, SparseData } from "../../src/fs/memfs/memfs.ts";
import { HostDirFs } from "../../src/fs/hostdir/hostdir.ts";
import { blobPath } from "../../src/fs/image/format.ts";
import { MAX_IO_SIZE, O_CREAT, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY, S_IFCHR, S_IFDIR, S_IFIFO, S_IFREG } from "../../src/vfs/linux.ts";
import type { FileAttr, FileSystem, Ino } from "../../src/vfs/filesystem.ts";
import { buildImage, type BuiltImage, type ImageItem } from "../support/image-builder.ts";
import { inoOf, mountOverlay, throughOverlay } from "../support/overlay-fixture.ts";
import { errnoOf, fsConformance, pattern } from "./fs-conformance.ts";

async function overlayOf(items: readonly ImageItem[], upper: FileSystem = new MemFs()): Promise<{ fs: OverlayFs; upper: FileSystem; image: BuiltImage }> {
  const image = await buildImage(items);
  return { fs: await mountOverlay(image, upper), upper, image };
}

/** A second mount over the same layers' storage, as after a reload with an OPFS upper. */
const remount = mountOverlay;

fsConformance(
  "overlay (image under memfs)",
  async (items, options) => {
    const { fs } = await overlayOf(items, new MemFs(new Volume(), { readOnly: options?.readOnly === true }));
    return {
      fs,
      ...throughOverlay(fs),
      cleanup: async () => {},
    };
  },
  { holeGranularity: SparseData.CHUNK, timePrecisionNs: 1 },
);

// A host directory as the upper layer: the conventions (whiteouts, xattrs) go through another backend's
// own storage of them, as they would through OPFS. HostDirFs knows a file by the path it was last looked
// up by; the overlay looks a name up before removing it, so the one test that unlinks that name of a file
// with another name left is skipped (lastNameHardLinks).
fsConformance(
  "overlay (image under a host directory)",
  async (items, options) => {
    const dir = await mkdtemp(join(tmpdir(), "vfsw-overlay-"));
    const upper = await HostDirFs.open(dir, { readOnly: options?.readOnly === true });
    const { fs } = await overlayOf(items, upper);
    return {
      fs,
      ...throughOverlay(fs),
      cleanup: async () => {
        await upper.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  },
  { holeGranularity: undefined, timePrecisionNs: 1000, lastNameHardLinks: true },
);

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const CRED = { uid: 1234, gid: 5678 };
const T1: [number, number] = [1_500_000_000, 111_111_111];
const DATA = pattern((2 << 20) + 777, 3); // more than one copy chunk

const ITEMS: ImageItem[] = [
  { kind: "dir", path: "etc", mode: 0o755, uid: 0, gid: 0, mtime: T1 },
  { kind: "file", path: "etc/secret", mode: 0o640, data: DATA, uid: 1000, gid: 100, mtime: T1, xattrs: { "user.tag": text("lower"), "security.selinux": text("etc_t\0") } },
  { kind: "file", path: "etc/plain", mode: 0o644, data: text("plain\n") },
  { kind: "dir", path: "etc/sub", mode: 0o700, uid: 7, gid: 8 },
  { kind: "file", path: "etc/sub/deep", mode: 0o600, data: text("deep\n") },
  { kind: "symlink", path: "etc/sub/link", target: "../plain" },
  { kind: "special", path: "etc/sub/fifo", mode: S_IFIFO | 0o644, rdev: 0 },
  { kind: "file", path: "h1", mode: 0o644, data: text("linked\n") },
  { kind: "hardlink", path: "etc/h2", existing: "h1" },
  { kind: "dir", path: "d", mode: 0o755 },
  { kind: "file", path: "d/a", mode: 0o644, data: text("a") },
  { kind: "file", path: "d/b", mode: 0o644, data: text("b") },
  // An image may carry the overlay's own xattrs (say, made from an upper layer): they mean nothing in the lower one.
  { kind: "dir", path: "e", mode: 0o755, xattrs: { "trusted.overlay.opaque": text("y"), "user.kept": text("1") } },
  { kind: "file", path: "e/f", mode: 0o644, data: text("f") },
];

async function read(fs: FileSystem, ino: Ino): Promise<Uint8Array> {
  const fh = await fs.open(ino, O_RDONLY);
  const data = await fs.read(fh, 0, MAX_IO_SIZE);
  await fs.release(fh);
  return data;
}

async function names(fs: FileSystem, ino: Ino): Promise<string[]> {
  const dh = await fs.opendir(ino);
  const entries = await fs.readdir(dh, 0);
  await fs.releasedir(dh);
  return entries.map((e) => e.name).filter((n) => n !== "." && n !== "..").sort();
}

/** What the upper layer itself holds at `path`, or undefined. */
async function inUpper(upper: FileSystem, path: string): Promise<FileAttr | undefined> {
  let attr = await upper.getattr(upper.rootIno);
  for (const name of path.split("/")) {
    try {
      attr = await upper.lookup(attr.ino, name);
    } catch {
      return undefined;
    }
  }
  return attr;
}

describe("OverlayFs", () => {
  it("copies up on a write with data, mode, owner, times and xattrs as they were, the parent's times too", async () => {
    const { fs, upper } = await overlayOf(ITEMS);
    const etc = await fs.lookup(fs.rootIno, "etc");
    const before = await fs.lookup(etc.ino, "secret");
    expect(before).toMatchObject({ mode: S_IFREG | 0o640, uid: 1000, gid: 100, mtime: { sec: T1[0], nsec: T1[1] }, size: DATA.length });
    expect(await inUpper(upper, "etc")).toBeUndefined();
    const fh = await fs.open(before.ino, O_RDWR);
    // Everything the guest sees but the allocation, which is the upper layer's.
    const seen = ({ blocks: _, ...rest }: FileAttr): Omit<FileAttr, "blocks"> => rest;
    expect(seen(await fs.getattr(before.ino))).toEqual(seen(before));
    expect(seen(await fs.getattr(etc.ino))).toEqual(seen(etc));
    expect(await inUpper(upper, "etc/secret")).toMatchObject({ mode: S_IFREG | 0o640, uid: 1000, size: DATA.length });
    expect(Buffer.from(await fs.read(fh, 0, MAX_IO_SIZE)).equals(Buffer.from(DATA))).toBe(true);
    expect((await fs.listxattr(before.ino)).sort()).toEqual(["security.selinux", "user.tag"]);
    expect(await fs.getxattr(before.ino, "user.tag")).toEqual(text("lower"));
    await fs.write(fh, 1, text("XY"));
    await fs.release(fh);
    const after = await fs.getattr(before.ino);
    expect(after.mtime).not.toEqual(before.mtime);
    expect(after.ino).toBe(before.ino);
    const copy = (await inUpper(upper, "etc/secret"))!;
    const want = Buffer.from(DATA);
    want.set(text("XY"), 1);
    const got = Buffer.from(await read(upper, copy.ino));
    expect([got.length, got.equals(want)]).toEqual([DATA.length, true]);
  });

  it("copies up on chmod, chown, utimens, setxattr and link, each keeping the rest", async () => {
    const { fs, upper } = await overlayOf(ITEMS);
    const sub = await fs.lookup(await inoOf(fs, "etc"), "sub");
    const deep = await fs.lookup(sub.ino, "deep");
    expect(await fs.setattr(deep.ino, { mode: 0o604 })).toMatchObject({ mode: S_IFREG | 0o604, mtime: deep.mtime, uid: deep.uid });
    expect(await read(fs, deep.ino)).toEqual(text("deep\n"));
    expect(await inUpper(upper, "etc/sub")).toMatchObject({ mode: S_IFDIR | 0o700, uid: 7, gid: 8 });
    const link = await fs.lookup(sub.ino, "link");
    expect(await fs.setattr(link.ino, { uid: 9 })).toMatchObject({ uid: 9, size: "../plain".length });
    expect(await fs.readlink(link.ino)).toBe("../plain");
    const fifo = await fs.lookup(sub.ino, "fifo");
    await fs.setxattr(fifo.ino, "user.x", text("1"), 0);
    expect(await inUpper(upper, "etc/sub/fifo")).toMatchObject({ mode: S_IFIFO | 0o644 });
    const plain = await fs.lookup(await inoOf(fs, "etc"), "plain");
    expect(await fs.link(plain.ino, fs.rootIno, "plain2")).toMatchObject({ ino: plain.ino, nlink: 2 });
    expect((await inUpper(upper, "plain2"))!.ino).toBe((await inUpper(upper, "etc/plain"))!.ino);
    const t = { sec: 1_234_567_890, nsec: 5 };
    expect(await fs.setattr(sub.ino, { mtime: t })).toMatchObject({ mtime: t, mode: S_IFDIR | 0o700 });
  });

  it("copies no data that a truncation would drop", async () => {
    const { fs, image } = await overlayOf(ITEMS);
    const etc = await inoOf(fs, "etc");
    const secret = await fs.lookup(etc, "secret");
    await fs.release(await fs.open(secret.ino, O_WRONLY | O_TRUNC));
    expect(await fs.getattr(secret.ino)).toMatchObject({ ino: secret.ino, size: 0, mode: S_IFREG | 0o640, uid: 1000 });
    expect(await fs.getxattr(secret.ino, "user.tag")).toEqual(text("lower"));
    const plain = await fs.lookup(etc, "plain");
    expect(await fs.setattr(plain.ino, { size: 3 })).toMatchObject({ size: 3 });
    expect(await read(fs, plain.ino)).toEqual(text("pla"));
    expect(image.fetched.filter((p) => p.includes(image.index.entries.find((e) => e.path === "etc/secret")!.sha256!))).toEqual([]);
  });

  it("switches a handle opened before a copy-up to the copy", async () => {
    const { fs } = await overlayOf(ITEMS);
    const plain = await fs.lookup(await inoOf(fs, "etc"), "plain");
    const old = await fs.open(plain.ino, O_RDONLY);
    expect(await fs.read(old, 0, 5)).toEqual(text("plain"));
    const w = await fs.open(plain.ino, O_WRONLY);
    await fs.write(w, 0, text("PL"));
    await fs.release(w);
    expect(await fs.read(old, 0, 5)).toEqual(text("PLain"));
    expect(await errnoOf(() => fs.write(old, 0, text("x")))).toBe("EBADF");
    await fs.release(old);
  });

  it("hides a removed lower file with a whiteout that a new mount over the same layers keeps", async () => {
    const { fs, upper, image } = await overlayOf(ITEMS);
    const etc = await inoOf(fs, "etc");
    await fs.unlink(etc, "plain");
    expect(await errnoOf(() => fs.lookup(etc, "plain"))).toBe("ENOENT");
    expect(await names(fs, etc)).not.toContain("plain");
    expect(await inUpper(upper, "etc/plain")).toMatchObject({ mode: S_IFCHR, rdev: 0 });
    const again = await remount(image, upper);
    const etc2 = await inoOf(again, "etc");
    expect(await errnoOf(() => again.lookup(etc2, "plain"))).toBe("ENOENT");
    expect(await names(again, etc2)).toEqual(["h2", "secret", "sub"]);
    // A new file of that name replaces the whiteout.
    const made = await again.create(etc2, "plain", 0o600, O_CREAT | O_RDWR, CRED);
    expect(made.attr.size).toBe(0);
    await again.release(made.fh);
    expect(await names(again, etc2)).toContain("plain");
    expect(await errnoOf(() => again.mknod(etc2, "w", S_IFCHR | 0o600, 0, CRED))).toBe("EPERM");
  });

  it("refuses rmdir of a lower directory with lower entries, and makes one made again opaque", async () => {
    const { fs, upper, image } = await overlayOf(ITEMS);
    expect(await errnoOf(() => fs.rmdir(fs.rootIno, "d"))).toBe("ENOTEMPTY");
    const d = await inoOf(fs, "d");
    await fs.unlink(d, "a");
    expect(await errnoOf(() => fs.rmdir(fs.rootIno, "d"))).toBe("ENOTEMPTY");
    await fs.unlink(d, "b");
    await fs.rmdir(fs.rootIno, "d");
    expect(await errnoOf(() => fs.lookup(fs.rootIno, "d"))).toBe("ENOENT");
    expect(await inUpper(upper, "d")).toMatchObject({ mode: S_IFCHR, rdev: 0 });
    const made = await fs.mkdir(fs.rootIno, "d", 0o700, CRED);
    expect(await names(fs, made.ino)).toEqual([]);
    expect(await errnoOf(() => fs.lookup(made.ino, "a"))).toBe("ENOENT");
    expect(made).toMatchObject({ nlink: 2, mode: S_IFDIR | 0o700 });
    const upperD = (await inUpper(upper, "d"))!;
    expect(await upper.getxattr(upperD.ino, "trusted.overlay.opaque")).toEqual(text("y"));
    // The overlay's own xattrs are invisible to the guest and not its to set.
    expect(await fs.listxattr(made.ino)).toEqual([]);
    expect(await errnoOf(() => fs.getxattr(made.ino, "trusted.overlay.opaque"))).toBe("ENODATA");
    expect(await errnoOf(() => fs.setxattr(made.ino, "trusted.overlay.opaque", text("n"), 0))).toBe("EPERM");
    expect(await errnoOf(() => fs.removexattr(made.ino, "trusted.overlay.opaque"))).toBe("EPERM");
    expect(await fs.listxattr(fs.rootIno)).toEqual([]);
    const e = await inoOf(fs, "e");
    expect(await fs.listxattr(e)).toEqual(["user.kept"]);
    await fs.release((await fs.create(e, "g", 0o644, O_CREAT | O_RDWR, CRED)).fh);
    expect(await names(fs, e)).toEqual(["f", "g"]);
    expect(await upper.listxattr((await inUpper(upper, "e"))!.ino)).toEqual(["user.kept"]);
    const again = await remount(image, upper);
    expect(await names(again, await inoOf(again, "d"))).toEqual([]);
  });

  it("renames a lower directory with what it holds, keeping inode numbers, and a new mount agrees", async () => {
    const { fs, upper, image } = await overlayOf(ITEMS);
    const sub = await inoOf(fs, "etc/sub");
    const deep = await fs.lookup(sub, "deep");
    const rootNlink = (await fs.getattr(fs.rootIno)).nlink;
    await fs.rename(fs.rootIno, "etc", fs.rootIno, "moved", 0);
    expect(await errnoOf(() => fs.lookup(fs.rootIno, "etc"))).toBe("ENOENT");
    expect(await names(fs, fs.rootIno)).toEqual(["d", "e", "h1", "moved"]);
    expect(await inoOf(fs, "moved/sub/deep")).toBe(deep.ino);
    expect(await read(fs, deep.ino)).toEqual(text("deep\n"));
    expect(await names(fs, sub)).toEqual(["deep", "fifo", "link"]);
    expect(Buffer.from(await read(fs, await inoOf(fs, "moved/secret"))).equals(Buffer.from(DATA))).toBe(true);
    expect((await fs.getattr(fs.rootIno)).nlink).toBe(rootNlink);
    expect(await inUpper(upper, "etc")).toMatchObject({ mode: S_IFCHR, rdev: 0 });
    const again = await remount(image, upper);
    expect(await names(again, again.rootIno)).toEqual(["d", "e", "h1", "moved"]);
    expect(await names(again, await inoOf(again, "moved"))).toEqual(["h2", "plain", "secret", "sub"]);
    expect(await read(again, await inoOf(again, "moved/sub/deep"))).toEqual(text("deep\n"));
    expect(await again.readlink(await inoOf(again, "moved/sub/link"))).toBe("../plain");
  });

  it("keeps two names of one lower inode one inode when either is copied up", async () => {
    const { fs, upper } = await overlayOf(ITEMS);
    const h1 = await fs.lookup(fs.rootIno, "h1");
    const etc = await inoOf(fs, "etc");
    const h2 = await fs.lookup(etc, "h2");
    expect(h2.ino).toBe(h1.ino);
    expect(h1.nlink).toBe(2);
    const fh = await fs.open(h2.ino, O_RDWR);
    await fs.write(fh, 0, text("LINKED"));
    await fs.release(fh);
    expect(await read(fs, (await fs.lookup(fs.rootIno, "h1")).ino)).toEqual(text("LINKED\n"));
    expect(await fs.lookup(fs.rootIno, "h1")).toMatchObject({ ino: h1.ino, nlink: 2 });
    expect(await fs.lookup(etc, "h2")).toMatchObject({ ino: h1.ino, nlink: 2 });
    // Renaming the other name copies it up as a link to the copy.
    await fs.rename(fs.rootIno, "h1", fs.rootIno, "h3", 0);
    expect(await fs.lookup(fs.rootIno, "h3")).toMatchObject({ ino: h1.ino, nlink: 2 });
    expect((await inUpper(upper, "h3"))!.ino).toBe((await inUpper(upper, "etc/h2"))!.ino);
    await fs.unlink(etc, "h2");
    expect(await fs.getattr(h1.ino)).toMatchObject({ nlink: 1 });
    expect(await read(fs, h1.ino)).toEqual(text("LINKED\n"));
  });

  it("copies a lower hard link up under a name it still has, and an unlinked lower file under none", async () => {
    const { fs, upper } = await overlayOf(ITEMS);
    const etc = await inoOf(fs, "etc");
    const h2 = await fs.lookup(etc, "h2");
    await fs.lookup(fs.rootIno, "h1"); // the latest name the overlay saw
    await fs.unlink(fs.rootIno, "h1");
    expect(await fs.getattr(h2.ino)).toMatchObject({ nlink: 1 });
    const fh = await fs.open(h2.ino, O_RDWR);
    await fs.write(fh, 0, text("L"));
    await fs.release(fh);
    expect(await inUpper(upper, "h1")).toMatchObject({ mode: S_IFCHR, rdev: 0 });
    expect(await errnoOf(() => fs.lookup(fs.rootIno, "h1"))).toBe("ENOENT");
    expect(await read(fs, (await fs.lookup(etc, "h2")).ino)).toEqual(text("Linked\n"));
    expect(await fs.getattr(h2.ino)).toMatchObject({ nlink: 1 });

    const plain = await fs.lookup(etc, "plain");
    const ro = await fs.open(plain.ino, O_RDONLY);
    await fs.unlink(etc, "plain");
    expect(await errnoOf(() => fs.setattr(plain.ino, { mode: 0o600 }))).toBe("ENOENT");
    expect(await fs.read(ro, 0, 5)).toEqual(text("plain"));
    await fs.release(ro);
    expect(await names(fs, etc)).toEqual(["h2", "secret", "sub"]);
  });

  it("merges a directory's listing without duplicates, with the inode numbers lookup gives", async () => {
    const { fs } = await overlayOf(ITEMS);
    const d = await inoOf(fs, "d");
    const fh = await fs.open((await fs.lookup(d, "a")).ino, O_WRONLY);
    await fs.release(fh);
    await fs.unlink(d, "b");
    await fs.release((await fs.create(d, "c", 0o644, O_CREAT | O_RDWR, CRED)).fh);
    await fs.mkdir(fs.rootIno, "etc2", 0o755, CRED);
    const dh = await fs.opendir(d);
    const entries = await fs.readdir(dh, 0);
    await fs.releasedir(dh);
    expect(entries.map((e) => e.name)).toHaveLength(4);
    expect(entries.map((e) => e.name).sort()).toEqual([".", "..", "a", "c"]);
    for (const e of entries.slice(2)) expect(e.ino).toBe((await fs.lookup(d, e.name)).ino);
    expect(entries[1]!.ino).toBe(fs.rootIno);
    expect(await names(fs, fs.rootIno)).toEqual(["d", "e", "etc", "etc2", "h1"]);
    expect((await fs.getattr(fs.rootIno)).nlink).toBe(2 + 4);
  });

  it("answers EIO for a damaged blob, and a failed copy-up leaves nothing in the upper layer", async () => {
    const { fs, upper, image } = await overlayOf(ITEMS);
    const entry = image.index.entries.find((e) => e.path === "etc/plain")!;
    const path = blobPath(entry.sha256!, entry.gz!);
    image.blobs.set(path, Uint8Array.from(image.blobs.get(path)!, (b) => b ^ 0xff));
    const plain = await fs.lookup(await inoOf(fs, "etc"), "plain");
    const fh = await fs.open(plain.ino, O_RDONLY);
    expect(await errnoOf(() => fs.read(fh, 0, 10))).toBe("EIO");
    await fs.release(fh);
    expect(await errnoOf(() => fs.open(plain.ino, O_RDWR))).toBe("EIO");
    expect(await inUpper(upper, "etc/plain")).toBeUndefined();
    expect(await names(fs, await inoOf(fs, "etc"))).toContain("plain");
  });

  it("saves and restores its inodes, handles and both layers", async () => {
    const { fs, image } = await overlayOf(ITEMS);
    const etc = await inoOf(fs, "etc");
    const plain = await fs.lookup(etc, "plain");
    const lowerFh = await fs.open((await fs.lookup(etc, "secret")).ino, O_RDONLY);
    const w = await fs.open(plain.ino, O_RDWR);
    await fs.write(w, 0, text("saved"));
    await fs.unlink(fs.rootIno, "h1");
    const dh = await fs.opendir(etc);
    const first = await fs.readdir(dh, 0, 3);
    const state = await fs.saveState();

    const restored = await OverlayFs.mount(new ImageFs(parseImageIndex(image.text), image.source), new MemFs());
    await restored.restoreState(state);
    expect(await restored.getattr(plain.ino)).toEqual(await fs.getattr(plain.ino));
    expect(await restored.read(w, 0, 5)).toEqual(text("saved"));
    expect(await restored.read(lowerFh, 0, 4)).toEqual(DATA.subarray(0, 4));
    expect(await restored.readdir(dh, first.at(-1)!.off)).toEqual(await fs.readdir(dh, first.at(-1)!.off));
    expect(await errnoOf(() => restored.lookup(restored.rootIno, "h1"))).toBe("ENOENT");
    expect(await restored.lookup(etc, "plain")).toMatchObject({ ino: plain.ino });
    expect((await restored.lookup(etc, "h2")).nlink).toBe(1);
  });

  it("keeps the guest's changes in a host directory across a new HostDirFs and overlay over it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "vfsw-overlay-reload-"));
    try {
      const first = await HostDirFs.open(dir);
      const { fs, image } = await overlayOf(ITEMS, first);
      const etc = await inoOf(fs, "etc");
      const secret = await fs.lookup(etc, "secret");
      await fs.setattr(secret.ino, { uid: 4321 });
      await fs.unlink(etc, "plain");
      await fs.unlink(await inoOf(fs, "d"), "a");
      await fs.unlink(await inoOf(fs, "d"), "b");
      await fs.rmdir(fs.rootIno, "d");
      await fs.release((await fs.create((await fs.mkdir(fs.rootIno, "d", 0o755, CRED)).ino, "new", 0o644, O_CREAT | O_RDWR, CRED)).fh);
      await fs.rename(etc, "sub", fs.rootIno, "sub2", 0);
      await first.close();

      const second = await HostDirFs.open(dir);
      const again = await remount(image, second);
      const etc2 = await inoOf(again, "etc");
      expect(await names(again, etc2)).toEqual(["h2", "secret"]);
      expect(await again.lookup(etc2, "secret")).toMatchObject({ uid: 4321, gid: 100, mode: S_IFREG | 0o640, mtime: { sec: T1[0], nsec: 111_111_000 }, size: DATA.length }); // the host keeps microseconds
      expect(await again.getxattr(await inoOf(again, "etc/secret"), "user.tag")).toEqual(text("lower"));
      expect(await names(again, await inoOf(again, "d"))).toEqual(["new"]);
      expect(await names(again, await inoOf(again, "sub2"))).toEqual(["deep", "fifo", "link"]);
      expect(await read(again, await inoOf(again, "sub2/deep"))).toEqual(text("deep\n"));
      expect(await names(again, again.rootIno)).toEqual(["d", "e", "etc", "h1", "sub2"]);
      expect(await again.getattr(again.rootIno)).toMatchObject({ mode: S_IFDIR | 0o755, uid: 0 });
      await second.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("is read-only when its upper layer is, and reports the upper layer's space", async () => {
    const { fs } = await overlayOf(ITEMS, new MemFs(new Volume(), { readOnly: true }));
    expect(fs.capabilities.readOnly).toBe(true);
    expect(await errnoOf(() => fs.unlink(fs.rootIno, "h1"))).toBe("EROFS");
    const { fs: rw, upper } = await overlayOf(ITEMS);
    expect(await rw.statfs(rw.rootIno)).toEqual(await upper.statfs(upper.rootIno));
  });
});
