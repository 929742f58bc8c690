// Snapshots of the OPFS backend in real Chromium: saved by reference, restored on a new backend over the
// same share, in a dedicated Worker (sync access handles reacquired; the saving Worker is killed, not
// closed, as a page that goes away) and on the page (async API, changes buffered until saveState).
import { describe, expect, it } from "vitest";
import { ESTALE } from "../../src/vfs/errno.ts";
import { O_APPEND, O_RDONLY, O_RDWR, O_WRONLY, S_IFREG } from "../../src/vfs/linux.ts";
import { FsError, type FileSystem } from "../../src/vfs/filesystem.ts";
import { decodeState, encodeState, StateError, type Saved } from "../../src/vfs/state.ts";
import { OpfsFs } from "../../src/fs/opfs/opfs.ts";
import type { RemoteInfo } from "../../src/fs/remote.ts";
import { remote } from "./fs-rpc.ts";
import type { OpenShare } from "./opfs.worker.ts";

type Share = FileSystem & { close(): Promise<void> };
type Opener = (tree: string, meta: string) => Promise<{ fs: Share; kill(): void }>;
type Obj = Record<string, unknown>;

const enc = new TextEncoder();
const dec = new TextDecoder();
const cred = { uid: 0, gid: 0 };
let shares = 0;

const onPage: Opener = async (tree, meta) => {
  const root = await navigator.storage.getDirectory();
  const fs = await OpfsFs.open(await root.getDirectoryHandle(tree), { meta: await root.getDirectoryHandle(meta, { create: true }), syncAccess: false });
  return { fs, kill: () => {} };
};

const inWorker: Opener = async (tree, meta) => {
  const worker = new Worker(new URL("./opfs.worker.ts", import.meta.url), { type: "module" });
  const ready = new Promise<{ ready: true; info: RemoteInfo } | { ready: false; message: string }>((resolve) =>
    worker.addEventListener("message", (e) => resolve(e.data), { once: true }),
  );
  worker.postMessage({ tree, meta } satisfies OpenShare);
  const r = await ready;
  if (!r.ready) throw new Error(r.message);
  return { fs: remote(worker, r.info), kill: () => worker.terminate() };
};

async function errnoOf(call: () => unknown): Promise<number | string> {
  try {
    await call();
    return "ok";
  } catch (e) {
    return e instanceof FsError ? e.errno : String(e);
  }
}

async function writeNative(dir: FileSystemDirectoryHandle, name: string, data: string): Promise<void> {
  const w = await (await dir.getFileHandle(name, { create: true })).createWritable();
  await w.write(enc.encode(data));
  await w.close();
}

async function readNative(dir: FileSystemDirectoryHandle, name: string): Promise<string> {
  return (await (await dir.getFileHandle(name)).getFile()).text();
}

async function newShare(): Promise<{ tree: string; meta: string; root: FileSystemDirectoryHandle }> {
  const tree = `state-${Date.now()}-${shares++}`;
  const opfs = await navigator.storage.getDirectory();
  const root = await opfs.getDirectoryHandle(tree, { create: true });
  for (const [name, data] of [["a.txt", "alpha"], ["app.log", "one\n"], ["gone.txt", "gone"], ["swap.txt", "old swap"]]) await writeNative(root, name!, data!);
  const dir = await root.getDirectoryHandle("dir", { create: true });
  for (let i = 0; i < 8; i++) await writeNative(dir, `e${i}`, String(i));
  return { tree, meta: `${tree}.meta`, root };
}

