// The OPFS backend in real Chromium: the shared conformance suite twice (in a dedicated Worker with sync
// access handles, as the demo runs it, and on the page through the async API, as a picked folder runs
// it), then what only this backend has: metadata that survives a reload, torn saves, the share's lock.
import { describe, expect, it } from "vitest";
import { EIO, ENOSPC, ESTALE } from "../../src/vfs/errno.ts";
import { S_IFCHR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG } from "../../src/vfs/linux.ts";
import type { Awaitable } from "../../src/vfs/awaitable.ts";
import { FsError, type FileAttr, type FileSystem, type Handle, type Ino } from "../../src/vfs/filesystem.ts";
import { OpfsFs } from "../../src/fs/opfs/opfs.ts";
import { opfsError } from "../../src/fs/opfs/data.ts";
import { decodeSnapshot } from "../../src/fs/opfs/meta.ts";
import { errnoOf, fsConformance, type FixtureFactory } from "../unit/fs-conformance.ts";
import type { RemoteInfo } from "../../src/fs/remote.ts";
import { remote } from "./fs-rpc.ts";
import type { OpenShare } from "./opfs.worker.ts";
import { Cut } from "./opfs-cut.ts";

type Share = FileSystem & { close(): Promise<void> };
interface Opened {
  fs: Share;
  /** Ends the context holding the share without closing it, as a reload does. */
  kill(): void;
}
type Opener = (tree: string, meta: string, readOnly?: boolean) => Promise<Opened>;

const enc = new TextEncoder();
const dec = new TextDecoder();
const cred = { uid: 0, gid: 0 };
const opfs = (): Promise<FileSystemDirectoryHandle> => navigator.storage.getDirectory();
let shares = 0;

const onPage: Opener = async (tree, meta, readOnly) => {
  const root = await opfs();
  const fs = await OpfsFs.open(await root.getDirectoryHandle(tree), { meta: await root.getDirectoryHandle(meta, { create: true }), syncAccess: false, readOnly });
  return { fs, kill: () => {} };
};

const inWorker: Opener = async (tree, meta, readOnly) => {
  const worker = new Worker(new URL("./opfs.worker.ts", import.meta.url), { type: "module" });
  const ready = new Promise<{ ready: true; info: RemoteInfo } | { ready: false; message: string }>((resolve) =>
    worker.addEventListener("message", (e) => resolve(e.data), { once: true }),
  );
  worker.postMessage({ tree, meta, readOnly } satisfies OpenShare);
  const r = await ready;
  if (!r.ready) {
    worker.terminate();
    throw new Error(r.message);
  }
  return { fs: remote(worker, r.info), kill: () => worker.terminate() };
};

async function dirAt(root: FileSystemDirectoryHandle, parts: string[], create = false): Promise<FileSystemDirectoryHandle> {
  let d = root;
  for (const p of parts) d = await d.getDirectoryHandle(p, { create });
  return d;
}

async function writeNative(root: FileSystemDirectoryHandle, path: string, data: Uint8Array): Promise<void> {
  const parts = path.split("/");
  const file = await (await dirAt(root, parts.slice(0, -1))).getFileHandle(parts.at(-1)!, { create: true });
  const w = await file.createWritable();
  await w.write(data.slice());
  await w.close();
}

async function removeNative(root: FileSystemDirectoryHandle, path: string): Promise<void> {
  const parts = path.split("/");
  await (await dirAt(root, parts.slice(0, -1))).removeEntry(parts.at(-1)!);
}

async function resolve(fs: FileSystem, path: string): Promise<FileAttr> {
  let attr = await fs.getattr(fs.rootIno);
  for (const name of path.split("/").filter((c) => c)) attr = await fs.lookup(attr.ino, name);
  return attr;
}

async function parentOf(fs: FileSystem, path: string): Promise<{ parent: Ino; leaf: string }> {
  const parts = path.split("/");
  return { parent: (await resolve(fs, parts.slice(0, -1).join("/"))).ino, leaf: parts.at(-1)! };
}

async function readAll(fs: FileSystem, path: string): Promise<string> {
  const fh = await fs.open((await resolve(fs, path)).ino, 0);
  const data = await fs.read(fh, 0, 1 << 20);
  await fs.release(fh);
  return dec.decode(data);
}

/** A fresh tree and metadata directory in OPFS. */
async function newShare(): Promise<{ tree: string; meta: string; root: FileSystemDirectoryHandle; dispose(): Promise<void> }> {
  const tree = `share-${Date.now()}-${shares++}`;
  const root = await opfs();
  await root.getDirectoryHandle(tree, { create: true });
  return {
    tree,
    meta: `${tree}.meta`,
    root: await root.getDirectoryHandle(tree),
    dispose: async () => {
      for (const name of [tree, `${tree}.meta`]) await root.removeEntry(name, { recursive: true }).catch(() => {});
    },
  };
}

