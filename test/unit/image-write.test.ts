import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { link, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { blobPath, INDEX_NAME, type ImageEntry, type ImageIndex } from "../../src/fs/image/format.ts";
import { v86FileName, writeV86BaseFs, type V86BaseFs, type V86FsNode } from "../../src/fs/image/v86-basefs.ts";
import { writeImage } from "../../src/fs/image/write.ts";

const S_IFMT = 0o170000;
const sha = (b: Buffer | string): string => createHash("sha256").update(b).digest("hex");

let dir: string;
let tree: string;
const big = Buffer.from("the same line, again and again, compresses well\n".repeat(20_000));
const random = randomBytes(64 * 1024);
let hasXattr = false;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "image-write-"));
  tree = join(dir, "tree");
  await mkdir(join(tree, "sub"), { recursive: true });
  await writeFile(join(tree, "a.txt"), "hello\n");
  await writeFile(join(tree, "dup.txt"), "hello\n");
  await writeFile(join(tree, "empty"), "");
  await writeFile(join(tree, "big.txt"), big);
  await writeFile(join(tree, "random.bin"), random);
  await writeFile(join(tree, "hard1"), "one inode, two names\n");
  await link(join(tree, "hard1"), join(tree, "sub", "hard2"));
  await symlink("a.txt", join(tree, "link"));
  // Byte order puts "B" (0x42) before "a" and "ä" (0xc3 0xa4) last, whatever the locale says.
  await writeFile(join(tree, "B"), "upper\n");
  await writeFile(join(tree, "ä"), "umlaut\n");
  execFileSync("mkfifo", [join(tree, "sub", "fifo")]);
  try {
    execFileSync("setfattr", ["-n", "user.test", "-v", "hi", join(tree, "a.txt")], { stdio: "ignore" });
    hasXattr = true;
  } catch {
    // no setfattr, or a file system without user xattrs: that part is skipped
  }
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function readIndex(imageDir: string): Promise<{ text: string; index: ImageIndex; byPath: Map<string, ImageEntry> }> {
  const text = await readFile(join(imageDir, INDEX_NAME), "utf8");
  const index = JSON.parse(text) as ImageIndex;
  return { text, index, byPath: new Map(index.entries.map((e) => [e.path, e])) };
}

