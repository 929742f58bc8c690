// One conformance suite for every `FileSystem` backend. Each backend's test file builds FIXTURE with its
// own native API and hands the result to `fsConformance`; the suite then reads the tree and changes it,
// all through the interface, and expects Linux's answers.

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { E2BIG, EBADF, EILSEQ, EINVAL, EISDIR, ELOOP, ENAMETOOLONG, ESTALE, errnoName } from "../../src/vfs/errno.ts";
import { F_OK, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, MAX_IO_SIZE, O_APPEND, O_CREAT, O_EXCL, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY, R_OK, RENAME_EXCHANGE, RENAME_NOREPLACE, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK, SEEK_DATA, SEEK_HOLE, W_OK, X_OK, XATTR_CREATE, XATTR_REPLACE } from "../../src/vfs/linux.ts";
import { FsError, type Cred, type DirEntry, type FileAttr, type FileSystem, type Ino, type Timespec } from "../../src/vfs/filesystem.ts";
import { utf8Length } from "../../src/fs/posix.ts";

export type FixtureItem =
  | { kind: "dir"; path: string; mode: number }
  | { kind: "file"; path: string; mode: number; data: Uint8Array }
  | { kind: "symlink"; path: string; target: string }
  | { kind: "hardlink"; path: string; existing: string };

export interface Fixture {
  fs: FileSystem;
  /** Changes the tree behind the backend's back, through the native API. */
  addFile(path: string): Promise<void>;
  remove(path: string): Promise<void>;
  cleanup(): Promise<void>;
}

export type FixtureFactory = (items: readonly FixtureItem[], options?: { readOnly?: boolean }) => Promise<Fixture>;

