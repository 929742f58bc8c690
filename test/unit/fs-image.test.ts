import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { fileBlobSource } from "../../src/fs/image/file-source.ts";
import { httpBlobSource } from "../../src/fs/image/sources.ts";
import { ImageFs } from "../../src/fs/image/image.ts";
import { parseImageIndex } from "../../src/fs/image/index.ts";
import { ImageFormatError, INDEX_NAME, blobPath } from "../../src/fs/image/format.ts";
import { MAX_IO_SIZE, O_RDONLY, S_IFCHR, S_IFDIR, S_IFIFO, S_IFMT, S_IFREG, SEEK_DATA, SEEK_HOLE } from "../../src/vfs/linux.ts";
import type { FileAttr, FileSystem } from "../../src/vfs/filesystem.ts";
import { StateError } from "../../src/vfs/state.ts";
import { buildImage, IMAGE_TIME, type ImageItem } from "../support/image-builder.ts";
import { errnoOf, FIXTURE, fsConformance, pattern } from "./fs-conformance.ts";

// An image is read-only by nature: the suite reads it and skips the write side (OverlayFs over ImageFs runs
// all of it, reading through ImageFs).
fsConformance(
  "image",
  async (items) => {
    const image = await buildImage(items);
    return {
      fs: new ImageFs(parseImageIndex(image.text), image.source),
      addFile: async () => {
        throw new Error("an image cannot change");
      },
      remove: async () => {
        throw new Error("an image cannot change");
      },
      cleanup: async () => {},
    };
  },
  { holeGranularity: undefined, timePrecisionNs: 1, readOnly: true },
);

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const BIG = pattern(3 << 20, 9);

const ITEMS: ImageItem[] = [
  ...FIXTURE,
  { kind: "file", path: "huge.bin", mode: 0o644, data: BIG, uid: 1000, gid: 100, xattrs: { "user.a": text("b"), "security.capability": Uint8Array.from([1, 0, 0, 2]) } },
  { kind: "special", path: "null", mode: S_IFCHR | 0o666, rdev: (1 << 8) | 3 },
  { kind: "special", path: "fifo", mode: S_IFIFO | 0o600, rdev: 0 },
];

async function resolve(fs: FileSystem, path: string): Promise<FileAttr> {
  let attr = await fs.getattr(fs.rootIno);
  for (const name of path.split("/")) attr = await fs.lookup(attr.ino, name);
  return attr;
}

async function readAll(fs: FileSystem, path: string): Promise<Uint8Array> {
  const fh = await fs.open((await resolve(fs, path)).ino, O_RDONLY);
  const out = await fs.read(fh, 0, MAX_IO_SIZE);
  await fs.release(fh);
  return out;
}

const VALID = (await buildImage(ITEMS)).text;

