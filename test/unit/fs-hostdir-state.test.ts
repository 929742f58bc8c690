// Snapshots of the hostdir backend: saved by reference, restored on a new backend over the same directory.
import * as nodefs from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { O_APPEND, O_RDONLY, O_RDWR, O_WRONLY } from "../../src/vfs/linux.ts";
import { decodeState, encodeState, StateError, type Saved } from "../../src/vfs/state.ts";
import { HostDirFs, STORE_DIR } from "../../src/fs/hostdir/hostdir.ts";
import { errnoOf } from "./fs-conformance.ts";

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: Uint8Array): string => new TextDecoder().decode(b);
const fdCount = (): number => nodefs.readdirSync("/proc/self/fd").length;
type Obj = Record<string, unknown>;

describe("hostdir snapshots", () => {
  let tmp: string;
  let open: HostDirFs[];
  const serve = async (): Promise<HostDirFs> => {
    const fs = await HostDirFs.open(tmp);
    open.push(fs);
    return fs;
  };

  beforeEach(async () => {
    tmp = await mkdtemp(join(tmpdir(), "vfsw-hostdir-state-"));
    open = [];
    nodefs.writeFileSync(join(tmp, "a.txt"), "alpha");
    nodefs.writeFileSync(join(tmp, "app.log"), "one\n");
    nodefs.writeFileSync(join(tmp, "gone.txt"), "gone");
    nodefs.writeFileSync(join(tmp, "swap.txt"), "old swap");
    nodefs.mkdirSync(join(tmp, "dir"));
    for (let i = 0; i < 8; i++) nodefs.writeFileSync(join(tmp, "dir", `e${i}`), String(i));
  });

  afterEach(async () => {
    for (const fs of open) await fs.close().catch(() => {});
    await rm(tmp, { recursive: true, force: true });
  });

  /** A backend with inodes looked up, files and a directory open, something written: its state, and what it saw. */
  async function running() {
    const fs = await serve();
    const a = await fs.lookup(fs.rootIno, "a.txt");
    await fs.lookup(fs.rootIno, "a.txt"); // two references
    const app = await fs.lookup(fs.rootIno, "app.log");
    const gone = await fs.lookup(fs.rootIno, "gone.txt");
    const swap = await fs.lookup(fs.rootIno, "swap.txt");
    const dir = await fs.lookup(fs.rootIno, "dir");
    const fhA = await fs.open(a.ino, O_RDWR);
    await fs.write(fhA, 0, text("ALPHA-beta"));
    const fhApp = await fs.open(app.ino, O_WRONLY | O_APPEND);
    const fhGone = await fs.open(gone.ino, O_RDONLY);
    const fhSwap = await fs.open(swap.ino, O_RDONLY);
    const dh = await fs.opendir(dir.ino);
    const first = await fs.readdir(dh, 0, 4);
    const rest = await fs.readdir(dh, 4);
    const saved = encodeState(await fs.saveState());
    await fs.close();
    return { a, app, gone, swap, dir, fhA, fhApp, fhGone, fhSwap, dh, first, rest, saved };
  }

  it("restores inode and handle numbers on a new backend: data, append, a listing mid-way, ESTALE for what changed", async () => {
    const s = await running();
    // Meanwhile, on the host: a file removed, one replaced by another of the same name, a name added.
    nodefs.unlinkSync(join(tmp, "gone.txt"));
    nodefs.unlinkSync(join(tmp, "swap.txt"));
    nodefs.writeFileSync(join(tmp, "swap.txt"), "new swap");
    nodefs.writeFileSync(join(tmp, "dir", "late"), "late");

    const fs = await serve();
    const baseline = fdCount();
    await fs.restoreState(decodeState(s.saved));

    expect((await fs.getattr(s.a.ino)).size).toBe(10);
    expect(str(await fs.read(s.fhA, 0, 100))).toBe("ALPHA-beta");
    await fs.write(s.fhA, 5, text("!"));
    expect(nodefs.readFileSync(join(tmp, "a.txt"), "utf8")).toBe("ALPHA!beta");
    // Positional I/O, but an O_APPEND handle still writes at the end, whatever the offset.
    await fs.write(s.fhApp, 0, text("two\n"));
    expect(nodefs.readFileSync(join(tmp, "app.log"), "utf8")).toBe("one\ntwo\n");
    expect(await errnoOf(() => fs.read(s.fhApp, 0, 4))).toBe("EBADF"); // still write-only

    // The listing continues where it stopped, in the snapshot taken before: "late" is not in it.
    expect(await fs.readdir(s.dh, 4)).toEqual(s.rest);
    expect(await fs.readdir(s.dh, 2, 2)).toEqual(s.first.slice(2));
    expect((await fs.lookup(s.dir.ino, "e0")).ino).toBe(s.rest.concat(s.first).find((e) => e.name === "e0")!.ino);

    // Vanished and replaced: the inode and its handles are stale, never the new file's data.
    for (const ino of [s.gone.ino, s.swap.ino]) expect(await errnoOf(() => fs.getattr(ino))).toBe("ESTALE");
    for (const fh of [s.fhGone, s.fhSwap]) expect(await errnoOf(() => fs.read(fh, 0, 10))).toBe("ESTALE");
    const swap = await fs.lookup(fs.rootIno, "swap.txt");
    expect(swap.ino).toBeGreaterThan(Math.max(s.a.ino, s.app.ino, s.gone.ino, s.swap.ino, s.dir.ino));
    const fhNew = await fs.open(swap.ino, O_RDONLY);
    expect(fhNew).toBeGreaterThan(Math.max(s.fhA, s.fhApp, s.fhGone, s.fhSwap, s.dh));
    expect(str(await fs.read(fhNew, 0, 100))).toBe("new swap");

    // The lookup counts came back: two references to a.txt, so one forget leaves it.
    await fs.forget(s.a.ino, 1);
    expect((await fs.getattr(s.a.ino)).ino).toBe(s.a.ino);
    await fs.forget(s.a.ino, 1);
    expect(await errnoOf(() => fs.getattr(s.a.ino))).toBe("ESTALE");

    for (const fh of [s.fhA, s.fhApp, s.fhGone, s.fhSwap]) await fs.release(fh);
    await fs.releasedir(s.dh);
    expect(fdCount()).toBe(baseline + 1); // fhNew
    await fs.release(fhNew);
    expect(fdCount()).toBe(baseline);
  });

  it("saves again after a restore, stale handles staying stale", async () => {
    const s = await running();
    nodefs.unlinkSync(join(tmp, "gone.txt"));
    const fs = await serve();
    await fs.restoreState(decodeState(s.saved));
    const again = encodeState(await fs.saveState());
    await fs.close();
    const fs2 = await serve();
    await fs2.restoreState(decodeState(again));
    expect(await errnoOf(() => fs2.read(s.fhGone, 0, 1))).toBe("ESTALE");
    expect(str(await fs2.read(s.fhA, 0, 100))).toBe("ALPHA-beta");
    expect((await fs2.readdir(s.dh, 4)).map((e) => e.name)).toEqual(s.rest.map((e) => e.name));
  });

  it("rejects hostile states with StateError, leaving the backend fresh", async () => {
    const s = await running();
    const good = decodeState(s.saved);
    const edit = (f: (o: Obj) => void): Saved => {
      const o = structuredClone(good) as Obj;
      f(o);
      return o as Saved;
    };
    const inode0 = (o: Obj): Obj => (o.inodes as Obj[])[0]!;
    const handles = (o: Obj): Obj[] => (o.handles as Obj).open as Obj[];
    const handle0 = (o: Obj): Obj => handles(o)[0]!;
    const hostile: [string, Saved][] = [
      ["dot-dot", edit((o) => void ((inode0(o).value as Obj).path = ["..", "etc"]))],
      ["absolute", edit((o) => void ((inode0(o).value as Obj).path = ["/etc/passwd"]))],
      ["slash inside", edit((o) => void ((inode0(o).value as Obj).path = ["dir/../../etc"]))],
      ["empty path", edit((o) => void ((inode0(o).value as Obj).path = []))],
      ["empty name", edit((o) => void ((inode0(o).value as Obj).path = [""]))],
      ["the store", edit((o) => void ((inode0(o).value as Obj).path = [STORE_DIR, "metadata.jsonl"]))],
      ["NUL", edit((o) => void ((inode0(o).value as Obj).path = ["a\0b"]))],
      ["ino 0", edit((o) => void (inode0(o).ino = 0))],
      ["ino past nextIno", edit((o) => void (inode0(o).ino = 1e6))],
      ["fractional refs", edit((o) => void (inode0(o).refs = 1.5))],
      ["no refs", edit((o) => void (inode0(o).refs = 0))],
      ["bad key", edit((o) => void ((inode0(o).value as Obj).key = "../x"))],
      ["bad type", edit((o) => void ((inode0(o).value as Obj).type = 0o777))],
      ["handle 0", edit((o) => void (handle0(o).h = 0))],
      ["handle past next", edit((o) => void (handle0(o).h = 1e9))],
      ["handle on unknown inode", edit((o) => void ((handle0(o).value as Obj).ino = 9999))],
      ["wrong kind", edit((o) => void ((handle0(o).value as Obj).kind = "dir"))],
      ["listing with ..", edit((o) => void ((handles(o).find((h) => (h.value as Obj).kind === "dir")!.value as Obj).listing = [{ name: ".", ino: 1, type: 0o40000 }, { name: "..", ino: 1, type: 0o40000 }, { name: "..", ino: 1, type: 0o40000 }]))],
      ["nextIno a string", edit((o) => void (o.nextIno = "7"))],
      ["truncated", edit((o) => void delete o.handles)],
      ["another format", edit((o) => void (o.format = "memfs/1"))],
      ["not a record", [1, 2, 3]],
      ["null", null],
    ];
    for (const [what, state] of hostile) {
      const fs = await serve();
      const baseline = fdCount();
      await expect(fs.restoreState(state), what).rejects.toBeInstanceOf(StateError);
      expect(fdCount(), what).toBe(baseline);
      expect(await errnoOf(() => fs.read(s.fhA, 0, 1)), what).toBe("EBADF"); // nothing was swapped in
      await fs.close();
    }
    expect(() => decodeState(s.saved.subarray(0, s.saved.length - 3))).toThrow(StateError);
  });
});
