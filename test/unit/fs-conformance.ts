// One conformance suite for every `FileSystem` backend. Each backend's test file builds FIXTURE with its
// own native API and hands the result to `fsConformance`.

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EBADF, EILSEQ, EINVAL, EISDIR, ELOOP, ENAMETOOLONG, EROFS, ESTALE, errnoName } from "../../src/fs/errno.ts";
import {
  F_OK,
  FsError,
  MAX_IO_SIZE,
  O_TRUNC,
  R_OK,
  S_IFDIR,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  W_OK,
  X_OK,
  type DirEntry,
  type FileAttr,
  type FileSystem,
  type Ino,
} from "../../src/fs/filesystem.ts";

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

export type FixtureFactory = (items: readonly FixtureItem[]) => Promise<Fixture>;

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

/** The errno a rejected call carried ("resolved" if it did not reject); non-FsError failures propagate. */
async function errnoOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (e) {
    if (e instanceof FsError) return errnoName(e.errno);
    throw e;
  }
  return "resolved";
}

export function fsConformance(backend: string, build: FixtureFactory): void {
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
        expect(await errnoOf(fs.lookup(fs.rootIno, "missing"))).toBe("ENOENT");
        expect(await errnoOf(fs.lookup((await resolve("dir")).ino, "hello.txt"))).toBe("ENOENT");
        expect(await errnoOf(fs.lookup((await resolve("hello.txt")).ino, "x"))).toBe("ENOTDIR");
        expect(await errnoOf(fs.lookup((await resolve("dir-link")).ino, "deeper"))).toBe("ENOTDIR");
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
          expect([JSON.stringify(name), await errnoOf(fs.lookup(fs.rootIno, name))]).toEqual([JSON.stringify(name), errnoName(errno)]);
        }
      });

      it("accepts a name of exactly 255 bytes", async () => {
        expect(await errnoOf(fs.lookup(fs.rootIno, "x".repeat(255)))).toBe("ENOENT");
        expect(await errnoOf(fs.lookup(fs.rootIno, "é".repeat(127) + "x"))).toBe("ENOENT");
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

      it("keeps its cookies across changes to the directory, and rereads it at cookie 0", async () => {
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
        expect(await errnoOf(fs.readdir(dh, -1))).toBe("EINVAL");
        expect(await errnoOf(fs.readdir(dh, 1.5))).toBe("EINVAL");
        expect(await errnoOf(fs.readdir(dh, 0, 0))).toBe("EINVAL");
        await fs.releasedir(dh);
      });

      it("opens only directories", async () => {
        expect(await errnoOf(fs.opendir((await resolve("hello.txt")).ino))).toBe("ENOTDIR");
        expect(await errnoOf(fs.opendir((await resolve("dir-link")).ino))).toBe("ENOTDIR");
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

      it("rejects bad ranges", async () => {
        const fh = await fs.open((await resolve("hello.txt")).ino, 0);
        for (const [off, len] of [[-1, 1], [0, -1], [0.5, 1], [0, 1.5], [Number.NaN, 1], [2 ** 53, 1], [0, MAX_IO_SIZE + 1]]) {
          expect(await errnoOf(fs.read(fh, off!, len!))).toBe("EINVAL");
        }
        await fs.release(fh);
      });

      it("opens regular files only, and only for reading", async () => {
        const file = (await resolve("hello.txt")).ino;
        expect(await errnoOf(fs.open((await resolve("dir")).ino, 0))).toBe(errnoName(EISDIR));
        expect(await errnoOf(fs.open((await resolve("link-to-hello")).ino, 0))).toBe(errnoName(ELOOP));
        for (const flags of [1, 2, O_TRUNC]) expect(await errnoOf(fs.open(file, flags))).toBe(errnoName(EROFS));
        expect(fs.capabilities.readOnly).toBe(true);
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
        expect(await errnoOf(fs.readlink((await resolve("hello.txt")).ino))).toBe("EINVAL");
        expect(await errnoOf(fs.readlink(fs.rootIno))).toBe("EINVAL");
      });
    });

    describe("handles", () => {
      it("rejects released, unknown and wrong-kind handles with EBADF", async () => {
        const fh = await fs.open((await resolve("hello.txt")).ino, 0);
        const dh = await fs.opendir(fs.rootIno);
        expect(await errnoOf(fs.readdir(fh, 0))).toBe("EBADF");
        expect(await errnoOf(fs.releasedir(fh))).toBe("EBADF");
        expect(await errnoOf(fs.read(dh, 0, 1))).toBe("EBADF");
        expect(await errnoOf(fs.release(dh))).toBe("EBADF");
        await fs.release(fh);
        await fs.releasedir(dh);
        expect(await errnoOf(fs.read(fh, 0, 1))).toBe("EBADF");
        expect(await errnoOf(fs.release(fh))).toBe("EBADF");
        expect(await errnoOf(fs.readdir(dh, 0))).toBe("EBADF");
        expect(await errnoOf(fs.releasedir(dh))).toBe("EBADF");
        for (const bogus of [0, -1, 1.5, Number.NaN, 2 ** 40]) {
          expect(await errnoOf(fs.read(bogus, 0, 1))).toBe(errnoName(EBADF));
          expect(await errnoOf(fs.readdir(bogus, 0))).toBe(errnoName(EBADF));
        }
      });
    });

    describe("inodes", () => {
      it("answers unknown inode numbers with ESTALE", async () => {
        for (const ino of [0, -1, 1.5, Number.NaN, 999_999_999]) {
          for (const call of [
            fs.getattr(ino),
            fs.lookup(ino, "x"),
            fs.opendir(ino),
            fs.open(ino, 0),
            fs.readlink(ino),
            fs.statfs(ino),
            fs.access(ino, F_OK),
          ]) {
            expect(await errnoOf(call)).toBe(errnoName(ESTALE));
          }
        }
      });

      it("keeps an inode while lookups reference it and drops it when all are forgotten", async () => {
        const first = await fs.lookup(fs.rootIno, "hello.txt");
        await fs.lookup(fs.rootIno, "hello.txt");
        await fs.forget(first.ino, 1);
        expect((await fs.getattr(first.ino)).ino).toBe(first.ino);
        await fs.forget(first.ino, 1);
        expect(await errnoOf(fs.getattr(first.ino))).toBe("ESTALE");
        expect((await fs.lookup(fs.rootIno, "hello.txt")).ino).toBe(first.ino);
        await fs.forget(first.ino, 100);
        expect(await errnoOf(fs.getattr(first.ino))).toBe("ESTALE");
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

      it("checks only existence in access, and EROFS for writing", async () => {
        const ino = (await resolve("hello.txt")).ino;
        for (const mask of [F_OK, R_OK, X_OK, R_OK | X_OK]) await fs.access(ino, mask);
        expect(await errnoOf(fs.access(ino, W_OK))).toBe("EROFS");
        expect(await errnoOf(fs.access(fs.rootIno, R_OK | W_OK))).toBe("EROFS");
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
  });
}
