// Snapshots of the memfs backend: saveState on one MemFs, restoreState on a fresh one, and everything the
// guest could observe (and the Volume shows) is the same; a bad state is a StateError and builds nothing.

import { Volume } from "memfs";
import { describe, expect, it } from "vitest";
import { O_CREAT, O_EXCL, O_RDONLY, O_RDWR, S_IFCHR, S_IFIFO, S_IFREG, SEEK_DATA } from "../../src/vfs/linux.ts";
import type { DirEntry, FileAttr, Handle, Ino } from "../../src/vfs/filesystem.ts";
import { decodeState, encodeState, StateError, type Saved } from "../../src/vfs/state.ts";
import { MemFs } from "../../src/fs/memfs/memfs.ts";
import { buildVolume } from "../support/memfs-fixture.ts";
import { errnoOf, fsConformance, pattern } from "./fs-conformance.ts";
import { SparseData } from "../../src/fs/memfs/sparse.ts";

// The whole conformance suite again, on a backend restored from a snapshot of the fixture.
fsConformance(
  "memfs, restored from a snapshot",
  async (items, options) => {
    const state = decodeState(encodeState(await new MemFs(buildVolume(items), options).saveState()));
    const vol = new Volume();
    const fs = new MemFs(vol, options);
    await fs.restoreState(state);
    return {
      fs,
      addFile: async (path) => vol.writeFileSync(`/${path}`, "new"),
      remove: async (path) => vol.unlinkSync(`/${path}`),
      cleanup: async () => {},
    };
  },
  { holeGranularity: SparseData.CHUNK, timePrecisionNs: 1 },
);

const CRED = { uid: 1000, gid: 100 };
const GIB = 2 ** 30;
const text = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A tree with one of everything a snapshot keeps, and the numbers the test follows. */
async function buildTree() {
  const vol = new Volume();
  const fs = new MemFs(vol);
  const root = fs.rootIno;
  const d = await fs.mkdir(root, "d", 0o2755, CRED);
  const a = await fs.create(d.ino, "a.txt", 0o644, O_CREAT | O_RDWR, CRED);
  await fs.write(a.fh, 0, text("hello, snapshot\n"));
  await fs.release(a.fh);
  await fs.link(a.attr.ino, root, "a-link");
  await fs.setxattr(a.attr.ino, "user.color", text("blue"), 0);
  await fs.setxattr(a.attr.ino, "trusted.empty", new Uint8Array(0), 0);
  await fs.setattr(a.attr.ino, { atime: { sec: 1_700_000_000, nsec: 123_456_789 }, mtime: { sec: -5, nsec: 999_999_999 } });
  const sparse = await fs.create(root, "sparse", 0o600, O_CREAT | O_RDWR, CRED);
  await fs.write(sparse.fh, 0, text("head"));
  await fs.write(sparse.fh, GIB, text("tail"));
  await fs.symlink(root, "sym", "d/a.txt", CRED);
  const fifo = await fs.mknod(root, "fifo", S_IFIFO | 0o644, 0, CRED);
  const chr = await fs.mknod(d.ino, "tty", S_IFCHR | 0o620, (4 << 8) | 1, CRED);
  // Unlinked but open: its handle still reads it.
  const ghost = await fs.create(root, "ghost", 0o644, O_CREAT | O_RDWR, CRED);
  await fs.write(ghost.fh, 0, pattern(10_000, 7));
  await fs.unlink(root, "ghost");
  // Unlinked and closed, but still looked up: getattr answers, with no link.
  const lost = await fs.create(root, "lost", 0o644, O_CREAT | O_RDWR, CRED);
  await fs.release(lost.fh);
  await fs.unlink(root, "lost");
  // O_TMPFILE files: one that may still be linked, one that may not.
  const tmp = await fs.tmpfile(d.ino, 0o600, O_RDWR, CRED);
  await fs.write(tmp.fh, 0, text("temporary"));
  const tmpExcl = await fs.tmpfile(d.ino, 0o600, O_RDWR | O_EXCL, CRED);
  // A directory listed part way: the next cookie continues in the listing taken before the snapshot.
  const many = await fs.mkdir(root, "many", 0o755, CRED);
  for (let i = 0; i < 12; i++) await fs.mknod(many.ino, `f${i}`, S_IFREG | 0o644, 0, CRED);
  const dh = await fs.opendir(many.ino);
  const firstBatch = await fs.readdir(dh, 0, 5);
  await fs.mknod(many.ino, "added-after-listing", S_IFREG | 0o644, 0, CRED);
  await fs.unlink(many.ino, "f9");
  // A removed directory still open.
  const gone = await fs.mkdir(root, "gone-dir", 0o755, CRED);
  const goneDh = await fs.opendir(gone.ino);
  await fs.rmdir(root, "gone-dir");
  // Extra lookups: a.txt now has create + link + 2 lookups = 4 references.
  await fs.lookup(d.ino, "a.txt");
  await fs.lookup(root, "a-link");
  const readOnly = await fs.open(a.attr.ino, O_RDONLY);
  return { vol, fs, d, a: a.attr, sparse, fifo, chr, ghost, lost: lost.attr, tmp, tmpExcl, many, dh, firstBatch, gone, goneDh, readOnly };
}