describe("parseImageIndex", () => {
  const valid = (): { format: string; version: number; entries: Record<string, unknown>[] } => JSON.parse(VALID);
  const refused = (mutate: (index: ReturnType<typeof valid>) => void): string => {
    const index = valid();
    mutate(index);
    try {
      parseImageIndex(JSON.stringify(index));
    } catch (e) {
      expect(e).toBeInstanceOf(ImageFormatError);
      return (e as Error).message;
    }
    throw new Error("accepted");
  };
  const at = (index: ReturnType<typeof valid>, path: string): Record<string, unknown> => index.entries.find((e) => e.path === path)!;

  it("accepts a valid index and keeps every field", async () => {
    const image = await buildImage(ITEMS);
    expect(parseImageIndex(image.text)).toEqual(image.index);
    const index = valid();
    at(index, "empty").gz = false; // a writer may say so of an empty file
    expect(parseImageIndex(JSON.stringify(index)).entries.find((e) => e.path === "empty")).toMatchObject({ size: 0 });
  });

  it("refuses paths that are not components, duplicates, and parents that are missing, late or not directories", () => {
    expect(refused((i) => (at(i, "hello.txt").path = "../hello.txt"))).toMatch(/"\.\.\/hello\.txt".*EINVAL/);
    expect(refused((i) => (at(i, "hello.txt").path = "dir/./x"))).toMatch(/EINVAL/);
    expect(refused((i) => (at(i, "hello.txt").path = "/abs"))).toMatch(/EINVAL/);
    expect(refused((i) => (at(i, "hello.txt").path = "dir//x"))).toMatch(/EINVAL/);
    expect(refused((i) => (at(i, "hello.txt").path = "many"))).toMatch(/second entry/);
    expect(refused((i) => (at(i, "hello.txt").path = "nowhere/x"))).toMatch(/directory comes later/);
    expect(refused((i) => (at(i, "hello.txt").path = "script.sh/x"))).toMatch(/later|not a directory/);
    expect(refused((i) => (at(i, "empty").path = "hello.txt/x"))).toMatch(/not a directory/);
    expect(refused((i) => i.entries.reverse())).toMatch(/root/);
  });

  it("refuses links to missing, later or directory entries, and links with fields", () => {
    expect(refused((i) => (at(i, "dir/hello-link.txt").link = "missing"))).toMatch(/entry \d+ \("dir\/hello-link.txt"\): link to "missing"/);
    expect(refused((i) => (at(i, "dir/hello-link.txt").link = "script.sh"))).toMatch(/no earlier entry/);
    expect(refused((i) => (at(i, "dir/hello-link.txt").link = "many"))).toMatch(/link to a directory/);
    expect(refused((i) => (at(i, "dir/hello-link.txt").mode = S_IFREG | 0o644))).toMatch(/a link with mode/);
  });

  it("refuses bad modes, ids, sizes, times, hashes and xattrs", () => {
    expect(refused((i) => (i.format = "other"))).toMatch(/format/);
    expect(refused((i) => (i.version = 2))).toMatch(/version/);
    expect(refused((i) => (at(i, "hello.txt").mode = 0o644))).toMatch(/no file type/);
    expect(refused((i) => (at(i, "hello.txt").mode = 0o1644 | 0o170000))).toMatch(/no file type/);
    expect(refused((i) => (at(i, "hello.txt").uid = -1))).toMatch(/uid/);
    expect(refused((i) => (at(i, "hello.txt").gid = 2 ** 32))).toMatch(/gid/);
    expect(refused((i) => (at(i, "hello.txt").size = 2 ** 53))).toMatch(/size/);
    expect(refused((i) => (at(i, "hello.txt").mtime = [1, 1e9]))).toMatch(/mtime/);
    expect(refused((i) => (at(i, "hello.txt").atime = [0.5, 0]))).toMatch(/atime/);
    expect(refused((i) => (at(i, "hello.txt").sha256 = "AB".repeat(32)))).toMatch(/sha256/);
    expect(refused((i) => delete at(i, "hello.txt").sha256)).toMatch(/sha256/);
    expect(refused((i) => (at(i, "empty").sha256 = "ab".repeat(32)))).toMatch(/empty file/);
    expect(refused((i) => (at(i, "empty").gz = true))).toMatch(/empty file/);
    expect(refused((i) => (at(i, "empty").gz = "yes"))).toMatch(/gz is not a boolean/);
    expect(refused((i) => (at(i, "dir").size = 1))).toMatch(/size on a file of type/);
    expect(refused((i) => delete at(i, "link-to-hello").target)).toMatch(/without a target/);
    expect(refused((i) => (at(i, "link-to-hello").target = ""))).toMatch(/ENOENT/);
    expect(refused((i) => (at(i, "huge.bin").xattrs = { nonamespace: "" }))).toMatch(/EOPNOTSUPP/);
    expect(refused((i) => (at(i, "huge.bin").xattrs = { "user.a": "not base64!" }))).toMatch(/base64/);
    expect(refused((i) => (at(i, "huge.bin").xattrs = { "user.a": "A".repeat(87_384) }))).toMatch(/over 65536/);
    expect(() => parseImageIndex("{")).toThrow(ImageFormatError);
  });
});