/**
 * Directories and files are made through OPFS itself; what OPFS cannot hold (modes, symlinks, hard links)
 * through the backend, which is then closed and opened afresh, so the suite runs on reloaded metadata.
 */
function opfsFixture(open: Opener): FixtureFactory {
  return async (items, options) => {
    const share = await newShare();
    for (const item of items) {
      if (item.kind === "dir") await dirAt(share.root, item.path.split("/"), true);
      else if (item.kind === "file") await writeNative(share.root, item.path, item.data);
    }
    const setup = await open(share.tree, share.meta);
    for (const item of items) {
      const { parent, leaf } = await parentOf(setup.fs, item.path);
      if (item.kind === "symlink") await setup.fs.symlink(parent, leaf, item.target, cred);
      else if (item.kind === "hardlink") await setup.fs.link((await resolve(setup.fs, item.existing)).ino, parent, leaf);
      else await setup.fs.setattr((await setup.fs.lookup(parent, leaf)).ino, { mode: item.mode });
    }
    await setup.fs.close();
    setup.kill();
    const { fs, kill } = await open(share.tree, share.meta, options?.readOnly);
    return {
      fs,
      addFile: (path) => writeNative(share.root, path, enc.encode("new")),
      remove: (path) => removeNative(share.root, path),
      cleanup: async () => {
        await fs.close();
        kill();
        await share.dispose();
      },
    };
  };
}

// OPFS has no sparse files: a gap is stored as zeros, and all of a file is data.
fsConformance("opfs in a Worker (sync access handles)", opfsFixture(inWorker), { holeGranularity: undefined, dense: true, timePrecisionNs: 1 });
fsConformance("opfs on the page (async API)", opfsFixture(onPage), { holeGranularity: undefined, dense: true, timePrecisionNs: 1 });