type Tree = Awaited<ReturnType<typeof buildTree>>;

async function restored(state: Saved): Promise<{ vol: Volume; fs: MemFs }> {
  const vol = new Volume();
  const fs = new MemFs(vol);
  await fs.restoreState(state);
  return { vol, fs };
}

/** Every inode the test holds, as getattr answers. */
async function attrs(fs: MemFs, t: Tree): Promise<FileAttr[]> {
  const inos = [fs.rootIno, t.d.ino, t.a.ino, t.sparse.attr.ino, t.fifo.ino, t.chr.ino, t.ghost.attr.ino, t.lost.ino, t.tmp.attr.ino, t.many.ino, t.gone.ino];
  return Promise.all(inos.map((ino) => fs.getattr(ino)));
}

async function listAll(fs: MemFs, ino: Ino): Promise<DirEntry[]> {
  const dh = await fs.opendir(ino);
  const entries = await fs.readdir(dh, 0);
  await fs.releasedir(dh);
  return entries;
}

describe("memfs snapshots", () => {
  it("bring back the tree, its data and the session: inodes, handles, listings, side table", async () => {
    const t = await buildTree();
    const before = await attrs(t.fs, t);
    const rootListing = await listAll(t.fs, t.fs.rootIno);
    const state = await t.fs.saveState();
    const { vol, fs } = await restored(decodeState(encodeState(state)));

    expect(await attrs(fs, t)).toEqual(before);
    expect(await listAll(fs, fs.rootIno)).toEqual(rootListing);
    expect(await listAll(fs, t.d.ino)).toEqual(await listAll(t.fs, t.d.ino));
    // Times to the nanosecond, owners, modes, device numbers.
    const a = await fs.getattr(t.a.ino);
    expect(a).toMatchObject({ nlink: 2, uid: 1000, mode: S_IFREG | 0o644, atime: { sec: 1_700_000_000, nsec: 123_456_789 }, mtime: { sec: -5, nsec: 999_999_999 } });
    expect((await fs.getattr(t.chr.ino)).rdev).toBe((4 << 8) | 1);
    expect((await fs.getattr(t.fifo.ino)).mode).toBe(S_IFIFO | 0o644);
    expect((await fs.getattr(t.d.ino)).mode & 0o2000).toBe(0o2000);
    expect(await fs.readlink((await fs.lookup(fs.rootIno, "sym")).ino)).toBe("d/a.txt");
    expect(new TextDecoder().decode(await fs.getxattr(t.a.ino, "user.color"))).toBe("blue");
    expect(await fs.getxattr(t.a.ino, "trusted.empty")).toEqual(new Uint8Array(0));
    expect((await fs.listxattr(t.a.ino)).sort()).toEqual(["trusted.empty", "user.color"]);
    // One node behind both names.
    expect((await fs.lookup(fs.rootIno, "a-link")).ino).toBe(t.a.ino);
    // The handles, under their numbers and open modes.
    expect(new TextDecoder().decode(await fs.read(t.readOnly, 0, 100))).toBe("hello, snapshot\n");
    expect(await errnoOf(() => fs.write(t.readOnly, 0, text("x")))).toBe("EBADF");
    expect(await fs.read(t.ghost.fh, 0, 20_000)).toEqual(pattern(10_000, 7));
    expect((await fs.getattr(t.ghost.attr.ino)).nlink).toBe(0);
    expect((await fs.getattr(t.lost.ino)).nlink).toBe(0);
    // The sparse file: a hole up to 1 GiB, two chunks of data, as many blocks as before.
    const sparse = await fs.getattr(t.sparse.attr.ino);
    expect(sparse).toMatchObject({ size: GIB + 4, blocks: 2 * 8 });
    expect(new TextDecoder().decode(await fs.read(t.sparse.fh, GIB - 2, 6))).toBe("\0\0tail");
    expect(await fs.lseek(t.sparse.fh, 4096, SEEK_DATA)).toBe(GIB);
    // The listing in progress continues without the names added or removed since it was taken.
    const rest = await fs.readdir(t.dh, t.firstBatch.at(-1)!.off);
    expect(rest).toEqual(await t.fs.readdir(t.dh, t.firstBatch.at(-1)!.off));
    expect(rest.map((e) => e.name)).toEqual(["f3", "f4", "f5", "f6", "f7", "f8", "f9", "f10", "f11"]);
    const fresh = (await fs.readdir(t.dh, 0)).map((e) => e.name);
    expect(fresh).toContain("added-after-listing");
    expect(fresh).not.toContain("f9");
    // The removed directory lists itself as its parent.
    expect((await fs.readdir(t.goneDh, 0)).map((e) => [e.name, e.ino])).toEqual([
      [".", t.gone.ino],
      ["..", t.gone.ino],
    ]);
    expect(await errnoOf(() => fs.mkdir(t.gone.ino, "x", 0o755, CRED))).toBe("ENOENT");
    // O_TMPFILE: the linkable one can be named, the O_EXCL one cannot.
    await fs.link(t.tmp.attr.ino, t.d.ino, "named");
    expect(new TextDecoder().decode(await fs.read(t.tmp.fh, 0, 100))).toBe("temporary");
    expect(vol.existsSync("/d/named")).toBe(true);
    expect(await errnoOf(() => fs.link(t.tmpExcl.attr.ino, t.d.ino, "named2"))).toBe("ENOENT");
    // The Volume is a faithful view of the restored tree.
    expect((vol.readdirSync("/") as string[]).sort()).toEqual(["a-link", "d", "fifo", "many", "sparse", "sym"]);
    expect(vol.readFileSync("/a-link", "utf8")).toBe("hello, snapshot\n");
    expect(vol.readlinkSync("/sym")).toBe("d/a.txt");
    expect(vol.statSync("/d/a.txt").nlink).toBe(2);
  });

  it("keep inode and handle numbers, and never issue them again", async () => {
    const t = await buildTree();
    const { fs } = await restored(await t.fs.saveState());
    const next = await t.fs.create(t.fs.rootIno, "next", 0o644, O_CREAT | O_RDWR, CRED);
    const created = await fs.create(fs.rootIno, "next", 0o644, O_CREAT | O_RDWR, CRED);
    expect(created.attr.ino).toBe(next.attr.ino);
    expect(created.fh).toBe(next.fh);
    const held: Handle[] = [t.sparse.fh, t.ghost.fh, t.tmp.fh, t.tmpExcl.fh, t.dh, t.goneDh, t.readOnly];
    expect(created.fh).toBeGreaterThan(Math.max(...held));
    expect(created.attr.ino).toBeGreaterThan(t.gone.ino);
    // A released handle stays unknown; the old ones still work.
    await fs.release(t.readOnly);
    expect(await errnoOf(() => fs.read(t.readOnly, 0, 1))).toBe("EBADF");
    expect((await fs.read(t.tmp.fh, 0, 4)).length).toBe(4);
  });

  it("keep the lookup counts: forget drops an inode when they reach zero, not before", async () => {
    const t = await buildTree();
    const { fs } = await restored(await t.fs.saveState());
    await fs.forget(t.a.ino, 3);
    expect((await fs.getattr(t.a.ino)).ino).toBe(t.a.ino);
    await fs.forget(t.a.ino, 1);
    expect(await errnoOf(() => fs.getattr(t.a.ino))).toBe("ESTALE");
    // The handle on it still reads; a lookup numbers it as before.
    expect((await fs.read(t.readOnly, 0, 5)).length).toBe(5);
    expect((await fs.lookup(t.d.ino, "a.txt")).ino).toBe(t.a.ino);
    // The orphan looked up once goes with its last reference.
    await fs.forget(t.lost.ino, 1);
    expect(await errnoOf(() => fs.getattr(t.lost.ino))).toBe("ESTALE");
  });

  it("free an unlinked file with its last handle after a restore, as before it", async () => {
    const t = await buildTree();
    const { fs } = await restored(await t.fs.saveState());
    const before = await fs.statfs(fs.rootIno);
    await fs.release(t.ghost.fh);
    const after = await fs.statfs(fs.rootIno);
    expect(after.ffree).toBe(before.ffree + 1);
    expect(after.bfree).toBe(before.bfree + 3); // 10,000 bytes in three chunks
    expect(await fs.statfs(fs.rootIno)).toEqual(after);
    // Restoring after this release gives the same counts.
    const again = await restored(await fs.saveState());
    expect(await again.fs.statfs(again.fs.rootIno)).toEqual(after);
  });

  it("give identical states through ten save and restore round trips", { timeout: 120_000 }, async () => {
    const t = await buildTree();
    const first = encodeState(await t.fs.saveState());
    let bytes = first;
    for (let i = 0; i < 10; i++) {
      const { fs } = await restored(decodeState(bytes));
      bytes = encodeState(await fs.saveState());
      expect(bytes).toEqual(first);
    }
  });

  it("store a sparse file's chunks only, and a Volume's own files as they are", async () => {
    const t = await buildTree();
    expect(encodeState(await t.fs.saveState()).length).toBeLessThan(100_000);
    // Files written through the Volume, never touched by the backend: memfs's buffer, saved as chunks.
    const vol = new Volume();
    vol.mkdirSync("/x");
    vol.writeFileSync("/x/odd", pattern(3 * 4096 + 17, 3));
    vol.writeFileSync("/x/empty", "");
    const { vol: copy, fs } = await restored(decodeState(encodeState(await new MemFs(vol).saveState())));
    expect(new Uint8Array(copy.readFileSync("/x/odd") as Buffer)).toEqual(pattern(3 * 4096 + 17, 3));
    expect(copy.readFileSync("/x/empty", "utf8")).toBe("");
    const odd = await fs.lookup((await fs.lookup(fs.rootIno, "x")).ino, "odd");
    expect(odd).toMatchObject({ size: 3 * 4096 + 17, blocks: 4 * 8 });
  });

  it("save 10 MB of files in about 10 MB, and restore them", async () => {
    const fs = new MemFs(new Volume(), { capacity: 64 << 20 });
    const data = pattern(100 << 10, 11);
    for (let i = 0; i < 100; i++) {
      const { fh } = await fs.create(fs.rootIno, `file${i}`, 0o644, O_CREAT | O_RDWR, CRED);
      await fs.write(fh, 0, data);
      await fs.release(fh);
    }
    const bytes = encodeState(await fs.saveState());
    const { vol } = await restored(decodeState(bytes));
    expect(bytes.length).toBeLessThan((100 * (100 << 10)) * 1.02);
    expect(new Uint8Array(vol.readFileSync("/file99") as Buffer)).toEqual(data);
  });

  it("copy the bytes they restore: the source tree and the restored one change apart", async () => {
    const t = await buildTree();
    const { fs } = await restored(await t.fs.saveState()); // no encoding: the state references t's chunks
    await fs.write(t.sparse.fh, 0, text("HEAD"));
    expect(new TextDecoder().decode(await t.fs.read(t.sparse.fh, 0, 4))).toBe("head");
  });

  it("refuse a backend that is not fresh", async () => {
    const t = await buildTree();
    const state = await t.fs.saveState();
    await expect(t.fs.restoreState(state)).rejects.toThrow(/fresh/);
    const vol = new Volume();
    vol.writeFileSync("/already", "here");
    await expect(new MemFs(vol).restoreState(state)).rejects.toThrow(/fresh/);
  });
});