describe("ImageFs", () => {
  it("serves the tree from the index without fetching, and each file's bytes on first read", async () => {
    const image = await buildImage(ITEMS);
    const fs = new ImageFs(parseImageIndex(image.text), image.source);
    expect(await fs.getattr(fs.rootIno)).toMatchObject({ mode: S_IFDIR | 0o755, nlink: 5, mtime: { sec: IMAGE_TIME[0], nsec: IMAGE_TIME[1] } });
    const huge = await resolve(fs, "huge.bin");
    expect(huge).toMatchObject({ mode: S_IFREG | 0o644, size: BIG.length, uid: 1000, gid: 100, nlink: 1 });
    expect(await resolve(fs, "null")).toMatchObject({ mode: S_IFCHR | 0o666, rdev: 259 });
    expect(await errnoOf(async () => fs.open((await resolve(fs, "fifo")).ino, O_RDONLY))).toBe("ENXIO");
    expect((await fs.listxattr(huge.ino)).sort()).toEqual(["security.capability", "user.a"]);
    expect(await fs.getxattr(huge.ino, "security.capability")).toEqual(Uint8Array.from([1, 0, 0, 2]));
    const fh = await fs.open(huge.ino, O_RDONLY);
    expect(image.fetched).toEqual([]);
    const [a, b] = await Promise.all([fs.read(fh, 0, 10), fs.read(fh, BIG.length - 5, 10)]);
    expect(image.fetched).toHaveLength(1); // one fetch for both
    expect(a).toEqual(BIG.subarray(0, 10));
    expect(b).toEqual(BIG.subarray(-5));
    expect(await fs.lseek(fh, 5, SEEK_DATA)).toBe(5);
    expect(await fs.lseek(fh, 5, SEEK_HOLE)).toBe(BIG.length);
    await fs.release(fh);
    expect(await readAll(fs, "hello.txt")).toEqual(text("Hello, world!\n"));
    expect(await readAll(fs, "big.bin")).toHaveLength((1 << 20) + 12345);
    expect(image.fetched.filter((p) => p.endsWith(".gz")).length).toBeGreaterThan(0);
    expect(image.fetched.filter((p) => !p.endsWith(".gz")).length).toBeGreaterThan(0);
    expect(await fs.statfs(fs.rootIno)).toMatchObject({ bfree: 0, bavail: 0, ffree: 0 });
  });

  it("keeps blobs up to its cache size, least recently used out first", async () => {
    const image = await buildImage(ITEMS);
    const fs = new ImageFs(parseImageIndex(image.text), image.source, { cacheBytes: 1 << 20 });
    await readAll(fs, "hello.txt");
    await readAll(fs, "script.sh");
    await readAll(fs, "hello.txt");
    expect(image.fetched).toHaveLength(2);
    await readAll(fs, "big.bin"); // over the cache size: not kept, and evicts nothing
    await readAll(fs, "big.bin");
    expect(image.fetched).toHaveLength(4);
    const small = new ImageFs(parseImageIndex(image.text), image.source, { cacheBytes: 20 });
    await readAll(small, "hello.txt"); // 14 bytes
    await readAll(small, "script.sh"); // 18 bytes: hello.txt goes
    await readAll(small, "script.sh");
    await readAll(small, "hello.txt");
    expect(image.fetched.slice(4)).toHaveLength(3);
  });

  it("answers EIO for a blob that does not match its sha256, a missing one, or bad gzip, and never caches them", async () => {
    const image = await buildImage(ITEMS);
    const index = parseImageIndex(image.text);
    const entry = (path: string) => index.entries.find((e) => e.path === path)!;
    const hello = blobPath(entry("hello.txt").sha256!, entry("hello.txt").gz!);
    const good = image.blobs.get(hello)!;
    image.blobs.set(hello, Uint8Array.from(good, (b, i) => (i === 0 ? b ^ 1 : b)));
    const fs = new ImageFs(index, image.source);
    const fh = await fs.open((await resolve(fs, "hello.txt")).ino, O_RDONLY);
    expect(await errnoOf(() => fs.read(fh, 0, 5))).toBe("EIO");
    image.blobs.set(hello, good);
    expect(await fs.read(fh, 0, 5)).toEqual(text("Hello"));
    const script = entry("script.sh");
    image.blobs.delete(blobPath(script.sha256!, script.gz!));
    expect(await errnoOf(() => readAll(fs, "script.sh"))).toBe("EIO");
    const gz = ["many/f00", "many/f01"].map(entry).find((e) => e.gz)!;
    image.blobs.set(blobPath(gz.sha256!, true), text("not gzip"));
    expect(await errnoOf(() => readAll(fs, gz.path))).toBe("EIO");
  });

  it("saves references and handles, and restores them on a fresh ImageFs of the same image only", async () => {
    const image = await buildImage(ITEMS);
    const fs = new ImageFs(parseImageIndex(image.text), image.source);
    const many = await resolve(fs, "many");
    const hello = await resolve(fs, "hello.txt");
    const fh = await fs.open(hello.ino, O_RDONLY);
    const dh = await fs.opendir(many.ino);
    const first = await fs.readdir(dh, 0, 5);
    const state = await fs.saveState();

    const again = new ImageFs(parseImageIndex(image.text), image.source);
    await again.restoreState(state);
    expect(await again.getattr(hello.ino)).toEqual(await fs.getattr(hello.ino));
    expect(await again.read(fh, 0, 5)).toEqual(text("Hello"));
    expect(await again.readdir(dh, first.at(-1)!.off)).toEqual(await fs.readdir(dh, first.at(-1)!.off));
    expect(await errnoOf(async () => again.getattr((await resolve(fs, "big.bin")).ino))).toBe("ESTALE");

    const other = await buildImage(ITEMS.filter((i) => i.path !== "empty"));
    await expect(new ImageFs(parseImageIndex(other.text), other.source).restoreState(state)).rejects.toThrow(StateError);
    await expect(new ImageFs(parseImageIndex(image.text), image.source).restoreState({ image: "x" })).rejects.toThrow(StateError);
  });

  it("reports types in readdir and counts a directory's subdirectories", async () => {
    const image = await buildImage(ITEMS);
    const fs = new ImageFs(parseImageIndex(image.text), image.source);
    const dh = await fs.opendir(fs.rootIno);
    const entries = await fs.readdir(dh, 0);
    expect(entries.find((e) => e.name === "null")?.type).toBe(S_IFCHR);
    expect(entries.find((e) => e.name === "dir")).toMatchObject({ type: S_IFDIR, ino: (await fs.lookup(fs.rootIno, "dir")).ino });
    expect(entries.filter((e) => e.type === S_IFDIR).length).toBe(2 + 3);
    expect(entries.every((e) => (e.type & S_IFMT) === e.type)).toBe(true);
  });
});