// Each test writes a whole image: generous on a busy 2-core machine.
describe("writeImage", { timeout: 30_000 }, () => {
  it("writes every entry in byte order, a directory before its contents", async () => {
    const out = join(dir, "order");
    const result = await writeImage(tree, out, { warn: () => {} });
    const { index } = await readIndex(out);
    expect(index.format).toBe("virtiofs-web-image");
    expect(index.version).toBe(1);
    expect(index.entries.map((e) => e.path)).toEqual([
      "", "B", "a.txt", "big.txt", "dup.txt", "empty", "hard1", "link", "random.bin", "sub", "sub/fifo", "sub/hard2", "ä",
    ]);
    // hard1's inode is counted once; a.txt and dup.txt share a blob; the empty file has none.
    expect(result).toEqual({
      entries: 13,
      files: 8,
      bytes: 6 + 6 + big.length + random.length + 21 + 6 + 7,
      blobs: 6,
      blobBytes: expect.any(Number),
    });
    expect(result.blobBytes).toBeLessThan(result.bytes / 2);
  });

  it("stores each content once, gzipped only where that pays, named by the sha256 of the bytes", async () => {
    const out = join(dir, "blobs");
    await writeImage(tree, out, { warn: () => {} });
    const { byPath } = await readIndex(out);

    const bigEntry = byPath.get("big.txt")!;
    expect(bigEntry).toMatchObject({ size: big.length, sha256: sha(big), gz: true });
    const packed = await readFile(join(out, blobPath(sha(big), true)));
    expect(packed.length).toBeLessThan(big.length / 10);
    expect(sha(gunzipSync(packed))).toBe(bigEntry.sha256);

    const randomEntry = byPath.get("random.bin")!;
    expect(randomEntry.gz).toBeUndefined();
    expect(sha(await readFile(join(out, blobPath(sha(random), false))))).toBe(sha(random));

    // Six bytes only grow under gzip.
    expect(byPath.get("a.txt")).toMatchObject({ size: 6, sha256: sha("hello\n") });
    expect(byPath.get("a.txt")!.gz).toBeUndefined();
    expect(byPath.get("dup.txt")!.sha256).toBe(byPath.get("a.txt")!.sha256);

    const empty = byPath.get("empty")!;
    expect(empty.size).toBe(0);
    expect(empty.sha256).toBeUndefined();

    // Every blob on disk is named by its (decompressed) content and named by some entry; no temp files.
    const named = new Set([...byPath.values()].flatMap((e) => (e.sha256 ? [blobPath(e.sha256, e.gz ?? false)] : [])));
    const onDisk: string[] = [];
    for (const ab of await readdir(join(out, "blobs"))) {
      for (const f of await readdir(join(out, "blobs", ab))) onDisk.push(`blobs/${ab}/${f}`);
    }
    expect(onDisk.sort()).toEqual([...named].sort());
    for (const p of onDisk) {
      const body = await readFile(join(out, p));
      const name = p.split("/").pop()!;
      expect(sha(name.endsWith(".gz") ? gunzipSync(body) : body)).toBe(name.replace(/\.gz$/, ""));
    }
  });

  it("records types, links, metadata and times to the nanosecond", async () => {
    const out = join(dir, "meta");
    // An atime after mtime and ctime, not yet a day old: relatime leaves it alone when the writer reads.
    await utimes(join(tree, "a.txt"), 2_000_000_000.25, 1_234_567_890.5);
    await writeImage(tree, out, { warn: () => {} });
    const { byPath } = await readIndex(out);

    expect(byPath.get("")!.mode! & S_IFMT).toBe(0o040000);
    expect(byPath.get("sub")!.mode! & S_IFMT).toBe(0o040000);
    expect(byPath.get("link")).toMatchObject({ target: "a.txt" });
    expect(byPath.get("link")!.mode! & S_IFMT).toBe(0o120000);
    const fifo = byPath.get("sub/fifo")!;
    expect(fifo.mode! & S_IFMT).toBe(0o010000);
    expect(fifo.size).toBeUndefined();
    expect(fifo.rdev).toBeUndefined();

    expect(byPath.get("hard1")!.size).toBe(21);
    expect(byPath.get("sub/hard2")).toEqual({ path: "sub/hard2", link: "hard1" });

    const st = await stat(join(tree, "a.txt"), { bigint: true });
    const a = byPath.get("a.txt")!;
    expect(a).toMatchObject({ mode: Number(st.mode), uid: Number(st.uid), gid: Number(st.gid) });
    expect(a.mtime).toEqual([1_234_567_890, 500_000_000]);
    expect(a.atime).toEqual([2_000_000_000, 250_000_000]);
    expect(a.ctime).toEqual([Number(st.ctimeNs / 1_000_000_000n), Number(st.ctimeNs % 1_000_000_000n)]);
    if (hasXattr) expect(a.xattrs).toEqual({ "user.test": Buffer.from("hi").toString("base64") });
  });

  it("clamps times to SOURCE_DATE_EPOCH and writes a byte-identical index every time", async () => {
    const first = join(dir, "det1");
    const second = join(dir, "det2");
    await utimes(join(tree, "a.txt"), 2_000_000_000.25, 1_100_000_000.5);
    await writeImage(tree, first, { sourceDateEpoch: 1_200_000_000, warn: () => {} });
    await writeImage(tree, second, { sourceDateEpoch: 1_200_000_000, warn: () => {} });
    const one = await readIndex(first);
    expect((await readIndex(second)).text).toBe(one.text);
    // Again into a directory that has the blobs already: they are reused, the index is the same.
    await writeImage(tree, first, { sourceDateEpoch: 1_200_000_000, warn: () => {} });
    expect((await readIndex(first)).text).toBe(one.text);

    expect(one.byPath.get("a.txt")!.mtime).toEqual([1_100_000_000, 500_000_000]);
    expect(one.byPath.get("a.txt")!.atime).toEqual([1_200_000_000, 0]);
    expect(one.byPath.get("big.txt")!.ctime).toEqual([1_200_000_000, 0]);
  });
});

describe("writeV86BaseFs", { timeout: 30_000 }, () => {
  it("writes v86's fs.json (version 3) and the decompressed files under the names it fetches", async () => {
    const imageDir = join(dir, "for-v86");
    const out = join(dir, "v86");
    await writeImage(tree, imageDir, { warn: () => {} });
    const { index, byPath } = await readIndex(imageDir);
    const result = await writeV86BaseFs(index, imageDir, out);

    const fs = JSON.parse(await readFile(join(out, "fs.json"), "utf8")) as V86BaseFs;
    expect(fs.version).toBe(3);
    expect(fs.size).toBe(6 + 6 + big.length + random.length + 21 + 21 + 6 + 7);
    const top = new Map(fs.fsroot.map((n) => [n[0], n]));
    expect([...top.keys()]).toEqual(["B", "a.txt", "big.txt", "dup.txt", "empty", "hard1", "link", "random.bin", "sub", "ä"]);

    const bigNode = top.get("big.txt")!;
    const bigEntry = byPath.get("big.txt")!;
    expect(bigNode).toEqual(["big.txt", big.length, bigEntry.mtime![0], bigEntry.mode, bigEntry.uid, bigEntry.gid, v86FileName(sha(big))]);
    expect(sha(await readFile(join(out, v86FileName(sha(big)))))).toBe(sha(big));
    expect(sha(await readFile(join(out, v86FileName(sha(random)))))).toBe(sha(random));
    expect(await readFile(join(out, top.get("empty")![6] as string))).toHaveLength(0);
    const linkNode = top.get("link")!;
    expect([linkNode[1], linkNode[6]]).toEqual([5, "a.txt"]);

    // The hard link becomes a second name for the same file; the FIFO is left out.
    const sub = new Map((top.get("sub")![6] as V86FsNode[]).map((n) => [n[0], n]));
    expect([...sub.keys()]).toEqual(["hard2"]);
    expect(sub.get("hard2")![6]).toBe(top.get("hard1")![6]);
    expect(result).toEqual({ files: 7, bytes: 6 + big.length + random.length + 21 + 6 + 7, dropped: 1 });
  });
});