// A saved state taken apart to break it: plain paths into the value, typed no further than that.
type Key = string | number;
const at = (v: unknown, path: readonly Key[]): unknown => path.reduce<unknown>((o, k) => (o as Record<Key, unknown>)[k], v);
const put = (v: unknown, path: readonly Key[], value: unknown): void => {
  (at(v, path.slice(0, -1)) as Record<Key, unknown>)[path.at(-1)!] = value;
};
const items = (v: unknown, path: readonly Key[]): unknown[] => at(v, path) as unknown[];
/** The index of the node an entry of that name names. */
const node = (s: unknown, name: string): number => {
  for (const saved of items(s, ["nodes"])) for (const [n, i] of (at(saved, ["entries"]) ?? []) as [string, number][]) if (n === name) return i;
  throw new Error(`no entry ${name}`);
};
/** The index of the first open handle of that kind. */
const handle = (s: unknown, kind: string): number => items(s, ["handles", "open"]).findIndex((h) => at(h, ["value", "kind"]) === kind);

describe("memfs snapshots of bad states", () => {
  const good = buildTree().then((t) => t.fs.saveState());

  /** Restoring `state` fails with StateError and leaves the backend fresh: the good state still goes in. */
  async function rejected(state: unknown): Promise<void> {
    const vol = new Volume();
    const fs = new MemFs(vol);
    const error = await fs.restoreState(state as Saved).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StateError);
    expect(vol.readdirSync("/")).toEqual([]);
    await fs.restoreState(await good);
    expect(vol.existsSync("/d/a.txt")).toBe(true);
  }

  it("are StateErrors", async () => {
    await rejected(null);
    await rejected({});
    await rejected({ format: "memfs/2" });
    await rejected({ format: "memfs/1", nextIno: 2, nodes: [], inodes: [], handles: { next: 1, open: [] } });
    await rejected(decodeState(encodeState([1, 2, 3])));
  });

  const mutations: [string, (s: unknown) => void][] = [
    ["nextIno below a number in use", (s) => put(s, ["nextIno"], 3)],
    ["a root that is a file", (s) => put(s, ["nodes", 0, "mode"], S_IFREG | 0o644)],
    ["an unknown file type", (s) => put(s, ["nodes", 1, "mode"], 0o170644)],
    ["a negative uid", (s) => put(s, ["nodes", 1, "uid"], -1)],
    ["nanoseconds past a second", (s) => put(s, ["nodes", 1, "mtime"], [0, 1e9])],
    ["an entry naming the root", (s) => items(s, ["nodes", 0, "entries"]).push(["loop", 0])],
    ["an entry past the nodes", (s) => items(s, ["nodes", 0, "entries"]).push(["far", items(s, ["nodes"]).length])],
    ["an entry named ..", (s) => put(s, ["nodes", 0, "entries", 0, 0], "..")],
    ["a name twice in a directory", (s) => items(s, ["nodes", 0, "entries"]).push(["d", node(s, "a-link")])],
    ["a directory with two entries", (s) => items(s, ["nodes", 0, "entries"]).push(["d2", node(s, "d")])],
    [
      "directories in a cycle",
      (s) => {
        const [d, many] = [node(s, "d"), node(s, "many")];
        put(s, ["nodes", 0, "entries"], items(s, ["nodes", 0, "entries"]).filter((e) => ![d, many].includes(at(e, [1]) as number)));
        items(s, ["nodes", many, "entries"]).push(["d", d]);
        items(s, ["nodes", d, "entries"]).push(["many", many]);
      },
    ],
    ["a link count that is not the entries'", (s) => put(s, ["nodes", node(s, "a-link"), "nlink"], 1)],
    ["a node in the tree but freed", (s) => put(s, ["nodes", node(s, "sym"), "alive"], false)],
    ["an inode number twice", (s) => put(s, ["nodes", node(s, "fifo"), "ino"], at(s, ["nodes", node(s, "sym"), "ino"]))],
    ["data past the end of a file", (s) => put(s, ["nodes", node(s, "sparse"), "size"], 2)],
    ["chunks out of order", (s) => items(s, ["nodes", node(s, "sparse"), "chunks"]).reverse()],
    ["a chunk over 4 KiB", (s) => put(s, ["nodes", node(s, "sparse"), "chunks", 0, 1], new Uint8Array(4097))],
    ["a chunk that is no bytes", (s) => put(s, ["nodes", node(s, "sparse"), "chunks", 0, 1], "AAAA")],
    ["an xattr outside the namespaces", (s) => put(s, ["nodes", node(s, "a-link"), "xattrs", 0, 0], "color")],
    ["an empty symlink", (s) => put(s, ["nodes", node(s, "sym"), "target"], "")],
    ["an open count no handle has", (s) => put(s, ["nodes", node(s, "sparse"), "opens"], 2)],
    ["an inode naming another node", (s) => put(s, ["inodes", 0, "value"], at(s, ["inodes", 1, "value"]))],
    ["an inode saved twice", (s) => items(s, ["inodes"]).push(at(s, ["inodes", 0]))],
    ["the root inode in the table", (s) => items(s, ["inodes"]).push({ ino: 1, refs: 1, value: 0 })],
    ["no references", (s) => put(s, ["inodes", 0, "refs"], 0)],
    ["a handle numbered past next", (s) => put(s, ["handles", "open", 0, "h"], at(s, ["handles", "next"]))],
    ["a handle saved twice", (s) => items(s, ["handles", "open"]).push(at(s, ["handles", "open", 0]))],
    ["a handle of no kind", (s) => put(s, ["handles", "open", 0, "value", "kind"], "socket")],
    ["a file handle on a directory", (s) => put(s, ["handles", "open", handle(s, "file"), "value", "node"], 0)],
    ["a directory handle on a file", (s) => put(s, ["handles", "open", handle(s, "dir"), "value", "node"], node(s, "sym"))],
    ["a listing that is not one", (s) => put(s, ["handles", "open", handle(s, "dir"), "value", "listing"], [["x", 0, 0]])],
  ];
  for (const [what, mutate] of mutations) {
    it(`reject ${what}`, async () => {
      const s = structuredClone(await good);
      mutate(s);
      await rejected(s);
    });
  }

  it("reject truncated and corrupted bytes without any other error", { timeout: 60_000 }, async () => {
    const bytes = encodeState(await good);
    for (const cut of [0, 3, 4, 100, bytes.length - 1]) expect(() => decodeState(bytes.subarray(0, cut))).toThrow(StateError);
    // Random bytes flipped in the JSON: each state restores or is a StateError, never a crash.
    const jsonEnd = 4 + new DataView(bytes.buffer).getUint32(0, true);
    let seed = 12345;
    const random = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    let restoredCount = 0;
    for (let round = 0; round < 300; round++) {
      const mutated = bytes.slice();
      for (let k = 0; k < 1 + random(3); k++) mutated[4 + random(jsonEnd - 4)] = "0123456789[]{},:\"-ax".charCodeAt(random(20));
      try {
        await new MemFs(new Volume()).restoreState(decodeState(mutated));
        restoredCount++;
      } catch (e) {
        expect(e).toBeInstanceOf(StateError);
      }
    }
    expect(restoredCount).toBeLessThan(300);
  });
});