describe("blob sources", () => {
  it("read an image directory from files and over HTTP", async () => {
    const image = await buildImage(ITEMS);
    const dir = await mkdtemp(join(tmpdir(), "vfsw-image-"));
    const server = createServer((req, res) => {
      readFile(join(dir, ...decodeURIComponent(new URL(req.url!, "http://x").pathname).split("/").slice(2)))
        .then((data) => res.end(data))
        .catch(() => res.writeHead(404).end());
    });
    try {
      await writeFile(join(dir, INDEX_NAME), image.text);
      for (const [path, bytes] of image.blobs) {
        await mkdir(dirname(join(dir, path)), { recursive: true });
        await writeFile(join(dir, path), bytes);
      }
      await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
      const port = (server.address() as { port: number }).port;
      const index = parseImageIndex(await readFile(join(dir, INDEX_NAME), "utf8"));
      for (const source of [fileBlobSource(dir), httpBlobSource(`http://127.0.0.1:${port}/image`)]) {
        const fs = new ImageFs(index, source);
        expect(Buffer.from(await readAll(fs, "huge.bin")).equals(Buffer.from(BIG))).toBe(true);
        expect(await readAll(fs, "hello.txt")).toEqual(text("Hello, world!\n"));
        expect(await readAll(fs, "script.sh")).toEqual(text("#!/bin/sh\necho hi\n"));
      }
      await rm(join(dir, blobPath(index.entries.find((e) => e.path === "hello.txt")!.sha256!, true)), { force: true });
      await rm(join(dir, blobPath(index.entries.find((e) => e.path === "hello.txt")!.sha256!, false)), { force: true });
      expect(await errnoOf(() => readAll(new ImageFs(index, httpBlobSource(`http://127.0.0.1:${port}/image/`)), "hello.txt"))).toBe("EIO");
      expect(await errnoOf(() => readAll(new ImageFs(index, fileBlobSource(dir)), "hello.txt"))).toBe("EIO");
    } finally {
      server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