for (const [where, open] of [["in a Worker (sync access handles)", inWorker], ["on the page (async API)", onPage]] as const) {
  describe(`opfs snapshots ${where}`, () => {
    it("restores inode and handle numbers on a new backend: data, append, a listing mid-way, ESTALE for what changed", async () => {
      const share = await newShare();
      const one = await open(share.tree, share.meta);
      const fs1 = one.fs;
      const a = await fs1.lookup(fs1.rootIno, "a.txt");
      await fs1.lookup(fs1.rootIno, "a.txt"); // two references
      const app = await fs1.lookup(fs1.rootIno, "app.log");
      const gone = await fs1.lookup(fs1.rootIno, "gone.txt");
      const swap = await fs1.lookup(fs1.rootIno, "swap.txt");
      const dir = await fs1.lookup(fs1.rootIno, "dir");
      const fhA = await fs1.open(a.ino, O_RDWR);
      await fs1.write(fhA, 0, enc.encode("ALPHA-beta"));
      const fhApp = await fs1.open(app.ino, O_WRONLY | O_APPEND);
      const fhGone = await fs1.open(gone.ino, O_RDONLY);
      const fhSwap = await fs1.open(swap.ino, O_RDONLY);
      const dh = await fs1.opendir(dir.ino);
      const first = await fs1.readdir(dh, 0, 4);
      const rest = await fs1.readdir(dh, 4);
      const saved = encodeState(await fs1.saveState!());
      one.kill(); // never closed: what saveState left is all there is

      // Meanwhile: a file removed behind the backend's back, one replaced through another session, a name added.
      await share.root.removeEntry("gone.txt");
      const between = await onPage(share.tree, share.meta);
      await between.fs.unlink(between.fs.rootIno, "swap.txt");
      const made = await between.fs.create(between.fs.rootIno, "swap.txt", S_IFREG | 0o644, O_RDWR, cred);
      await between.fs.write(made.fh, 0, enc.encode("new swap"));
      await between.fs.release(made.fh);
      await between.fs.close();
      await writeNative(await share.root.getDirectoryHandle("dir"), "late", "late");

      const two = await open(share.tree, share.meta);
      const fs = two.fs;
      await fs.restoreState!(decodeState(saved));
      expect((await fs.getattr(a.ino)).size).toBe(10);
      expect(dec.decode(await fs.read(fhA, 0, 100))).toBe("ALPHA-beta");
      await fs.write(fhA, 5, enc.encode("!"));
      await fs.write(fhApp, 0, enc.encode("two\n")); // O_APPEND: at the end, whatever the offset
      expect(await errnoOf(() => fs.read(fhApp, 0, 4))).not.toBe("ok"); // still write-only

      expect(await fs.readdir(dh, 4)).toEqual(rest);
      expect(await fs.readdir(dh, 2, 2)).toEqual(first.slice(2));

      for (const ino of [gone.ino, swap.ino]) expect(await errnoOf(() => fs.getattr(ino))).toBe(ESTALE);
      for (const fh of [fhGone, fhSwap]) expect(await errnoOf(() => fs.read(fh, 0, 10))).toBe(ESTALE);
      const swapNow = await fs.lookup(fs.rootIno, "swap.txt");
      expect(swapNow.ino).not.toBe(swap.ino);
      const fhNew = await fs.open(swapNow.ino, O_RDONLY);
      expect(fhNew).toBeGreaterThan(Math.max(fhA, fhApp, fhGone, fhSwap, dh));
      expect(dec.decode(await fs.read(fhNew, 0, 100))).toBe("new swap");

      await fs.forget(a.ino, 1);
      expect((await fs.getattr(a.ino)).ino).toBe(a.ino);
      await fs.forget(a.ino, 1);
      expect(await errnoOf(() => fs.getattr(a.ino))).toBe(ESTALE);

      for (const fh of [fhA, fhApp, fhGone, fhSwap, fhNew]) await fs.release(fh);
      await fs.releasedir(dh);
      await fs.close();
      two.kill();
      expect(await readNative(share.root, "a.txt")).toBe("ALPHA!beta");
      expect(await readNative(share.root, "app.log")).toBe("one\ntwo\n");
    });
  });
}

describe("opfs snapshots from hostile states", () => {
  it("rejects them with StateError, leaving the backend fresh", async () => {
    const share = await newShare();
    const { fs } = await onPage(share.tree, share.meta);
    const a = await fs.lookup(fs.rootIno, "a.txt");
    const fh = await fs.open(a.ino, O_RDONLY);
    await fs.readdir(await fs.opendir(fs.rootIno), 0);
    const good = decodeState(encodeState(await fs.saveState!()));
    await fs.close();
    const edit = (f: (o: Obj) => void): Saved => {
      const o = structuredClone(good) as Obj;
      f(o);
      return o as Saved;
    };
    const inode0 = (o: Obj): Obj => (o.inodes as Obj[])[0]!;
    const handle = (o: Obj, kind: string): Obj => ((o.handles as Obj).open as Obj[]).find((h) => (h.value as Obj).kind === kind)!;
    const hostile: [string, Saved][] = [
      ["dot-dot", edit((o) => void ((inode0(o).value as Obj).at = { parent: 1, name: ".." }))],
      ["slash", edit((o) => void ((inode0(o).value as Obj).at = { parent: 1, name: "../../x" }))],
      ["empty name", edit((o) => void ((inode0(o).value as Obj).at = { parent: 1, name: "" }))],
      ["ino 0", edit((o) => void (inode0(o).ino = 0))],
      ["ino past nextIno", edit((o) => void (inode0(o).ino = 1e6))],
      ["negative refs", edit((o) => void (inode0(o).refs = -1))],
      ["bad type", edit((o) => void ((inode0(o).value as Obj).type = 7))],
      ["handle 0", edit((o) => void (handle(o, "file").h = 0))],
      ["handle past next", edit((o) => void (handle(o, "file").h = 1e9))],
      ["file handle on a directory", edit((o) => void ((handle(o, "file").value as Obj).ino = 1))],
      ["listing with a slash", edit((o) => void (((handle(o, "dir").value as Obj).listing as Obj[])[2]!.name = "a/b"))],
      ["nextIno a string", edit((o) => void (o.nextIno = "7"))],
      ["truncated", edit((o) => void delete o.inodes)],
      ["another format", edit((o) => void (o.format = "hostdir-refs/1"))],
      ["not a record", "opfs"],
    ];
    const two = await onPage(share.tree, share.meta);
    for (const [what, state] of hostile) {
      await expect(two.fs.restoreState!(state), what).rejects.toBeInstanceOf(StateError);
      expect(await errnoOf(() => two.fs.read(fh, 0, 1)), what).not.toBe("ok"); // nothing was swapped in
    }
    await two.fs.restoreState!(good); // and the good state still restores
    expect(dec.decode(await two.fs.read(fh, 0, 10))).toBe("alpha");
    await two.fs.close();
  });
});