describe("opfs backend", () => {
  it("keeps modes, owners, times, symlinks, hard links, device nodes and xattrs across a reload", async () => {
    const share = await newShare();
    const first = await inWorker(share.tree, share.meta);
    const fs = first.fs;
    const { attr, fh } = await fs.create(fs.rootIno, "f", 0o640, 1, { uid: 1000, gid: 100 });
    await fs.write(fh, 0, enc.encode("data"));
    await fs.release(fh);
    await fs.setattr(attr.ino, { mtime: { sec: 1_600_000_000, nsec: 123 } });
    await fs.setxattr(attr.ino, "user.note", enc.encode("kept"), 0);
    await fs.symlink(fs.rootIno, "sym", "f", cred);
    await fs.link(attr.ino, fs.rootIno, "hard");
    await fs.mknod(fs.rootIno, "fifo", S_IFIFO | 0o600, 0, cred);
    await fs.mknod(fs.rootIno, "tty", S_IFCHR | 0o620, (4 << 8) | 1, cred);
    await fs.mkdir(fs.rootIno, "d", 0o2750, { uid: 0, gid: 50 });
    await fs.syncfs();
    first.kill(); // no close: the Worker dies as on a reload

    const { fs: again, kill } = await inWorker(share.tree, share.meta);
    const f = await resolve(again, "f");
    expect(f).toMatchObject({ mode: S_IFREG | 0o640, uid: 1000, gid: 100, nlink: 2, size: 4, mtime: { sec: 1_600_000_000, nsec: 123 } });
    expect((await resolve(again, "hard")).ino).toBe(f.ino);
    expect(await readAll(again, "hard")).toBe("data");
    expect(dec.decode(await again.getxattr(f.ino, "user.note"))).toBe("kept");
    expect((await resolve(again, "sym")).mode).toBe(S_IFLNK | 0o777);
    expect(await again.readlink((await resolve(again, "sym")).ino)).toBe("f");
    expect((await resolve(again, "fifo")).mode).toBe(S_IFIFO | 0o600);
    expect(await resolve(again, "tty")).toMatchObject({ mode: S_IFCHR | 0o620, rdev: (4 << 8) | 1 });
    expect(await resolve(again, "d")).toMatchObject({ mode: 0o42750, gid: 50 });
    // Names are files in OPFS too: the share stays browsable.
    const names: string[] = [];
    for await (const name of share.root.keys()) names.push(name);
    expect(names.sort()).toEqual(["d", "f", "fifo", "hard", "sym", "tty"]);
    await again.close();
    kill();
    await share.dispose();
  });

  it("keeps an unlinked open file readable, and drops its data at the last release", async () => {
    const share = await newShare();
    const { fs, kill } = await inWorker(share.tree, share.meta);
    const { attr, fh } = await fs.create(fs.rootIno, "doomed", 0o644, 2, cred);
    await fs.write(fh, 0, enc.encode("still here"));
    await fs.unlink(fs.rootIno, "doomed");
    expect(dec.decode(await fs.read(fh, 0, 100))).toBe("still here");
    await fs.write(fh, 10, enc.encode("!"));
    expect((await fs.getattr(attr.ino)).nlink).toBe(0);
    expect(await errnoOf(() => fs.link(attr.ino, fs.rootIno, "back"))).toBe("ENOENT"); // as Linux: only O_TMPFILE comes back
    await fs.release(fh);
    const inodes = await (await (await opfs()).getDirectoryHandle(share.meta)).getDirectoryHandle("inodes");
    const left: string[] = [];
    for await (const name of inodes.keys()) left.push(name);
    expect(left).toEqual([]);
    await fs.close();
    kill();
    await share.dispose();
  });

  it("moves a directory with an open file in it, and the handle follows", async () => {
    const share = await newShare();
    const { fs, kill } = await inWorker(share.tree, share.meta);
    const a = await fs.mkdir(fs.rootIno, "a", 0o755, cred);
    await fs.mkdir(a.ino, "sub", 0o755, cred);
    const { fh } = await fs.create(a.ino, "f", 0o644, 2, cred);
    await fs.write(fh, 0, enc.encode("one"));
    await fs.rename(fs.rootIno, "a", fs.rootIno, "b", 0);
    await fs.write(fh, 3, enc.encode("two"));
    await fs.release(fh);
    expect(await readAll(fs, "b/f")).toBe("onetwo");
    expect((await resolve(fs, "b")).ino).toBe(a.ino);
    expect((await resolve(fs, "b")).nlink).toBe(3);
    expect(await errnoOf(() => fs.lookup(fs.rootIno, "a"))).toBe("ENOENT");
    await fs.close();
    kill();
    await share.dispose();
  });

  it("falls back to the previous metadata when the newest save is torn", async () => {
    const share = await newShare();
    const first = await inWorker(share.tree, share.meta);
    const { attr, fh } = await first.fs.create(first.fs.rootIno, "f", 0o600, 1, cred);
    await first.fs.release(fh); // saves: mode 0600
    await first.fs.setattr(attr.ino, { mode: 0o644 });
    await first.fs.syncfs(); // saves: mode 0644
    await first.fs.close();
    first.kill();

    const meta = await (await opfs()).getDirectoryHandle(share.meta);
    const slots = await Promise.all(
      ["meta.0", "meta.1"].map(async (name) => {
        const bytes = new Uint8Array(await (await (await meta.getFileHandle(name)).getFile()).arrayBuffer());
        return { name, bytes, generation: decodeSnapshot(bytes)?.generation ?? -1 };
      }),
    );
    const newest = slots.reduce((a, b) => (b.generation > a.generation ? b : a));
    const w = await (await meta.getFileHandle(newest.name)).createWritable();
    await w.write(newest.bytes.slice(0, newest.bytes.length >> 1)); // as if the tab closed mid-write
    await w.close();

    const { fs, kill } = await inWorker(share.tree, share.meta);
    expect((await resolve(fs, "f")).mode).toBe(S_IFREG | 0o600);
    await fs.close();
    kill();
    await share.dispose();
  });

  it("refuses a share another Worker holds open, in bounded time", async () => {
    const share = await newShare();
    const holder = await inWorker(share.tree, share.meta);
    const t0 = performance.now();
    await expect(inWorker(share.tree, share.meta)).rejects.toThrow(/another tab/);
    expect(performance.now() - t0).toBeLessThan(10_000);
    await holder.fs.close();
    holder.kill();
    await share.dispose();
  });

  it("gives new names found behind its back default metadata", async () => {
    const share = await newShare();
    const { fs, kill } = await inWorker(share.tree, share.meta);
    await writeNative(share.root, "dropped.txt", enc.encode("from outside"));
    await dirAt(share.root, ["outside-dir"], true);
    expect(await resolve(fs, "dropped.txt")).toMatchObject({ mode: S_IFREG | 0o644, uid: 0, gid: 0, size: 12 });
    expect((await resolve(fs, "outside-dir")).mode & S_IFMT).toBe(0o40000);
    await fs.close();
    kill();
    await share.dispose();
  });

  it("stores a gap written past the end as zeros, and a write beyond what storage holds is ENOSPC, not a hang", async () => {
    const share = await newShare();
    const { fs, kill } = await inWorker(share.tree, share.meta);
    const { attr, fh } = await fs.create(fs.rootIno, "gap", 0o644, 2, cred);
    await fs.write(fh, 3 << 20, enc.encode("end"));
    expect((await fs.getattr(attr.ino)).size).toBe((3 << 20) + 3);
    expect(await fs.read(fh, (3 << 20) - 2, 5)).toEqual(Uint8Array.from([0, 0, 101, 110, 100]));
    // A private window's OPFS lives in memory: 4 GiB does not fit, and says so.
    const t0 = performance.now();
    expect(await errnoOf(() => fs.write(fh, 2 ** 32, enc.encode("x")))).toBe("ENOSPC");
    expect(performance.now() - t0).toBeLessThan(10_000);
    expect(await fs.read(fh, 0, 3)).toEqual(new Uint8Array(3));
    await fs.release(fh);
    await fs.close();
    kill();
    await share.dispose();
  });

  /**
   * Runs `step` on a share set up by `setup`, cut after 0, 1, 2, … OPFS changes until it completes, and
   * after each cut checks the share a fresh backend opens with `check` (told whether `step` returned).
   */
  async function everyCut(setup: (fs: FileSystem) => Promise<void>, step: (fs: FileSystem) => Awaitable<void>, check: (fs: FileSystem, done: boolean) => Promise<void>): Promise<number> {
    for (let budget = 0; budget < 64; budget++) {
      const share = await newShare();
      const first = await onPage(share.tree, share.meta);
      await setup(first.fs);
      await first.fs.syncfs();
      const cut = new Cut();
      const root = await opfs();
      const fs = await OpfsFs.open(cut.wrap(await root.getDirectoryHandle(share.tree)), { meta: cut.wrap(await root.getDirectoryHandle(share.meta)), syncAccess: false });
      cut.arm(budget);
      const done = await (async () => step(fs))().then(
        () => true,
        () => false,
      );
      const reached = !cut.crashed;
      await cut.crash(); // the reload: nothing of that backend runs on
      const again = await onPage(share.tree, share.meta);
      await check(again.fs, done);
      await again.fs.close();
      await share.dispose();
      if (reached) return budget;
    }
    throw new Error("the step never completed");
  }

  const writeFile = async (fs: FileSystem, name: string, text: string): Promise<Ino> => {
    const { attr, fh } = await fs.create(fs.rootIno, name, 0o640, 1, cred);
    await fs.write(fh, 0, enc.encode(text));
    await fs.release(fh);
    return attr.ino;
  };

  it("renames over a file atomically: a crash between any two OPFS calls leaves the old file or the new, never neither", async () => {
    const steps = await everyCut(
      async (fs) => {
        await writeFile(fs, "r", "old");
        await writeFile(fs, "t", "new");
      },
      (fs) => fs.rename(fs.rootIno, "t", fs.rootIno, "r", 0),
      async (fs, done) => {
        expect(["old", "new"]).toContain(await readAll(fs, "r"));
        if (done) expect(await readAll(fs, "r")).toBe("new");
      },
    );
    expect(steps).toBeGreaterThan(0);
  });

  it("renames over an open file atomically, and the open handle keeps the old data", async () => {
    let held: Handle | undefined;
    await everyCut(
      async (fs) => {
        await writeFile(fs, "r", "old");
        await writeFile(fs, "t", "new");
      },
      async (fs) => {
        held = await fs.open((await fs.lookup(fs.rootIno, "r")).ino, 2);
        await fs.rename(fs.rootIno, "t", fs.rootIno, "r", 0);
        expect(dec.decode(await fs.read(held, 0, 10))).toBe("old");
      },
      async (fs, done) => {
        expect(["old", "new"]).toContain(await readAll(fs, "r"));
        if (done) expect(await readAll(fs, "r")).toBe("new");
      },
    );
    expect(held).toBeDefined();
  });

  it("links a file with no window where a crash loses its data", async () => {
    await everyCut(
      (fs) => writeFile(fs, "a", "data").then(() => {}),
      async (fs) => {
        await fs.link((await fs.lookup(fs.rootIno, "a")).ino, fs.rootIno, "b");
      },
      async (fs, done) => {
        expect(await readAll(fs, "a")).toBe("data");
        if (done) expect(await readAll(fs, "b")).toBe("data");
      },
    );
  });

  it("maps OPFS failures to errnos: a full quota is ENOSPC, a vanished object ESTALE, the rest EIO", () => {
    const errno = (e: unknown): number | undefined => (opfsError(e) as FsError).errno;
    expect(errno(new DOMException("full", "QuotaExceededError"))).toBe(ENOSPC);
    expect(errno(new DOMException("gone", "NotFoundError"))).toBe(ESTALE);
    expect(errno(new DOMException("locked", "NoModificationAllowedError"))).toBe(EIO);
    expect(errno(new DOMException("?", "InvalidStateError"))).toBe(EIO);
  });
});