/** Where backends may differ within the contract. */
export interface BackendTraits {
  /** SEEK_DATA and SEEK_HOLE see holes in units of this many bytes; undefined: the whole file is data. */
  holeGranularity: number | undefined;
  /** The storage has no holes at all, a gap is stored as zeros (OPFS): the suite keeps such files small. */
  dense?: boolean;
  /** Nanoseconds a stored atime or mtime is rounded to (1: exact; hostdir: 1000, what utimes keeps). */
  timePrecisionNs: number;
  /**
   * Read-only by nature (an image): the suite reads the fixture as usual but skips the write side and
   * whatever changes the tree behind the backend's back.
   */
  readOnly?: boolean;
  /**
   * Knows an inode by the name it was last looked up by, so that removing that name loses the inode though
   * another name remains: an overlay over a host directory, whose own lookup before the unlink moves it.
   */
  lastNameHardLinks?: boolean;
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Deterministic bytes (an LCG's high byte), so any range can be checked without storing the file. */
export function pattern(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

const HELLO = "Hello, world!\n";
const BIG = pattern((1 << 20) + 12345);
const MANY = Array.from({ length: 40 }, (_, i) => `f${String(i).padStart(2, "0")}`);
const ODD_NAMES = ["with spaces.txt", "ünïcødé-名前.txt", "penguin 🐧.txt"];

export const FIXTURE: readonly FixtureItem[] = [
  { kind: "dir", path: "dir", mode: 0o755 },
  { kind: "dir", path: "dir/sub", mode: 0o750 },
  { kind: "dir", path: "dir/sub/deeper", mode: 0o755 },
  { kind: "file", path: "dir/sub/deeper/leaf.txt", mode: 0o644, data: text("leaf\n") },
  { kind: "dir", path: "empty-dir", mode: 0o700 },
  { kind: "dir", path: "many", mode: 0o755 },
  ...MANY.map((name): FixtureItem => ({ kind: "file", path: `many/${name}`, mode: 0o644, data: text(name) })),
  { kind: "file", path: "hello.txt", mode: 0o644, data: text(HELLO) },
  { kind: "hardlink", path: "dir/hello-link.txt", existing: "hello.txt" },
  { kind: "file", path: "big.bin", mode: 0o600, data: BIG },
  { kind: "file", path: "empty", mode: 0o644, data: new Uint8Array(0) },
  { kind: "file", path: "script.sh", mode: 0o755, data: text("#!/bin/sh\necho hi\n") },
  { kind: "symlink", path: "link-to-hello", target: "hello.txt" },
  { kind: "symlink", path: "dangling", target: "no/such/target" },
  { kind: "symlink", path: "utf8-link", target: "ünï" },
  { kind: "symlink", path: "dir-link", target: "dir/sub" },
  ...ODD_NAMES.map((name): FixtureItem => ({ kind: "file", path: name, mode: 0o644, data: text(name) })),
];

const ROOT_NAMES = [...new Set(FIXTURE.map((item) => item.path.split("/")[0]!))];

/** The errno a failed call carried, thrown or rejected ("resolved" if it did not fail); non-FsError failures propagate. */
export async function errnoOf(call: () => unknown): Promise<string> {
  try {
    await call();
  } catch (e) {
    if (e instanceof FsError) return errnoName(e.errno);
    throw e;
  }
  return "resolved";
}

export function fsConformance(backend: string, build: FixtureFactory, traits: BackendTraits): void {
  describe(`FileSystem conformance: ${backend}`, () => {
    let fx: Fixture;
    let fs: FileSystem;

    beforeEach(async () => {
      fx = await build(FIXTURE);
      fs = fx.fs;
    });
    afterEach(async () => {
      await fx.cleanup();
    });

    async function resolve(path: string): Promise<FileAttr> {
      let attr = await fs.getattr(fs.rootIno);
      for (const name of path.split("/").filter((c) => c !== "")) attr = await fs.lookup(attr.ino, name);
      return attr;
    }

    async function list(ino: Ino, maxEntries?: number): Promise<DirEntry[]> {
      const dh = await fs.opendir(ino);
      const all: DirEntry[] = [];
      for (let cookie = 0; ; ) {
        const batch = await fs.readdir(dh, cookie, maxEntries);
        if (batch.length === 0) break;
        if (maxEntries !== undefined) expect(batch.length).toBeLessThanOrEqual(maxEntries);
        all.push(...batch);
        cookie = batch.at(-1)!.off;
      }
      await fs.releasedir(dh);
      return all;
    }

    async function readFile(path: string): Promise<Uint8Array> {
      const fh = await fs.open((await resolve(path)).ino, 0);
      const data = await fs.read(fh, 0, MAX_IO_SIZE);
      await fs.release(fh);
      return data;
    }

    describe("attributes", () => {
      it("reports the root as a directory whose nlink counts its subdirectories", async () => {
        const root = await fs.getattr(fs.rootIno);
        expect(root.ino).toBe(fs.rootIno);
        expect(root.mode & S_IFMT).toBe(S_IFDIR);
        expect(root.nlink).toBe(2 + 3); // dir, empty-dir, many
      });

      it("reports a regular file's type, mode, size and times", async () => {
        const attr = await resolve("hello.txt");
        expect(attr.mode).toBe(S_IFREG | 0o644);
        expect(attr.size).toBe(HELLO.length);
        expect(attr.blksize).toBeGreaterThan(0);
        expect(Number.isSafeInteger(attr.blocks) && attr.blocks >= 0).toBe(true);
        for (const id of [attr.uid, attr.gid, attr.rdev]) expect(Number.isSafeInteger(id) && id >= 0).toBe(true);
        for (const t of [attr.atime, attr.mtime, attr.ctime]) {
          expect(Number.isSafeInteger(t.sec) && t.sec > 1_000_000_000).toBe(true);
          expect(Number.isInteger(t.nsec) && t.nsec >= 0 && t.nsec < 1e9).toBe(true);
        }
        expect((await resolve("script.sh")).mode).toBe(S_IFREG | 0o755);
        expect((await resolve("big.bin")).size).toBe(BIG.length);
        expect((await resolve("empty")).size).toBe(0);
      });

      it("getattr agrees with lookup", async () => {
        for (const path of ["hello.txt", "dir", "dir/sub/deeper/leaf.txt", "link-to-hello"]) {
          const looked = await resolve(path);
          const got = await fs.getattr(looked.ino);
          expect({ ino: got.ino, mode: got.mode, size: got.size, nlink: got.nlink }).toEqual({
            ino: looked.ino,
            mode: looked.mode,
            size: looked.size,
            nlink: looked.nlink,
          });
        }
      });

      it("reports directories with their modes and link counts", async () => {
        expect(await resolve("dir")).toMatchObject({ mode: S_IFDIR | 0o755, nlink: 3 });
        expect(await resolve("dir/sub")).toMatchObject({ mode: S_IFDIR | 0o750, nlink: 3 });
        expect(await resolve("dir/sub/deeper")).toMatchObject({ mode: S_IFDIR | 0o755, nlink: 2 });
        expect(await resolve("empty-dir")).toMatchObject({ mode: S_IFDIR | 0o700, nlink: 2 });
      });

      it("reports symlinks as symlinks, sized by their target's UTF-8 bytes, without following them", async () => {
        expect(await resolve("link-to-hello")).toMatchObject({ mode: S_IFLNK | 0o777, size: "hello.txt".length });
        expect(await resolve("dangling")).toMatchObject({ mode: S_IFLNK | 0o777, size: "no/such/target".length });
        expect((await resolve("utf8-link")).size).toBe(5);
        expect((await resolve("dir-link")).mode & S_IFMT).toBe(S_IFLNK);
      });

      it("gives hard links one inode and distinct files distinct inodes", async () => {
        const a = await resolve("hello.txt");
        const b = await resolve("dir/hello-link.txt");
        expect(b.ino).toBe(a.ino);
        expect(a.nlink).toBe(2);
        expect(b.nlink).toBe(2);
        expect(await readFile("dir/hello-link.txt")).toEqual(text(HELLO));

        const inos = new Set<Ino>([fs.rootIno]);
        const paths = FIXTURE.filter((item) => item.kind !== "hardlink").map((item) => item.path);
        for (const path of paths) inos.add((await resolve(path)).ino);
        expect(inos.size).toBe(paths.length + 1);
      });

      it("looks up names with spaces and UTF-8", async () => {
        for (const name of ODD_NAMES) {
          const attr = await resolve(name);
          expect(attr.mode & S_IFMT).toBe(S_IFREG);
          expect(await readFile(name)).toEqual(text(name));
        }
      });
    });

    describe("lookup errors", () => {
      it("fails with ENOENT for a missing name and ENOTDIR under a file or a symlink", async () => {
        expect(await errnoOf(() => fs.lookup(fs.rootIno, "missing"))).toBe("ENOENT");
        expect(await errnoOf(async () => fs.lookup((await resolve("dir")).ino, "hello.txt"))).toBe("ENOENT");
        expect(await errnoOf(async () => fs.lookup((await resolve("hello.txt")).ino, "x"))).toBe("ENOTDIR");
        expect(await errnoOf(async () => fs.lookup((await resolve("dir-link")).ino, "deeper"))).toBe("ENOTDIR");
      });

      it("rejects names that are not one valid component", async () => {
        const cases: [string, number][] = [
          ["", EINVAL],
          [".", EINVAL],
          ["..", EINVAL],
          ["a/b", EINVAL],
          ["dir/sub", EINVAL],
          ["/", EINVAL],
          ["x\u0000", EINVAL],
          ["\u0000", EINVAL],
          ["x".repeat(256), ENAMETOOLONG],
          ["é".repeat(128), ENAMETOOLONG], // 128 characters, 256 bytes
          ["🐧".repeat(64), ENAMETOOLONG],
          ["a\ud800b", EILSEQ],
          ["\udc00", EILSEQ],
        ];
        for (const [name, errno] of cases) {
          expect([JSON.stringify(name), await errnoOf(() => fs.lookup(fs.rootIno, name))]).toEqual([JSON.stringify(name), errnoName(errno)]);
        }
      });

      it("accepts a name of exactly 255 bytes", async () => {
        expect(await errnoOf(() => fs.lookup(fs.rootIno, "x".repeat(255)))).toBe("ENOENT");
        expect(await errnoOf(() => fs.lookup(fs.rootIno, "é".repeat(127) + "x"))).toBe("ENOENT");
      });
    });

    describe("readdir", () => {
      it("lists every entry exactly once, with . and .. first", async () => {
        const entries = await list(fs.rootIno);
        const names = entries.map((e) => e.name);
        expect(names.slice(0, 2)).toEqual([".", ".."]);
        expect([...names].sort()).toEqual([".", "..", ...ROOT_NAMES].sort());
        expect(entries.find((e) => e.name === ".")).toMatchObject({ ino: fs.rootIno, type: S_IFDIR });
        expect(entries.find((e) => e.name === "..")).toMatchObject({ ino: fs.rootIno, type: S_IFDIR });
      });

      it("reports each entry's type and the inode lookup gives", async () => {
        for (const entry of await list(fs.rootIno)) {
          if (entry.name === "." || entry.name === "..") continue;
          const attr = await fs.lookup(fs.rootIno, entry.name);
          expect([entry.name, entry.ino, entry.type]).toEqual([entry.name, attr.ino, attr.mode & S_IFMT]);
        }
      });

      it("names the parent directory in ..", async () => {
        const dir = await resolve("dir");
        const sub = await resolve("dir/sub");
        const entries = await list(sub.ino);
        expect(entries.slice(0, 2)).toMatchObject([
          { name: ".", ino: sub.ino },
          { name: "..", ino: dir.ino },
        ]);
        expect(entries.map((e) => e.name).sort()).toEqual([".", "..", "deeper"]);
        expect((await list((await resolve("empty-dir")).ino)).map((e) => e.name)).toEqual([".", ".."]);
      });

      it("resumes from every cookie", async () => {
        const many = await resolve("many");
        const full = await list(many.ino);
        expect(full.map((e) => e.name).sort()).toEqual([".", "..", ...MANY]);
        const dh = await fs.opendir(many.ino);
        for (let i = 0; i <= full.length; i++) {
          const cookie = i === 0 ? 0 : full[i - 1]!.off;
          expect(await fs.readdir(dh, cookie)).toEqual(full.slice(i));
          if (i > 0) expect(await fs.readdir(dh, cookie, 1)).toEqual(full.slice(i, i + 1));
        }
        await fs.releasedir(dh);
      });

      it("pages through with small counts, each name once", async () => {
        const many = await resolve("many");
        const names = (await list(many.ino)).map((e) => e.name);
        for (const max of [1, 2, 3, 7]) expect((await list(many.ino, max)).map((e) => e.name)).toEqual(names);
      });

      it.skipIf(traits.readOnly)("keeps its cookies across changes to the directory, and rereads it at cookie 0", async () => {
        const many = await resolve("many");
        const dh = await fs.opendir(many.ino);
        const first = await fs.readdir(dh, 0, 10);
        const seen = first.map((e) => e.name);
        const listedEarlier = seen.find((n) => n.startsWith("f"))!;
        const notYetListed = MANY.find((n) => !seen.includes(n))!;
        await fx.remove(`many/${listedEarlier}`);
        await fx.remove(`many/${notYetListed}`);
        await fx.addFile("many/added");
        const rest = await fs.readdir(dh, first.at(-1)!.off);
        const names = [...seen, ...rest.map((e) => e.name)];
        expect(new Set(names).size).toBe(names.length);
        for (const name of MANY) if (name !== listedEarlier && name !== notYetListed) expect(names).toContain(name);

        const fresh = (await fs.readdir(dh, 0)).map((e) => e.name);
        expect(fresh).toContain("added");
        expect(fresh).not.toContain(listedEarlier);
        expect(fresh).not.toContain(notYetListed);
        await fs.releasedir(dh);
      });

      it("returns nothing past the end and rejects bad cookies and counts", async () => {
        const dh = await fs.opendir(fs.rootIno);
        expect(await fs.readdir(dh, 10_000)).toEqual([]);
        expect(await errnoOf(() => fs.readdir(dh, -1))).toBe("EINVAL");
        expect(await errnoOf(() => fs.readdir(dh, 1.5))).toBe("EINVAL");
        expect(await errnoOf(() => fs.readdir(dh, 0, 0))).toBe("EINVAL");
        await fs.releasedir(dh);
      });

      it("opens only directories", async () => {
        expect(await errnoOf(async () => fs.opendir((await resolve("hello.txt")).ino))).toBe("ENOTDIR");
        expect(await errnoOf(async () => fs.opendir((await resolve("dir-link")).ino))).toBe("ENOTDIR");
      });
    });

    describe("read", () => {
      it("reads whole files, at offsets, short only at end of file", async () => {
        const fh = await fs.open((await resolve("hello.txt")).ino, 0);
        const bytes = text(HELLO);
        expect(await fs.read(fh, 0, 4096)).toEqual(bytes);
        expect(await fs.read(fh, 7, 5)).toEqual(bytes.subarray(7, 12));
        expect(await fs.read(fh, 10, 100)).toEqual(bytes.subarray(10));
        expect(await fs.read(fh, bytes.length, 10)).toEqual(new Uint8Array(0));
        expect(await fs.read(fh, 1000, 10)).toEqual(new Uint8Array(0));
        expect(await fs.read(fh, 3, 0)).toEqual(new Uint8Array(0));
        await fs.release(fh);
        expect(await readFile("empty")).toEqual(new Uint8Array(0));
      });

      it("reads a large file in chunks and at unaligned offsets", async () => {
        const fh = await fs.open((await resolve("big.bin")).ino, 0);
        const chunk = 128 << 10;
        const parts: Uint8Array[] = [];
        for (let off = 0; off < BIG.length; off += chunk) {
          const part = await fs.read(fh, off, chunk);
          expect(part.length).toBe(Math.min(chunk, BIG.length - off));
          parts.push(part);
        }
        expect(Buffer.concat(parts).equals(Buffer.from(BIG))).toBe(true);
        for (const [off, len] of [[4095, 2], [12345, 70000], [BIG.length - 1, 10], [1, BIG.length]] as const) {
          expect(Buffer.from(await fs.read(fh, off, len)).equals(Buffer.from(BIG.subarray(off, off + len)))).toBe(true);
        }
        await fs.release(fh);
      });

      it("reads into a caller's buffer, a shared one too, leaving what is past end of file untouched", async () => {
        if (!fs.readInto) return; // optional: callers fall back to read
        const fh = await fs.open((await resolve("big.bin")).ino, 0);
        const into = new Uint8Array(new SharedArrayBuffer(70_000)).fill(0xee);
        expect(await fs.readInto(fh, 12345, into)).toBe(70_000);
        expect(Buffer.from(into).equals(Buffer.from(BIG.subarray(12345, 12345 + 70_000)))).toBe(true);
        into.fill(0xee);
        expect(await fs.readInto(fh, BIG.length - 10, into.subarray(5, 105))).toBe(10);
        expect([...into.subarray(0, 5)]).toEqual([0xee, 0xee, 0xee, 0xee, 0xee]);
        expect(Buffer.from(into.subarray(5, 15)).equals(Buffer.from(BIG.subarray(BIG.length - 10)))).toBe(true);
        expect(into[15]).toBe(0xee);
        expect(await fs.readInto(fh, BIG.length + 1, into)).toBe(0);
        expect(await errnoOf(() => fs.readInto!(fh, -1, into))).toBe("EINVAL");
        await fs.release(fh);
      });

      it("rejects bad ranges", async () => {
        const fh = await fs.open((await resolve("hello.txt")).ino, 0);
        for (const [off, len] of [[-1, 1], [0, -1], [0.5, 1], [0, 1.5], [Number.NaN, 1], [2 ** 53, 1], [0, MAX_IO_SIZE + 1]]) {
          expect(await errnoOf(() => fs.read(fh, off!, len!))).toBe("EINVAL");
        }
        await fs.release(fh);
      });

      it("opens regular files only", async () => {
        expect(await errnoOf(async () => fs.open((await resolve("dir")).ino, 0))).toBe(errnoName(EISDIR));
        expect(await errnoOf(async () => fs.open((await resolve("link-to-hello")).ino, 0))).toBe(errnoName(ELOOP));
        expect(fs.capabilities.readOnly).toBe(traits.readOnly === true);
      });

      it("keeps handles independent", async () => {
        const ino = (await resolve("hello.txt")).ino;
        const a = await fs.open(ino, 0);
        const b = await fs.open(ino, 0);
        expect(a).not.toBe(b);
        await fs.release(a);
        expect(await fs.read(b, 0, 5)).toEqual(text("Hello"));
        await fs.release(b);
      });
    });

    describe("readlink", () => {
      it("returns symlink targets as written, and EINVAL for anything else", async () => {
        expect(await fs.readlink((await resolve("link-to-hello")).ino)).toBe("hello.txt");
        expect(await fs.readlink((await resolve("dangling")).ino)).toBe("no/such/target");
        expect(await fs.readlink((await resolve("utf8-link")).ino)).toBe("ünï");
        expect(await errnoOf(async () => fs.readlink((await resolve("hello.txt")).ino))).toBe("EINVAL");
        expect(await errnoOf(() => fs.readlink(fs.rootIno))).toBe("EINVAL");
      });
    });

    describe("handles", () => {
      it("rejects released, unknown and wrong-kind handles with EBADF", async () => {
        const fh = await fs.open((await resolve("hello.txt")).ino, 0);
        const dh = await fs.opendir(fs.rootIno);
        expect(await errnoOf(() => fs.readdir(fh, 0))).toBe("EBADF");
        expect(await errnoOf(() => fs.releasedir(fh))).toBe("EBADF");
        expect(await errnoOf(() => fs.read(dh, 0, 1))).toBe("EBADF");
        expect(await errnoOf(() => fs.release(dh))).toBe("EBADF");
        await fs.release(fh);
        await fs.releasedir(dh);
        expect(await errnoOf(() => fs.read(fh, 0, 1))).toBe("EBADF");
        expect(await errnoOf(() => fs.release(fh))).toBe("EBADF");
        expect(await errnoOf(() => fs.readdir(dh, 0))).toBe("EBADF");
        expect(await errnoOf(() => fs.releasedir(dh))).toBe("EBADF");
        for (const bogus of [0, -1, 1.5, Number.NaN, 2 ** 40]) {
          expect(await errnoOf(() => fs.read(bogus, 0, 1))).toBe(errnoName(EBADF));
          expect(await errnoOf(() => fs.readdir(bogus, 0))).toBe(errnoName(EBADF));
        }
      });
    });

    describe("inodes", () => {
      it("answers unknown inode numbers with ESTALE", async () => {
        for (const ino of [0, -1, 1.5, Number.NaN, 999_999_999]) {
          for (const call of [
            () => fs.getattr(ino),
            () => fs.lookup(ino, "x"),
            () => fs.opendir(ino),
            () => fs.open(ino, 0),
            () => fs.readlink(ino),
            () => fs.statfs(ino),
            () => fs.access(ino, F_OK)]) {
            expect(await errnoOf(() => call())).toBe(errnoName(ESTALE));
          }
        }
      });

      it("keeps an inode while lookups reference it and drops it when all are forgotten", async () => {
        const first = await fs.lookup(fs.rootIno, "hello.txt");
        await fs.lookup(fs.rootIno, "hello.txt");
        await fs.forget(first.ino, 1);
        expect((await fs.getattr(first.ino)).ino).toBe(first.ino);
        await fs.forget(first.ino, 1);
        expect(await errnoOf(() => fs.getattr(first.ino))).toBe("ESTALE");
        expect((await fs.lookup(fs.rootIno, "hello.txt")).ino).toBe(first.ino);
        await fs.forget(first.ino, 100);
        expect(await errnoOf(() => fs.getattr(first.ino))).toBe("ESTALE");
      });

      it("never forgets the root, and ignores forgets of unknown inodes", async () => {
        await fs.forget(fs.rootIno, 1_000_000);
        await fs.forget(123_456_789, 1);
        await fs.forget(fs.rootIno, Number.NaN);
        expect((await fs.getattr(fs.rootIno)).ino).toBe(fs.rootIno);
        expect((await fs.lookup(fs.rootIno, "dir")).mode & S_IFMT).toBe(S_IFDIR);
      });

      it("keeps an open file readable after its inode is forgotten", async () => {
        const { ino } = await fs.lookup(fs.rootIno, "hello.txt");
        const fh = await fs.open(ino, 0);
        await fs.forget(ino, 1);
        expect(await fs.read(fh, 0, 5)).toEqual(text("Hello"));
        await fs.release(fh);
      });

      it.skipIf(traits.readOnly)("checks only existence in access", async () => {
        const ino = (await resolve("hello.txt")).ino;
        for (const mask of [F_OK, R_OK, W_OK, X_OK, R_OK | W_OK | X_OK]) await fs.access(ino, mask);
        await fs.access(fs.rootIno, R_OK | W_OK);
      });
    });

    describe("statfs", () => {
      it("reports consistent numbers", async () => {
        const st = await fs.statfs(fs.rootIno);
        expect(st.bsize).toBeGreaterThan(0);
        expect(st.frsize).toBeGreaterThan(0);
        expect(st.namelen).toBe(255);
        expect(st.blocks).toBeGreaterThan(0);
        expect(st.bfree).toBeLessThanOrEqual(st.blocks);
        expect(st.bavail).toBeLessThanOrEqual(st.bfree);
        expect(st.ffree).toBeLessThanOrEqual(st.files);
        for (const n of Object.values(st)) expect(Number.isSafeInteger(n) && n >= 0).toBe(true);
        const other = await fs.statfs((await resolve("dir/sub")).ino);
        expect([other.bsize, other.blocks, other.files]).toEqual([st.bsize, st.blocks, st.files]);
      });
    });

    // The write side ---------------------------------------------------------------------------------

    const CRED: Cred = { uid: 1234, gid: 5678 };
    const NOW_SLACK = 5; // seconds between the backend's clock and the test's
    /** More than the coarse clock tick host filesystems stamp times with. */
    const TICK_MS = 30;
    const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
    const seconds = (t: Timespec): number => t.sec + t.nsec / 1e9;
    const isNow = (t: Timespec): boolean => Math.abs(seconds(t) - Date.now() / 1000) < NOW_SLACK;
    const later = (a: Timespec, b: Timespec): boolean => a.sec > b.sec || (a.sec === b.sec && a.nsec > b.nsec);

    async function newFile(parent: Ino, name: string, data: Uint8Array = new Uint8Array(0), mode = 0o644): Promise<FileAttr> {
      const { attr, fh } = await fs.create(parent, name, mode, O_CREAT | O_RDWR, CRED);
      if (data.length > 0) expect(await fs.write(fh, 0, data)).toBe(data.length);
      await fs.release(fh);
      return fs.getattr(attr.ino);
    }

    async function contents(ino: Ino): Promise<Uint8Array> {
      const fh = await fs.open(ino, 0);
      const data = await fs.read(fh, 0, MAX_IO_SIZE);
      await fs.release(fh);
      return data;
    }

    async function names(ino: Ino): Promise<string[]> {
      return (await list(ino)).map((e) => e.name).filter((n) => n !== "." && n !== "..");
    }

    describe.skipIf(traits.readOnly)("create and write", () => {
      it("creates a regular file owned by the caller, with the mode given and times of now", async () => {
        const root = await fs.getattr(fs.rootIno);
        await sleep(TICK_MS);
        const { attr, fh } = await fs.create(fs.rootIno, "new.txt", 0o640, O_CREAT | O_EXCL | O_RDWR, CRED);
        expect(attr).toMatchObject({ mode: S_IFREG | 0o640, nlink: 1, uid: CRED.uid, gid: CRED.gid, size: 0, rdev: 0 });
        for (const t of [attr.atime, attr.mtime, attr.ctime]) expect(isNow(t)).toBe(true);
        expect(await fs.write(fh, 0, text("fresh"))).toBe(5);
        expect(await fs.read(fh, 0, 100)).toEqual(text("fresh"));
        await fs.release(fh);
        expect((await fs.lookup(fs.rootIno, "new.txt")).ino).toBe(attr.ino);
        expect(await fs.getattr(attr.ino)).toMatchObject({ size: 5 });
        expect(await names(fs.rootIno)).toContain("new.txt");
        const after = await fs.getattr(fs.rootIno);
        expect(later(after.mtime, root.mtime) && later(after.ctime, root.ctime)).toBe(true);
      });

      it("honours O_EXCL and O_TRUNC, and otherwise opens the existing file", async () => {
        const hello = await resolve("hello.txt");
        expect(await errnoOf(() => fs.create(fs.rootIno, "hello.txt", 0o600, O_CREAT | O_EXCL | O_RDWR, CRED))).toBe("EEXIST");
        const kept = await fs.create(fs.rootIno, "hello.txt", 0o600, O_CREAT | O_RDWR, CRED);
        expect(kept.attr).toMatchObject({ ino: hello.ino, mode: S_IFREG | 0o644, size: HELLO.length });
        expect(await fs.read(kept.fh, 0, 5)).toEqual(text("Hello"));
        await fs.release(kept.fh);
        const truncated = await fs.create(fs.rootIno, "hello.txt", 0o600, O_CREAT | O_TRUNC | O_WRONLY, CRED);
        expect(truncated.attr).toMatchObject({ ino: hello.ino, size: 0 });
        await fs.release(truncated.fh);
        expect(await errnoOf(() => fs.create(fs.rootIno, "dir", 0o600, O_CREAT | O_RDONLY, CRED))).toBe("EISDIR");
      });

      it("truncates on open with O_TRUNC", async () => {
        const big = await resolve("big.bin");
        await fs.release(await fs.open(big.ino, O_TRUNC | O_WRONLY));
        expect((await fs.getattr(big.ino)).size).toBe(0);
      });

      it("writes at the end with O_APPEND, whatever the offset", async () => {
        const ino = (await resolve("hello.txt")).ino;
        const fh = await fs.open(ino, O_WRONLY | O_APPEND);
        expect(await fs.write(fh, 0, text("one"))).toBe(3);
        expect(await fs.write(fh, 2, text("two"))).toBe(3);
        await fs.release(fh);
        expect(new TextDecoder().decode(await contents(ino))).toBe(`${HELLO}onetwo`);
      });

      it("enforces the handle's access mode", async () => {
        const ino = (await resolve("hello.txt")).ino;
        const ro = await fs.open(ino, O_RDONLY);
        const wo = await fs.open(ino, O_WRONLY);
        expect(await errnoOf(() => fs.write(ro, 0, text("x")))).toBe("EBADF");
        expect(await errnoOf(() => fs.read(wo, 0, 1))).toBe("EBADF");
        expect(await errnoOf(() => fs.fallocate(ro, 0, 0, 10))).toBe("EBADF");
        expect(await errnoOf(async () => fs.write(await fs.opendir(fs.rootIno), 0, text("x")))).toBe("EBADF");
        expect(await fs.write(wo, 0, text("J"))).toBe(1);
        expect(await fs.read(ro, 0, 5)).toEqual(text("Jello"));
        await fs.release(ro);
        await fs.release(wo);
        expect(await errnoOf(() => fs.write(wo, 0, text("x")))).toBe("EBADF");
      });

      it.skipIf(traits.dense)("writes past the end with a hole, also beyond 2^31 and 2^32 bytes, without allocating the hole", async () => {
        const { attr, fh } = await fs.create(fs.rootIno, "sparse", 0o644, O_CREAT | O_RDWR, CRED);
        expect(await fs.write(fh, 2 ** 31 - 1, text("abc"))).toBe(3);
        expect(await fs.write(fh, 2 ** 32 - 1, text("def"))).toBe(3);
        expect(await fs.write(fh, 2 ** 32 + 5, text("x"))).toBe(1);
        const got = await fs.getattr(attr.ino);
        expect(got.size).toBe(2 ** 32 + 6);
        expect(got.blocks * 512).toBeLessThan(1 << 20);
        expect(await fs.read(fh, 2 ** 32, 10)).toEqual(Uint8Array.from([0x65, 0x66, 0, 0, 0, 0x78]));
        expect(await fs.read(fh, 2 ** 31 - 2, 5)).toEqual(Uint8Array.from([0, 0x61, 0x62, 0x63, 0]));
        expect(await fs.read(fh, 2 ** 32 - 2, 3)).toEqual(Uint8Array.from([0, 0x64, 0x65]));
        expect(await fs.read(fh, 12345, 4096)).toEqual(new Uint8Array(4096));
        await fs.release(fh);
      });

      it("moves mtime and ctime on writes", async () => {
        const ino = (await resolve("hello.txt")).ino;
        const before = await fs.getattr(ino);
        await sleep(TICK_MS);
        const fh = await fs.open(ino, O_WRONLY);
        await fs.write(fh, 0, text("h"));
        await fs.release(fh);
        const after = await fs.getattr(ino);
        expect(later(after.mtime, before.mtime) && later(after.ctime, before.ctime)).toBe(true);
      });

      it("rejects bad write ranges", async () => {
        const fh = await fs.open((await resolve("hello.txt")).ino, O_RDWR);
        for (const off of [-1, 0.5, Number.NaN]) expect(await errnoOf(() => fs.write(fh, off, text("x")))).toBe("EINVAL");
        expect(await errnoOf(() => fs.write(fh, Number.MAX_SAFE_INTEGER, text("x")))).toBe("EFBIG");
        await fs.release(fh);
      });
    });

    describe.skipIf(traits.readOnly)("setattr", () => {
      it("changes the permission bits, set-id and sticky bits included, but never the type", async () => {
        const file = await resolve("hello.txt");
        const dir = await resolve("empty-dir");
        expect(await fs.setattr(file.ino, { mode: S_IFDIR | 0o4751 })).toMatchObject({ mode: S_IFREG | 0o4751 });
        expect(await fs.setattr(dir.ino, { mode: 0o1777 })).toMatchObject({ mode: S_IFDIR | 0o1777 });
        expect(await fs.setattr(file.ino, { mode: 0o2000 })).toMatchObject({ mode: S_IFREG | 0o2000 });
        expect((await fs.lookup(fs.rootIno, "hello.txt")).mode).toBe(S_IFREG | 0o2000);
        expect(await errnoOf(async () => fs.setattr((await resolve("link-to-hello")).ino, { mode: 0o600 }))).toBe("EOPNOTSUPP");
      });

      it("changes owners, of symlinks too", async () => {
        const file = await resolve("hello.txt");
        expect(await fs.setattr(file.ino, { uid: 4242 })).toMatchObject({ uid: 4242, gid: file.gid });
        expect(await fs.setattr(file.ino, { gid: 4343 })).toMatchObject({ uid: 4242, gid: 4343 });
        expect(await fs.getattr((await resolve("dir/hello-link.txt")).ino)).toMatchObject({ uid: 4242, gid: 4343 });
        const link = await resolve("link-to-hello");
        expect(await fs.setattr(link.ino, { uid: 7, gid: 8 })).toMatchObject({ mode: S_IFLNK | 0o777, uid: 7, gid: 8 });
        expect(await fs.getattr(file.ino)).toMatchObject({ uid: 4242 });
      });

      it("truncates down and up, the regained part reading as zeros", async () => {
        const ino = (await resolve("hello.txt")).ino;
        expect(await fs.setattr(ino, { size: 5 })).toMatchObject({ size: 5 });
        expect(await contents(ino)).toEqual(text("Hello"));
        expect(await fs.setattr(ino, { size: 10 })).toMatchObject({ size: 10 });
        expect(await contents(ino)).toEqual(Uint8Array.from([...text("Hello"), 0, 0, 0, 0, 0]));
        const big = await resolve("big.bin");
        await fs.setattr(big.ino, { size: 4097 });
        await fs.setattr(big.ino, { size: 9000 });
        expect(await contents(big.ino)).toEqual(Uint8Array.from([...BIG.subarray(0, 4097), ...new Uint8Array(9000 - 4097)]));
      });

      it("truncates through a handle", async () => {
        const ino = (await resolve("hello.txt")).ino;
        const fh = await fs.open(ino, O_RDWR);
        expect(await fs.setattr(ino, { size: 2 }, fh)).toMatchObject({ size: 2 });
        expect(await fs.read(fh, 0, 100)).toEqual(text("He"));
        await fs.release(fh);
        const other = await fs.open((await resolve("empty")).ino, O_RDWR);
        expect(await errnoOf(() => fs.setattr(ino, { size: 1 }, other))).toBe("EBADF");
        await fs.release(other);
      });

      it("moves mtime on a size change and ctime on every change", async () => {
        const ino = (await resolve("hello.txt")).ino;
        const old = { sec: 1_000_000_000, nsec: 0 };
        const before = await fs.setattr(ino, { atime: old, mtime: old });
        await sleep(TICK_MS);
        const resized = await fs.setattr(ino, { size: 1 });
        expect(isNow(resized.mtime) && later(resized.ctime, before.ctime)).toBe(true);
        expect(resized.atime).toEqual(old);
        await sleep(TICK_MS);
        const chmodded = await fs.setattr(ino, { mode: 0o600 });
        expect(later(chmodded.ctime, resized.ctime)).toBe(true);
        expect(chmodded.mtime).toEqual(resized.mtime);
      });

      it("sets atime and mtime to given times (to the microsecond at least) or to now", async () => {
        const ino = (await resolve("hello.txt")).ino;
        const a = { sec: 1_600_000_000, nsec: 123_456_000 };
        const m = { sec: 1_500_000_000, nsec: 999_999_000 };
        expect(await fs.setattr(ino, { atime: a, mtime: m })).toMatchObject({ atime: a, mtime: m });
        expect(await fs.getattr(ino)).toMatchObject({ atime: a, mtime: m });
        const onlyM = await fs.setattr(ino, { mtime: { sec: 1_400_000_000, nsec: 0 } });
        expect(onlyM.atime).toEqual(a);
        const now = await fs.setattr(ino, { atime: "now", mtime: "now" });
        expect(isNow(now.atime) && isNow(now.mtime)).toBe(true);
        const before1970 = { sec: -86_400, nsec: 500_000_000 };
        expect((await fs.setattr(ino, { mtime: before1970 })).mtime).toEqual(before1970);
      });

      it(`keeps atime and mtime to ${traits.timePrecisionNs} ns, rounded to the nearest`, async () => {
        const ino = (await resolve("hello.txt")).ino;
        // Tenths of a second: not exact as binary fractions, which a float of seconds reads back short.
        const a = { sec: 100_000_000, nsec: 100_000_000 };
        const m = { sec: 200_000_000, nsec: 200_000_000 };
        expect(await fs.setattr(ino, { atime: a, mtime: m })).toMatchObject({ atime: a, mtime: m });
        const p = traits.timePrecisionNs;
        const fine = { sec: 1_700_000_000, nsec: 123_456_789 };
        const rounded = { sec: fine.sec, nsec: Math.round(fine.nsec / p) * p };
        expect((await fs.setattr(ino, { mtime: fine })).mtime).toEqual(rounded);
        const carry = { sec: 1_700_000_000, nsec: 1e9 - 1 };
        expect((await fs.getattr((await fs.setattr(ino, { atime: carry })).ino)).atime).toEqual(p === 1 ? carry : { sec: carry.sec + 1, nsec: 0 });
      });

      it("refuses sizes for what is not a regular file, and bad values", async () => {
        expect(await errnoOf(async () => fs.setattr((await resolve("dir")).ino, { size: 0 }))).toBe("EISDIR");
        expect(await errnoOf(async () => fs.setattr((await resolve("link-to-hello")).ino, { size: 0 }))).toBe("EINVAL");
        const ino = (await resolve("hello.txt")).ino;
        for (const a of [{ size: -1 }, { size: 0.5 }, { uid: -1 }, { gid: 2 ** 32 }, { mtime: { sec: 0, nsec: 1e9 } }]) {
          expect(await errnoOf(() => fs.setattr(ino, a))).toBe("EINVAL");
        }
        expect(await errnoOf(() => fs.setattr(999_999_999, { mode: 0o600 }))).toBe("ESTALE");
      });
    });

    describe.skipIf(traits.readOnly)("mknod, mkdir, symlink", () => {
      const makedev = (major: number, minor: number): number => (major << 8) | minor;

      it("makes FIFOs, sockets and devices, keeping type, mode and rdev, and never opens them", async () => {
        const cases = [
          { name: "fifo", mode: S_IFIFO | 0o644, rdev: 0 },
          { name: "sock", mode: S_IFSOCK | 0o755, rdev: 0 },
          { name: "null", mode: S_IFCHR | 0o666, rdev: makedev(1, 3) },
          { name: "sda", mode: S_IFBLK | 0o660, rdev: makedev(8, 0) },
        ];
        for (const c of cases) {
          const attr = await fs.mknod(fs.rootIno, c.name, c.mode, c.rdev, CRED);
          expect(attr).toMatchObject({ mode: c.mode, rdev: c.rdev, size: 0, nlink: 1, uid: CRED.uid, gid: CRED.gid });
          expect(await fs.lookup(fs.rootIno, c.name)).toMatchObject({ ino: attr.ino, mode: c.mode, rdev: c.rdev });
          expect(await fs.getattr(attr.ino)).toMatchObject({ mode: c.mode, rdev: c.rdev });
          expect(await errnoOf(() => fs.open(attr.ino, O_RDONLY))).toBe("ENXIO");
          expect(await errnoOf(() => fs.open(attr.ino, O_WRONLY))).toBe("ENXIO");
        }
        const listed = await list(fs.rootIno);
        for (const c of cases) expect(listed.find((e) => e.name === c.name)?.type).toBe(c.mode & S_IFMT);
        expect(await errnoOf(() => fs.create(fs.rootIno, "fifo", 0o644, O_CREAT | O_RDWR, CRED))).toBe("ENXIO");
        expect(await fs.setattr((await resolve("null")).ino, { mode: 0o600 })).toMatchObject({ mode: S_IFCHR | 0o600, rdev: makedev(1, 3) });
      });

      it("makes regular files, and refuses other types", async () => {
        const attr = await fs.mknod(fs.rootIno, "plain", S_IFREG | 0o600, 0, CRED);
        expect(attr).toMatchObject({ mode: S_IFREG | 0o600, size: 0 });
        await fs.release(await fs.open(attr.ino, O_RDWR));
        for (const mode of [S_IFDIR | 0o755, S_IFLNK | 0o777, 0o644]) expect(await errnoOf(() => fs.mknod(fs.rootIno, "bad", mode, 0, CRED))).toBe("EINVAL");
        expect(await errnoOf(() => fs.mknod(fs.rootIno, "plain", S_IFIFO | 0o600, 0, CRED))).toBe("EEXIST");
      });

      it("refuses a device number that is no dev_t, and keeps one only for devices", async () => {
        for (const rdev of [-1, 0.5, 2 ** 32, Number.NaN]) {
          for (const mode of [S_IFCHR | 0o600, S_IFIFO | 0o600]) expect(await errnoOf(() => fs.mknod(fs.rootIno, "bad", mode, rdev, CRED))).toBe("EINVAL");
        }
        expect(await names(fs.rootIno)).not.toContain("bad");
        expect(await fs.mknod(fs.rootIno, "fifo", S_IFIFO | 0o600, makedev(1, 3), CRED)).toMatchObject({ rdev: 0 });
        expect(await fs.getattr((await resolve("fifo")).ino)).toMatchObject({ rdev: 0 });
      });

      it("makes directories, counted in their parent's nlink", async () => {
        const attr = await fs.mkdir(fs.rootIno, "made", 0o750, CRED);
        expect(attr).toMatchObject({ mode: S_IFDIR | 0o750, nlink: 2, uid: CRED.uid, gid: CRED.gid });
        expect((await fs.getattr(fs.rootIno)).nlink).toBe(2 + 4);
        expect(await fs.mkdir(attr.ino, "inner", 0o700, CRED)).toMatchObject({ nlink: 2 });
        expect((await fs.getattr(attr.ino)).nlink).toBe(3);
        expect(await names(attr.ino)).toEqual(["inner"]);
        expect(await errnoOf(() => fs.mkdir(fs.rootIno, "made", 0o700, CRED))).toBe("EEXIST");
        expect(await errnoOf(() => fs.mkdir(fs.rootIno, "hello.txt", 0o700, CRED))).toBe("EEXIST");
        expect(await errnoOf(async () => fs.mkdir((await resolve("hello.txt")).ino, "x", 0o700, CRED))).toBe("ENOTDIR");
        expect(await errnoOf(async () => fs.mkdir((await resolve("dir-link")).ino, "x", 0o700, CRED))).toBe("ENOTDIR");
      });

      it("makes symlinks with the target as given", async () => {
        const target = "../some/ünï/where";
        const attr = await fs.symlink(fs.rootIno, "sym", target, CRED);
        expect(attr).toMatchObject({ mode: S_IFLNK | 0o777, size: utf8Length(target), uid: CRED.uid, gid: CRED.gid, nlink: 1 });
        expect(await fs.readlink(attr.ino)).toBe(target);
        expect(await fs.readlink((await fs.lookup(fs.rootIno, "sym")).ino)).toBe(target);
        expect(await errnoOf(() => fs.symlink(fs.rootIno, "sym2", "", CRED))).toBe("ENOENT");
        expect(await errnoOf(() => fs.symlink(fs.rootIno, "sym2", "x".repeat(4096), CRED))).toBe("ENAMETOOLONG");
        expect(await fs.symlink(fs.rootIno, "sym2", "x".repeat(4095), CRED)).toMatchObject({ size: 4095 });
        expect(await errnoOf(() => fs.symlink(fs.rootIno, "sym", "other", CRED))).toBe("EEXIST");
      });

      it("passes a set-group-ID directory's group on, and the bit to subdirectories", async () => {
        const shared = await fs.mkdir(fs.rootIno, "shared", 0o775, CRED);
        await fs.setattr(shared.ino, { mode: 0o2775, gid: 4242 });
        const file = await newFile(shared.ino, "file");
        expect(file).toMatchObject({ mode: S_IFREG | 0o644, uid: CRED.uid, gid: 4242 });
        expect(await fs.mkdir(shared.ino, "sub", 0o755, CRED)).toMatchObject({ mode: S_IFDIR | 0o2755, uid: CRED.uid, gid: 4242 });
        expect(await fs.mknod(shared.ino, "fifo", S_IFIFO | 0o600, 0, CRED)).toMatchObject({ gid: 4242, mode: S_IFIFO | 0o600 });
        expect(await fs.symlink(shared.ino, "sym", "file", CRED)).toMatchObject({ gid: 4242 });
        const sub = await fs.lookup(shared.ino, "sub");
        expect(await newFile(sub.ino, "deeper")).toMatchObject({ gid: 4242 });
        const tmp = await fs.tmpfile(shared.ino, 0o600, O_RDWR, CRED);
        expect(tmp.attr).toMatchObject({ gid: 4242 });
        await fs.release(tmp.fh);
        expect(await newFile((await fs.mkdir(fs.rootIno, "plain", 0o755, CRED)).ino, "file")).toMatchObject({ gid: CRED.gid });
      });

      it("checks every name", async () => {
        const cases: [string, string][] = [
          ["a/b", "EINVAL"],
          ["..", "EINVAL"],
          ["", "EINVAL"],
          ["x".repeat(256), "ENAMETOOLONG"],
          ["a\ud800", "EILSEQ"],
        ];
        const file = (await resolve("hello.txt")).ino;
        for (const [name, errno] of cases) {
          expect(await errnoOf(() => fs.mkdir(fs.rootIno, name, 0o755, CRED))).toBe(errno);
          expect(await errnoOf(() => fs.mknod(fs.rootIno, name, S_IFREG | 0o644, 0, CRED))).toBe(errno);
          expect(await errnoOf(() => fs.symlink(fs.rootIno, name, "t", CRED))).toBe(errno);
          expect(await errnoOf(() => fs.create(fs.rootIno, name, 0o644, O_CREAT | O_RDWR, CRED))).toBe(errno);
          expect(await errnoOf(() => fs.link(file, fs.rootIno, name))).toBe(errno);
          expect(await errnoOf(() => fs.unlink(fs.rootIno, name))).toBe(errno);
          expect(await errnoOf(() => fs.rmdir(fs.rootIno, name))).toBe(errno);
          expect(await errnoOf(() => fs.rename(fs.rootIno, name, fs.rootIno, "x", 0))).toBe(errno);
          expect(await errnoOf(() => fs.rename(fs.rootIno, "hello.txt", fs.rootIno, name, 0))).toBe(errno);
        }
        expect(await errnoOf(() => fs.mkdir(fs.rootIno, "x".repeat(255), 0o755, CRED))).toBe("resolved");
      });
    });

    describe.skipIf(traits.readOnly)("link, unlink, rmdir", () => {
      it.skipIf(traits.lastNameHardLinks)("counts hard links exactly", async () => {
        const hello = await resolve("hello.txt");
        expect(await fs.link(hello.ino, fs.rootIno, "third")).toMatchObject({ ino: hello.ino, nlink: 3 });
        for (const path of ["hello.txt", "dir/hello-link.txt", "third"]) expect(await resolve(path)).toMatchObject({ ino: hello.ino, nlink: 3 });
        expect(await contents((await resolve("third")).ino)).toEqual(text(HELLO));
        await fs.unlink(fs.rootIno, "hello.txt");
        expect(await fs.getattr(hello.ino)).toMatchObject({ nlink: 2 });
        expect(await errnoOf(() => fs.lookup(fs.rootIno, "hello.txt"))).toBe("ENOENT");
        await fs.unlink((await resolve("dir")).ino, "hello-link.txt");
        expect(await resolve("third")).toMatchObject({ ino: hello.ino, nlink: 1 });
      });

      it("gives a name removed and made again a new inode", async () => {
        const first = await newFile(fs.rootIno, "again", text("1"));
        await fs.unlink(fs.rootIno, "again");
        const second = await newFile(fs.rootIno, "again", text("2"));
        expect(second.ino).not.toBe(first.ino);
        expect(await contents(second.ino)).toEqual(text("2"));
      });

      it("refuses links to directories and over existing names", async () => {
        expect(await errnoOf(async () => fs.link((await resolve("dir")).ino, fs.rootIno, "dir2"))).toBe("EPERM");
        expect(await errnoOf(async () => fs.link((await resolve("hello.txt")).ino, fs.rootIno, "empty"))).toBe("EEXIST");
        expect(await errnoOf(async () => fs.link((await resolve("hello.txt")).ino, (await resolve("hello.txt")).ino, "x"))).toBe("ENOTDIR");
      });

      it("links symlinks and special files as themselves", async () => {
        const link = await resolve("link-to-hello");
        expect(await fs.link(link.ino, fs.rootIno, "link2")).toMatchObject({ ino: link.ino, mode: S_IFLNK | 0o777, nlink: 2 });
        expect(await fs.readlink((await resolve("link2")).ino)).toBe("hello.txt");
        const fifo = await fs.mknod(fs.rootIno, "fifo", S_IFIFO | 0o600, 0, CRED);
        expect(await fs.link(fifo.ino, (await resolve("dir")).ino, "fifo2")).toMatchObject({ ino: fifo.ino, mode: S_IFIFO | 0o600, nlink: 2 });
      });

      it("unlinks what is not a directory, and rmdir empty directories only", async () => {
        expect(await errnoOf(() => fs.unlink(fs.rootIno, "dir"))).toBe("EISDIR");
        expect(await errnoOf(() => fs.unlink(fs.rootIno, "missing"))).toBe("ENOENT");
        expect(await errnoOf(() => fs.rmdir(fs.rootIno, "hello.txt"))).toBe("ENOTDIR");
        expect(await errnoOf(() => fs.rmdir(fs.rootIno, "link-to-hello"))).toBe("ENOTDIR");
        expect(await errnoOf(() => fs.rmdir(fs.rootIno, "dir"))).toBe("ENOTEMPTY");
        expect(await errnoOf(() => fs.rmdir(fs.rootIno, "missing"))).toBe("ENOENT");
        expect(await errnoOf(async () => fs.unlink((await resolve("hello.txt")).ino, "x"))).toBe("ENOTDIR");
        const root = await fs.getattr(fs.rootIno);
        await sleep(TICK_MS);
        await fs.rmdir(fs.rootIno, "empty-dir");
        await fs.unlink(fs.rootIno, "dangling");
        await fs.unlink(fs.rootIno, "link-to-hello");
        const after = await fs.getattr(fs.rootIno);
        expect(after.nlink).toBe(root.nlink - 1);
        expect(later(after.mtime, root.mtime) && later(after.ctime, root.ctime)).toBe(true);
        for (const name of ["empty-dir", "dangling", "link-to-hello"]) expect(await errnoOf(() => fs.lookup(fs.rootIno, name))).toBe("ENOENT");
        expect(await resolve("hello.txt")).toMatchObject({ nlink: 2 });
      });

      it("keeps an unlinked file readable, writable and stat-able through its handle until released", async () => {
        const { attr, fh } = await fs.create(fs.rootIno, "doomed", 0o600, O_CREAT | O_RDWR, CRED);
        await fs.write(fh, 0, text("still here"));
        await fs.setxattr(attr.ino, "user.note", text("kept"), 0);
        await fs.unlink(fs.rootIno, "doomed");
        expect(await errnoOf(() => fs.lookup(fs.rootIno, "doomed"))).toBe("ENOENT");
        expect(await fs.read(fh, 0, 100)).toEqual(text("still here"));
        expect(await fs.write(fh, 10, text("!"))).toBe(1);
        expect(await fs.read(fh, 0, 100)).toEqual(text("still here!"));
        expect(await fs.getattr(attr.ino)).toMatchObject({ ino: attr.ino, nlink: 0, size: 11, mode: S_IFREG | 0o600 });
        expect(await fs.setattr(attr.ino, { size: 5 }, fh)).toMatchObject({ size: 5, nlink: 0 });
        expect(await fs.getxattr(attr.ino, "user.note")).toEqual(text("kept"));
        const again = await fs.open(attr.ino, O_RDONLY);
        expect(await fs.read(again, 0, 100)).toEqual(text("still"));
        await fs.release(again);
        await fs.release(fh);
        expect(await names(fs.rootIno)).not.toContain("doomed");
      });

      it("names an O_TMPFILE file with link", async () => {
        const before = await names(fs.rootIno);
        const dir = await resolve("dir");
        const { attr, fh } = await fs.tmpfile(dir.ino, 0o640, O_RDWR, CRED);
        expect(attr).toMatchObject({ mode: S_IFREG | 0o640, nlink: 0, uid: CRED.uid, gid: CRED.gid, size: 0 });
        await fs.write(fh, 0, text("born unnamed"));
        expect(await fs.getattr(attr.ino)).toMatchObject({ nlink: 0, size: 12 });
        expect(await names(dir.ino)).toEqual(expect.not.arrayContaining(["born"]));
        expect(await fs.link(attr.ino, dir.ino, "born")).toMatchObject({ ino: attr.ino, nlink: 1 });
        expect(await fs.getattr(attr.ino)).toMatchObject({ nlink: 1 });
        await fs.release(fh);
        expect(await contents((await resolve("dir/born")).ino)).toEqual(text("born unnamed"));
        expect(await fs.link(attr.ino, fs.rootIno, "born2")).toMatchObject({ nlink: 2 });
        expect((await names(fs.rootIno)).sort()).toEqual([...before, "born2"].sort());
      });

      it("forgets an O_TMPFILE file never linked, and refuses to link one opened with O_EXCL", async () => {
        const before = await names(fs.rootIno);
        const a = await fs.tmpfile(fs.rootIno, 0o600, O_RDWR, CRED);
        await fs.write(a.fh, 0, text("gone"));
        await fs.release(a.fh);
        const b = await fs.tmpfile(fs.rootIno, 0o600, O_WRONLY | O_EXCL, CRED);
        expect(await errnoOf(() => fs.link(b.attr.ino, fs.rootIno, "nope"))).toBe("ENOENT");
        await fs.release(b.fh);
        expect(await errnoOf(() => fs.tmpfile(fs.rootIno, 0o600, O_RDONLY, CRED))).toBe("EINVAL");
        expect(await names(fs.rootIno)).toEqual(before);
      });
    });

    describe.skipIf(traits.readOnly)("rename", () => {
      it("moves a file within and across directories, keeping its inode and handles", async () => {
        const hello = await resolve("hello.txt");
        const fh = await fs.open(hello.ino, O_RDWR);
        const dir = await resolve("dir/sub");
        await fs.rename(fs.rootIno, "hello.txt", fs.rootIno, "renamed.txt", 0);
        await fs.rename(fs.rootIno, "renamed.txt", dir.ino, "moved.txt", 0);
        expect(await errnoOf(() => fs.lookup(fs.rootIno, "hello.txt"))).toBe("ENOENT");
        expect(await resolve("dir/sub/moved.txt")).toMatchObject({ ino: hello.ino, nlink: 2 });
        expect(await fs.read(fh, 0, 5)).toEqual(text("Hello"));
        await fs.write(fh, 0, text("J"));
        await fs.release(fh);
        expect(await contents(hello.ino)).toEqual(text(`J${HELLO.slice(1)}`));
        expect(await fs.getattr(hello.ino)).toMatchObject({ ino: hello.ino });
      });

      it("replaces a file, leaving a handle on the old one reading the old data", async () => {
        const old = await resolve("empty");
        await newFile(fs.rootIno, "target", text("old data"));
        const target = await resolve("target");
        const fh = await fs.open(target.ino, O_RDONLY);
        await fs.rename(fs.rootIno, "hello.txt", fs.rootIno, "target", 0);
        expect(await fs.read(fh, 0, 100)).toEqual(text("old data"));
        await fs.release(fh);
        expect(await contents((await resolve("target")).ino)).toEqual(text(HELLO));
        expect((await resolve("target")).ino).not.toBe(target.ino);
        expect(await errnoOf(() => fs.rename(fs.rootIno, "missing", fs.rootIno, "empty", 0))).toBe("ENOENT");
        expect((await resolve("empty")).ino).toBe(old.ino);
      });

      it("applies Linux's type rules when replacing", async () => {
        expect(await errnoOf(() => fs.rename(fs.rootIno, "hello.txt", fs.rootIno, "empty-dir", 0))).toBe("EISDIR");
        expect(await errnoOf(() => fs.rename(fs.rootIno, "empty-dir", fs.rootIno, "hello.txt", 0))).toBe("ENOTDIR");
        expect(await errnoOf(() => fs.rename(fs.rootIno, "empty-dir", fs.rootIno, "dir", 0))).toBe("ENOTEMPTY");
        const rootBefore = await fs.getattr(fs.rootIno);
        const many = await resolve("many");
        await fs.rename(fs.rootIno, "many", fs.rootIno, "empty-dir", 0);
        expect(await resolve("empty-dir")).toMatchObject({ ino: many.ino, mode: S_IFDIR | 0o755 });
        expect((await names(many.ino)).length).toBe(MANY.length);
        expect((await fs.getattr(fs.rootIno)).nlink).toBe(rootBefore.nlink - 1);
      });

      it("refuses to replace with RENAME_NOREPLACE", async () => {
        expect(await errnoOf(() => fs.rename(fs.rootIno, "hello.txt", fs.rootIno, "empty", RENAME_NOREPLACE))).toBe("EEXIST");
        expect(await errnoOf(async () => fs.rename(fs.rootIno, "hello.txt", (await resolve("dir")).ino, "hello-link.txt", RENAME_NOREPLACE))).toBe("EEXIST");
        await fs.rename(fs.rootIno, "hello.txt", fs.rootIno, "fresh", RENAME_NOREPLACE);
        expect((await resolve("fresh")).size).toBe(HELLO.length);
      });

      it("exchanges a file and a directory with RENAME_EXCHANGE", async () => {
        const file = await resolve("hello.txt");
        const dir = await resolve("dir");
        const sub = await resolve("dir/sub");
        const leaf = await resolve("dir/sub/deeper/leaf.txt");
        const rootNlink = (await fs.getattr(fs.rootIno)).nlink;
        await fs.rename(fs.rootIno, "hello.txt", fs.rootIno, "dir", RENAME_EXCHANGE);
        expect(await resolve("dir")).toMatchObject({ ino: file.ino, mode: S_IFREG | 0o644 });
        expect(await resolve("hello.txt")).toMatchObject({ ino: dir.ino, mode: S_IFDIR | 0o755 });
        expect(await fs.getattr(leaf.ino)).toMatchObject({ ino: leaf.ino });
        expect(await fs.lookup(sub.ino, "deeper")).toMatchObject({ mode: S_IFDIR | 0o755 });
        expect(await contents(leaf.ino)).toEqual(text("leaf\n"));
        expect((await resolve("hello.txt/sub/deeper/leaf.txt")).ino).toBe(leaf.ino);
        expect((await fs.getattr(fs.rootIno)).nlink).toBe(rootNlink);
        const emptyDir = await resolve("empty-dir");
        await fs.rename(fs.rootIno, "empty-dir", sub.ino, "deeper", RENAME_EXCHANGE);
        expect((await resolve("empty-dir/leaf.txt")).ino).toBe(leaf.ino);
        expect((await resolve("hello.txt/sub/deeper")).ino).toBe(emptyDir.ino);
        expect((await list(emptyDir.ino)).find((e) => e.name === "..")?.ino).toBe(sub.ino);
        expect(await errnoOf(() => fs.rename(fs.rootIno, "dir", fs.rootIno, "missing", RENAME_EXCHANGE))).toBe("ENOENT");
        expect(await errnoOf(() => fs.rename(fs.rootIno, "missing", fs.rootIno, "dir", RENAME_EXCHANGE))).toBe("ENOENT");
      });

      it("refuses to move a directory into itself or below", async () => {
        const dir = await resolve("dir");
        const deeper = await resolve("dir/sub/deeper");
        expect(await errnoOf(() => fs.rename(fs.rootIno, "dir", dir.ino, "self", 0))).toBe("EINVAL");
        expect(await errnoOf(() => fs.rename(fs.rootIno, "dir", deeper.ino, "below", 0))).toBe("EINVAL");
        expect(await errnoOf(() => fs.rename(fs.rootIno, "dir", deeper.ino, "below", RENAME_NOREPLACE))).toBe("EINVAL");
        expect(await errnoOf(() => fs.rename(deeper.ino, "leaf.txt", fs.rootIno, "dir", 0))).toBe("ENOTEMPTY");
        expect(await errnoOf(() => fs.rename(deeper.ino, "leaf.txt", fs.rootIno, "dir", RENAME_EXCHANGE))).toBe("EINVAL");
        expect((await resolve("dir/sub/deeper/leaf.txt")).size).toBe(5);
      });

      it("leaves two names of one inode alone, and refuses unknown flags", async () => {
        await fs.rename(fs.rootIno, "hello.txt", (await resolve("dir")).ino, "hello-link.txt", 0);
        expect(await resolve("hello.txt")).toMatchObject({ nlink: 2 });
        expect(await resolve("dir/hello-link.txt")).toMatchObject({ nlink: 2 });
        await fs.rename(fs.rootIno, "hello.txt", fs.rootIno, "hello.txt", 0);
        expect(await resolve("hello.txt")).toMatchObject({ nlink: 2 });
        for (const flags of [RENAME_NOREPLACE | RENAME_EXCHANGE, 4, -1]) {
          expect(await errnoOf(() => fs.rename(fs.rootIno, "hello.txt", fs.rootIno, "x", flags))).toBe("EINVAL");
        }
      });

      it("keeps the inodes below a moved directory working", async () => {
        const dir = await resolve("dir");
        const sub = await resolve("dir/sub");
        const deeper = await resolve("dir/sub/deeper");
        const leaf = await resolve("dir/sub/deeper/leaf.txt");
        const fh = await fs.open(leaf.ino, O_RDONLY);
        await fs.rename(fs.rootIno, "dir", (await resolve("many")).ino, "moved", 0);
        await fs.rename(dir.ino, "sub", fs.rootIno, "sub-moved", 0);
        expect(await fs.getattr(dir.ino)).toMatchObject({ ino: dir.ino, nlink: 2 });
        expect(await fs.getattr(leaf.ino)).toMatchObject({ ino: leaf.ino, size: 5 });
        expect(await contents(leaf.ino)).toEqual(text("leaf\n"));
        expect((await fs.lookup(deeper.ino, "leaf.txt")).ino).toBe(leaf.ino);
        expect(await names(sub.ino)).toEqual(["deeper"]);
        expect((await list(sub.ino)).find((e) => e.name === "..")?.ino).toBe(fs.rootIno);
        expect(await newFile(deeper.ino, "new")).toMatchObject({ size: 0 });
        expect((await resolve("sub-moved/deeper/new")).ino).toBe((await fs.lookup(deeper.ino, "new")).ino);
        expect(await fs.read(fh, 0, 4)).toEqual(text("leaf"));
        await fs.release(fh);
        expect(await fs.getattr((await resolve("many/moved")).ino)).toMatchObject({ ino: dir.ino });
      });
    });

    describe.skipIf(traits.readOnly)("fallocate, lseek, copy_file_range", () => {
      it("allocates, extending the size unless told to keep it, and punches holes that read as zeros", async () => {
        const ino = (await resolve("big.bin")).ino;
        const fh = await fs.open(ino, O_RDWR);
        await fs.fallocate(fh, 0, 0, 100);
        expect((await fs.getattr(ino)).size).toBe(BIG.length);
        await fs.fallocate(fh, FALLOC_FL_KEEP_SIZE, BIG.length, 1 << 16);
        expect((await fs.getattr(ino)).size).toBe(BIG.length);
        await fs.fallocate(fh, 0, BIG.length, 1000);
        expect((await fs.getattr(ino)).size).toBe(BIG.length + 1000);
        expect(await fs.read(fh, BIG.length - 2, 4)).toEqual(Uint8Array.from([...BIG.subarray(-2), 0, 0]));
        await fs.fallocate(fh, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1000, 20_000);
        const got = Buffer.from(await fs.read(fh, 0, MAX_IO_SIZE));
        expect(got.length).toBe(BIG.length + 1000);
        // Buffers on both sides: the browser's Buffer (the browser project's polyfill) compares only Buffers.
        expect(got.subarray(0, 1000).equals(Buffer.from(BIG.subarray(0, 1000)))).toBe(true);
        expect(got.subarray(1000, 21_000).equals(Buffer.alloc(20_000))).toBe(true);
        expect(got.subarray(21_000, BIG.length).equals(Buffer.from(BIG.subarray(21_000)))).toBe(true);
        if (fs.readInto) {
          // Into memory that held something else (a DAX window): the hole overwrites it with zeros.
          const into = new Uint8Array(new SharedArrayBuffer(22_000)).fill(0xee);
          expect(await fs.readInto(fh, 0, into)).toBe(22_000);
          expect(Buffer.from(into.subarray(0, 21_000)).equals(got.subarray(0, 21_000))).toBe(true);
          expect(Buffer.from(into.subarray(21_000)).equals(Buffer.from(BIG.subarray(21_000, 22_000)))).toBe(true);
        }
        await fs.fallocate(fh, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, BIG.length, 1 << 20);
        expect((await fs.getattr(ino)).size).toBe(BIG.length + 1000);
        await fs.release(fh);
      });

      it("refuses other fallocate modes and bad ranges", async () => {
        const fh = await fs.open((await resolve("hello.txt")).ino, O_RDWR);
        for (const mode of [FALLOC_FL_PUNCH_HOLE, 0x10, 0x08, 0x20]) expect(await errnoOf(() => fs.fallocate(fh, mode, 0, 10))).toBe("EOPNOTSUPP");
        expect(await errnoOf(() => fs.fallocate(fh, 0, 0, 0))).toBe("EINVAL");
        expect(await errnoOf(() => fs.fallocate(fh, 0, -1, 10))).toBe("EINVAL");
        await fs.release(fh);
      });

      it("finds data and holes with SEEK_DATA and SEEK_HOLE", async () => {
        const { attr, fh } = await fs.create(fs.rootIno, "holes", 0o644, O_CREAT | O_RDWR, CRED);
        const at = traits.dense ? 2 ** 20 + 5 : 2 ** 32 + 5;
        await fs.write(fh, at, text("x"));
        const size = at + 1;
        expect((await fs.getattr(attr.ino)).size).toBe(size);
        const g = traits.holeGranularity;
        if (g === undefined) {
          expect(await fs.lseek(fh, 0, SEEK_DATA)).toBe(0);
          expect(await fs.lseek(fh, 4096, SEEK_DATA)).toBe(4096);
          expect(await fs.lseek(fh, 0, SEEK_HOLE)).toBe(size);
        } else {
          const dataStart = Math.floor(at / g) * g;
          expect(await fs.lseek(fh, 0, SEEK_DATA)).toBe(dataStart);
          expect(await fs.lseek(fh, at, SEEK_DATA)).toBe(at);
          expect(await fs.lseek(fh, 0, SEEK_HOLE)).toBe(0);
          expect(await fs.lseek(fh, dataStart, SEEK_HOLE)).toBe(size);
          await fs.write(fh, 0, text("head"));
          expect(await fs.lseek(fh, 0, SEEK_DATA)).toBe(0);
          expect(await fs.lseek(fh, 0, SEEK_HOLE)).toBe(g);
          expect(await fs.lseek(fh, 1, SEEK_HOLE)).toBe(g);
          expect(await fs.lseek(fh, g + 1, SEEK_DATA)).toBe(dataStart);
        }
        expect(await fs.lseek(fh, size - 1, SEEK_HOLE)).toBe(size);
        for (const whence of [SEEK_DATA, SEEK_HOLE]) {
          expect(await errnoOf(() => fs.lseek(fh, size, whence))).toBe("ENXIO");
          expect(await errnoOf(() => fs.lseek(fh, -1, whence))).toBe("ENXIO");
        }
        expect(await errnoOf(() => fs.lseek(fh, 0, 0))).toBe("EINVAL");
        await fs.release(fh);
        const empty = await fs.open((await resolve("empty")).ino, O_RDONLY);
        expect(await errnoOf(() => fs.lseek(empty, 0, SEEK_DATA))).toBe("ENXIO");
        await fs.release(empty);
      });

      it("copies ranges between handles, short at the source's end", async () => {
        const src = await fs.open((await resolve("big.bin")).ino, O_RDONLY);
        const { attr, fh: dst } = await fs.create(fs.rootIno, "copy", 0o644, O_CREAT | O_RDWR, CRED);
        expect(await fs.copyFileRange(src, 0, dst, 0, BIG.length)).toBe(BIG.length);
        expect(await fs.copyFileRange(src, BIG.length - 10, dst, BIG.length, 1000)).toBe(10);
        expect(await fs.copyFileRange(src, BIG.length + 5, dst, 0, 1000)).toBe(0);
        expect(await fs.copyFileRange(src, 0, dst, 0, 0)).toBe(0);
        const got = await contents(attr.ino);
        expect(got.length).toBe(BIG.length + 10);
        expect(Buffer.from(got.subarray(0, BIG.length)).equals(Buffer.from(BIG))).toBe(true);
        expect(got.subarray(BIG.length)).toEqual(BIG.subarray(-10));
        // A copy into a hole past the end extends the file with the hole before it.
        expect(await fs.copyFileRange(src, 0, dst, 3 << 20, 100)).toBe(100);
        expect((await fs.getattr(attr.ino)).size).toBe((3 << 20) + 100);
        expect(await fs.read(dst, (3 << 20) - 2, 4)).toEqual(Uint8Array.from([0, 0, ...BIG.subarray(0, 2)]));
        await fs.release(src);
        await fs.release(dst);
      });

      it("copies within one file only between ranges that do not overlap", async () => {
        const ino = (await resolve("big.bin")).ino;
        const fh = await fs.open(ino, O_RDWR);
        expect(await fs.copyFileRange(fh, 0, fh, 1000, 1000)).toBe(1000);
        expect(await fs.read(fh, 1000, 1000)).toEqual(BIG.subarray(0, 1000));
        expect(await errnoOf(() => fs.copyFileRange(fh, 0, fh, 500, 1000))).toBe("EINVAL");
        const other = await fs.open(ino, O_RDONLY);
        expect(await errnoOf(() => fs.copyFileRange(other, 0, fh, 10, 100))).toBe("EINVAL");
        await fs.release(other);
        await fs.release(fh);
      });

      it("copies only from readable handles to writable ones without O_APPEND", async () => {
        const ino = (await resolve("hello.txt")).ino;
        const ro = await fs.open(ino, O_RDONLY);
        const wo = await fs.open((await resolve("empty")).ino, O_WRONLY);
        const ap = await fs.open((await resolve("empty")).ino, O_WRONLY | O_APPEND);
        expect(await errnoOf(() => fs.copyFileRange(ro, 0, ap, 0, 5))).toBe("EBADF");
        expect(await errnoOf(() => fs.copyFileRange(wo, 0, wo, 100, 5))).toBe("EBADF");
        expect(await errnoOf(() => fs.copyFileRange(wo, 0, ro, 0, 5))).toBe("EBADF");
        expect(await errnoOf(() => fs.copyFileRange(ro, -1, wo, 0, 5))).toBe("EINVAL");
        for (const fh of [ro, wo, ap]) await fs.release(fh);
      });
    });

    describe.skipIf(traits.readOnly)("extended attributes", () => {
      it("sets, gets, lists and removes attributes of any namespace", async () => {
        const ino = (await resolve("hello.txt")).ino;
        const acl = Uint8Array.from([2, 0, 0, 0, 1, 0, 6, 0, 255, 255, 255, 255, 4, 0, 4, 0, 255, 255, 255, 255]);
        const values: [string, Uint8Array][] = [
          ["user.comment", text("hi")],
          ["trusted.t", new Uint8Array(0)],
          ["security.selinux", text("system_u:object_r:etc_t:s0\0")],
          ["system.posix_acl_access", acl],
          ["user.ünï", Uint8Array.from({ length: 256 }, (_, i) => i)],
        ];
        expect(await fs.listxattr(ino)).toEqual([]);
        for (const [name, value] of values) await fs.setxattr(ino, name, value, 0);
        for (const [name, value] of values) expect(await fs.getxattr(ino, name)).toEqual(value);
        expect((await fs.listxattr(ino)).sort()).toEqual(values.map(([n]) => n).sort());
        expect(await fs.getxattr((await resolve("dir/hello-link.txt")).ino, "user.comment")).toEqual(text("hi"));
        await fs.removexattr(ino, "user.comment");
        expect(await errnoOf(() => fs.getxattr(ino, "user.comment"))).toBe("ENODATA");
        expect(await errnoOf(() => fs.removexattr(ino, "user.comment"))).toBe("ENODATA");
        expect((await fs.listxattr(ino)).length).toBe(values.length - 1);
      });

      it("follows XATTR_CREATE and XATTR_REPLACE", async () => {
        const ino = (await resolve("hello.txt")).ino;
        expect(await errnoOf(() => fs.setxattr(ino, "user.a", text("1"), XATTR_REPLACE))).toBe("ENODATA");
        await fs.setxattr(ino, "user.a", text("1"), XATTR_CREATE);
        expect(await errnoOf(() => fs.setxattr(ino, "user.a", text("2"), XATTR_CREATE))).toBe("EEXIST");
        await fs.setxattr(ino, "user.a", text("3"), XATTR_REPLACE);
        expect(await fs.getxattr(ino, "user.a")).toEqual(text("3"));
        await fs.setxattr(ino, "user.a", text("4"), 0);
        expect(await fs.getxattr(ino, "user.a")).toEqual(text("4"));
        expect(await errnoOf(() => fs.setxattr(ino, "user.a", text("5"), 4))).toBe("EINVAL");
      });

      it("keeps values up to 64 KiB and names up to 255 bytes, in the known namespaces", async () => {
        const ino = (await resolve("hello.txt")).ino;
        const big = pattern(65536, 7);
        await fs.setxattr(ino, "user.big", big, 0);
        expect(await fs.getxattr(ino, "user.big")).toEqual(big);
        expect(await errnoOf(() => fs.setxattr(ino, "user.bigger", new Uint8Array(65537), 0))).toBe(errnoName(E2BIG));
        const longName = `user.${"n".repeat(250)}`;
        await fs.setxattr(ino, longName, text("v"), 0);
        expect(await fs.listxattr(ino)).toContain(longName);
        expect(await errnoOf(() => fs.setxattr(ino, `${longName}n`, text("v"), 0))).toBe("ERANGE");
        expect(await errnoOf(() => fs.getxattr(ino, ""))).toBe("ERANGE");
        expect(await errnoOf(() => fs.setxattr(ino, "nonamespace", text("v"), 0))).toBe("EOPNOTSUPP");
        expect(await errnoOf(() => fs.setxattr(ino, "user.", text("v"), 0))).toBe("EINVAL");
        expect(await errnoOf(() => fs.getxattr(ino, "user.missing"))).toBe("ENODATA");
      });

      it("keeps attributes on directories, symlinks and special files, across renames, and moves ctime", async () => {
        const targets = [
          (await resolve("dir")).ino,
          (await resolve("link-to-hello")).ino,
          (await fs.mknod(fs.rootIno, "fifo", S_IFIFO | 0o644, 0, CRED)).ino,
          fs.rootIno,
        ];
        for (const ino of targets) {
          const before = await fs.getattr(ino);
          await sleep(TICK_MS);
          await fs.setxattr(ino, "trusted.x", text(String(ino)), 0);
          const after = await fs.getattr(ino);
          if (before.mode !== (S_IFLNK | 0o777)) expect(later(after.ctime, before.ctime)).toBe(true);
        }
        await fs.rename(fs.rootIno, "dir", fs.rootIno, "dir2", 0);
        await fs.rename(fs.rootIno, "link-to-hello", (await resolve("dir2")).ino, "link", 0);
        for (const ino of targets) expect(await fs.getxattr(ino, "trusted.x")).toEqual(text(String(ino)));
        expect(await fs.getxattr((await resolve("dir2/link")).ino, "trusted.x")).toEqual(text(String(targets[1])));
      });
    });

    describe.skipIf(traits.readOnly)("sync", () => {
      it("syncs files, directories and everything", async () => {
        const { fh } = await fs.create(fs.rootIno, "synced", 0o644, O_CREAT | O_RDWR, CRED);
        await fs.write(fh, 0, text("durable"));
        await fs.fsync(fh, false);
        await fs.fsync(fh, true);
        await fs.flush?.(fh); // optional: a backend with nothing to do on close has none
        await fs.release(fh);
        const dh = await fs.opendir(fs.rootIno);
        await fs.fsyncdir(dh, false);
        await fs.releasedir(dh);
        await fs.syncfs();
        expect(await errnoOf(() => fs.fsync(dh, false))).toBe("EBADF");
        if (fs.flush) expect(await errnoOf(() => fs.flush!(fh))).toBe("EBADF");
        expect(await errnoOf(() => fs.fsyncdir(fh, false))).toBe("EBADF");
      });
    });

    describe.skipIf(traits.readOnly)("inodes of the write side", () => {
      it("answers unknown inode numbers with ESTALE", async () => {
        const hello = (await resolve("hello.txt")).ino;
        for (const ino of [0, 1.5, 999_999_999]) {
          for (const call of [
            () => fs.setattr(ino, { mode: 0o644 }),
            () => fs.mknod(ino, "x", S_IFIFO | 0o644, 0, CRED),
            () => fs.mkdir(ino, "x", 0o755, CRED),
            () => fs.symlink(ino, "x", "t", CRED),
            () => fs.link(ino, fs.rootIno, "x"),
            () => fs.link(hello, ino, "x"),
            () => fs.unlink(ino, "x"),
            () => fs.rmdir(ino, "x"),
            () => fs.rename(ino, "x", fs.rootIno, "y", 0),
            () => fs.rename(fs.rootIno, "hello.txt", ino, "y", 0),
            () => fs.create(ino, "x", 0o644, O_CREAT | O_RDWR, CRED),
            () => fs.tmpfile(ino, 0o644, O_RDWR, CRED),
            () => fs.getxattr(ino, "user.x"),
            () => fs.setxattr(ino, "user.x", text("v"), 0),
            () => fs.listxattr(ino),
            () => fs.removexattr(ino, "user.x")]) {
            expect(await errnoOf(() => call())).toBe("ESTALE");
          }
        }
      });
    });
  });

  describe(`FileSystem conformance: ${backend}, read-only`, () => {
    let fx: Fixture;
    let fs: FileSystem;

    beforeEach(async () => {
      fx = await build(FIXTURE, { readOnly: true });
      fs = fx.fs;
    });
    afterEach(async () => {
      await fx.cleanup();
    });

    it("fails every change with EROFS and serves the rest", async () => {
      expect(fs.capabilities.readOnly).toBe(true);
      const root = fs.rootIno;
      const hello = await fs.lookup(root, "hello.txt");
      const dir = await fs.lookup(root, "dir");
      const cred: Cred = { uid: 1, gid: 1 };
      for (const flags of [O_WRONLY, O_RDWR, O_TRUNC, O_WRONLY | O_APPEND]) expect(await errnoOf(() => fs.open(hello.ino, flags))).toBe("EROFS");
      expect(await errnoOf(() => fs.access(hello.ino, W_OK))).toBe("EROFS");
      expect(await errnoOf(() => fs.access(root, R_OK | W_OK))).toBe("EROFS");
      await fs.access(hello.ino, R_OK | X_OK);
      const fh = await fs.open(hello.ino, O_RDONLY);
      const dh = await fs.opendir(root);
      for (const call of [
        () => fs.setattr(hello.ino, { mode: 0o600 }),
        () => fs.setattr(hello.ino, { size: 0 }, fh),
        () => fs.mknod(root, "x", S_IFIFO | 0o644, 0, cred),
        () => fs.mkdir(root, "x", 0o755, cred),
        () => fs.symlink(root, "x", "t", cred),
        () => fs.link(hello.ino, root, "x"),
        () => fs.unlink(root, "hello.txt"),
        () => fs.rmdir(root, "empty-dir"),
        () => fs.rename(root, "hello.txt", root, "x", 0),
        () => fs.rename(root, "hello.txt", dir.ino, "x", RENAME_EXCHANGE),
        () => fs.create(root, "x", 0o644, O_CREAT | O_RDWR, cred),
        () => fs.create(root, "hello.txt", 0o644, O_CREAT | O_RDONLY, cred),
        () => fs.tmpfile(root, 0o644, O_RDWR, cred),
        () => fs.write(fh, 0, text("x")),
        () => fs.fallocate(fh, 0, 0, 10),
        () => fs.copyFileRange(fh, 0, fh, 100, 5),
        () => fs.setxattr(hello.ino, "user.x", text("v"), 0),
        () => fs.removexattr(hello.ino, "user.x")]) {
        expect(await errnoOf(() => call())).toBe("EROFS");
      }
      await fs.fsync(fh, false);
      await fs.flush?.(fh);
      await fs.fsyncdir(dh, true);
      await fs.syncfs();
      expect(await fs.lseek(fh, 0, SEEK_DATA)).toBe(0);
      expect(await errnoOf(() => fs.getxattr(hello.ino, "user.x"))).toBe("ENODATA");
      expect(await fs.listxattr(hello.ino)).toEqual([]);
      expect(await fs.read(fh, 0, 5)).toEqual(text("Hello"));
      await fs.release(fh);
      await fs.releasedir(dh);
      expect((await fs.lookup(root, "hello.txt")).size).toBe(HELLO.length);
    });
  });
}
