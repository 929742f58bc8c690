import { execFileSync } from "node:child_process";
import * as nodefs from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FsError, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, type FileAttr } from "../../src/fs/filesystem.ts";
import { errnoName } from "../../src/fs/errno.ts";
import { HostDirFs } from "../../src/fs/hostdir.ts";
import { FIXTURE, fsConformance, type FixtureItem } from "./fs-conformance.ts";

function buildTree(root: string, items: readonly FixtureItem[]): void {
  for (const item of items) {
    const path = join(root, item.path);
    if (item.kind === "dir") {
      nodefs.mkdirSync(path);
      nodefs.chmodSync(path, item.mode); // past the umask
    } else if (item.kind === "file") {
      nodefs.writeFileSync(path, item.data);
      nodefs.chmodSync(path, item.mode);
    } else if (item.kind === "symlink") nodefs.symlinkSync(item.target, path);
    else nodefs.linkSync(join(root, item.existing), path);
  }
}

fsConformance("hostdir", async (items) => {
  const tmp = await mkdtemp(join(tmpdir(), "vfsw-hostdir-"));
  buildTree(tmp, items);
  const fs = await HostDirFs.open(tmp);
  return {
    fs,
    addFile: async (path) => nodefs.writeFileSync(join(tmp, path), "new"),
    remove: async (path) => nodefs.unlinkSync(join(tmp, path)),
    cleanup: async () => {
      await fs.close();
      await rm(tmp, { recursive: true, force: true });
    },
  };
});

async function errnoOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (e) {
    if (e instanceof FsError) return errnoName(e.errno);
    throw e;
  }
  return "resolved";
}

describe("hostdir confinement", () => {
  let tmp: string; // holds root/ (served) and outside/ (must stay unreachable)
  let root: string;
  let outside: string;
  let fs: HostDirFs;

  beforeEach(async () => {
    tmp = await mkdtemp(join(tmpdir(), "vfsw-hostile-"));
    root = join(tmp, "root");
    outside = join(tmp, "outside");
    nodefs.mkdirSync(root);
    buildTree(root, FIXTURE);
    nodefs.mkdirSync(join(outside, "sub", "deeper"), { recursive: true });
    nodefs.writeFileSync(join(outside, "secret.txt"), "SECRET");
    nodefs.writeFileSync(join(outside, "sub", "deeper", "leaf.txt"), "SECRET");
    nodefs.symlinkSync("/etc", join(root, "evil"));
    nodefs.symlinkSync(join(outside, "secret.txt"), join(root, "abs-escape"));
    nodefs.symlinkSync("../outside/secret.txt", join(root, "rel-escape"));
    nodefs.symlinkSync("../outside", join(root, "dir-escape"));
    fs = await HostDirFs.open(root);
  });
  afterEach(async () => {
    await fs.close();
    await rm(tmp, { recursive: true, force: true });
  });

  async function resolve(path: string): Promise<FileAttr> {
    let attr = await fs.getattr(fs.rootIno);
    for (const name of path.split("/")) attr = await fs.lookup(attr.ino, name);
    return attr;
  }

  it("returns a symlink out of the tree as a symlink and never follows it", async () => {
    const evil = await fs.lookup(fs.rootIno, "evil");
    expect(evil.mode & S_IFMT).toBe(S_IFLNK);
    expect(evil.size).toBe(4);
    expect(await fs.readlink(evil.ino)).toBe("/etc");
    expect(await errnoOf(fs.lookup(evil.ino, "passwd"))).toBe("ENOTDIR");
    expect(await errnoOf(fs.opendir(evil.ino))).toBe("ENOTDIR");
    expect(await errnoOf(fs.open(evil.ino, 0))).toBe("ELOOP");
    const escape = await fs.lookup(fs.rootIno, "dir-escape");
    expect(await errnoOf(fs.lookup(escape.ino, "secret.txt"))).toBe("ENOTDIR");
  });

  it("cannot open a symlink to a file outside the root", async () => {
    for (const name of ["abs-escape", "rel-escape"]) {
      const link = await fs.lookup(fs.rootIno, name);
      expect(link.mode & S_IFMT).toBe(S_IFLNK);
      expect(await errnoOf(fs.open(link.ino, 0))).toBe("ELOOP");
    }
    expect(await fs.readlink((await fs.lookup(fs.rootIno, "rel-escape")).ino)).toBe("../outside/secret.txt");
  });

  it("does not follow a directory replaced by a symlink after lookup", async () => {
    const dir = await resolve("dir");
    const sub = await resolve("dir/sub");
    const leaf = await resolve("dir/sub/deeper/leaf.txt");
    nodefs.renameSync(join(root, "dir"), join(root, "dir.moved"));
    nodefs.symlinkSync(outside, join(root, "dir"));

    for (const ino of [dir.ino, sub.ino, leaf.ino]) expect(await errnoOf(fs.getattr(ino))).toBe("ESTALE");
    expect(await errnoOf(fs.lookup(dir.ino, "sub"))).toBe("ESTALE");
    expect(await errnoOf(fs.lookup(sub.ino, "deeper"))).toBe("ESTALE");
    expect(await errnoOf(fs.opendir(dir.ino))).toBe("ESTALE");
    expect(await errnoOf(fs.open(leaf.ino, 0))).toBe("ESTALE");
    expect((await fs.lookup(fs.rootIno, "dir")).mode & S_IFMT).toBe(S_IFLNK);

    // The moved directory is the same inode under its new name, and its contents are reachable again.
    expect((await fs.lookup(fs.rootIno, "dir.moved")).ino).toBe(dir.ino);
    expect((await resolve("dir.moved/sub/deeper/leaf.txt")).ino).toBe(leaf.ino);
    const fh = await fs.open(leaf.ino, 0);
    expect(new TextDecoder().decode(await fs.read(fh, 0, 100))).toBe("leaf\n");
    await fs.release(fh);
  });

  it("does not follow a symlink swapped in for a file after lookup", async () => {
    const hello = await resolve("hello.txt");
    nodefs.unlinkSync(join(root, "hello.txt"));
    nodefs.symlinkSync(join(outside, "secret.txt"), join(root, "hello.txt"));
    expect(await errnoOf(fs.getattr(hello.ino))).toBe("ESTALE");
    expect(await errnoOf(fs.open(hello.ino, 0))).toBe("ESTALE");
  });

  it("treats a file replaced by another as stale, and the new one as a new inode", async () => {
    const old = await resolve("empty");
    nodefs.unlinkSync(join(root, "empty"));
    nodefs.writeFileSync(join(root, "other"), "hold the old inode number"); // keeps the host from reusing it
    nodefs.writeFileSync(join(root, "empty"), "replaced");
    expect(await errnoOf(fs.getattr(old.ino))).toBe("ESTALE");
    const now = await resolve("empty");
    expect(now.ino).not.toBe(old.ino);
    expect(now.size).toBe(8);
  });

  it("keeps reading an open file after the host removes it", async () => {
    const fh = await fs.open((await resolve("hello.txt")).ino, 0);
    nodefs.unlinkSync(join(root, "hello.txt"));
    nodefs.unlinkSync(join(root, "dir", "hello-link.txt"));
    expect(new TextDecoder().decode(await fs.read(fh, 0, 5))).toBe("Hello");
    await fs.release(fh);
  });

  it("shows a FIFO but refuses to open it, without blocking", async () => {
    execFileSync("mkfifo", [join(root, "fifo")]);
    const fifo = await fs.lookup(fs.rootIno, "fifo");
    expect(fifo.mode & S_IFMT).toBe(S_IFIFO);
    expect(await errnoOf(fs.open(fifo.ino, 0))).toBe("ENXIO");
  });

  it("leaves out names that are not UTF-8 and refuses link targets that are not", async () => {
    const rootBytes = Buffer.from(root);
    nodefs.writeFileSync(Buffer.concat([rootBytes, Buffer.from([0x2f, 0x62, 0x61, 0x64, 0xff])]), "x");
    nodefs.symlinkSync(Buffer.from([0x74, 0xfe]), join(root, "bad-target"));
    const dh = await fs.opendir(fs.rootIno);
    const names = (await fs.readdir(dh, 0)).map((e) => e.name);
    await fs.releasedir(dh);
    expect(names).toContain("bad-target");
    expect(names.some((n) => n.startsWith("bad") && n !== "bad-target")).toBe(false);
    expect(await errnoOf(fs.readlink((await fs.lookup(fs.rootIno, "bad-target")).ino))).toBe("EILSEQ");
  });

  it("serves a root given through a symlink, and lists the root as its own parent", async () => {
    await fs.close();
    nodefs.symlinkSync(root, join(tmp, "root-link"));
    fs = await HostDirFs.open(join(tmp, "root-link"));
    expect((await fs.getattr(fs.rootIno)).mode & S_IFMT).toBe(S_IFDIR);
    expect((await resolve("hello.txt")).mode & S_IFMT).toBe(S_IFREG);
    const dh = await fs.opendir(fs.rootIno);
    expect((await fs.readdir(dh, 0, 2)).map((e) => [e.name, e.ino])).toEqual([
      [".", fs.rootIno],
      ["..", fs.rootIno],
    ]);
    await fs.releasedir(dh);
  });

  it("reports the host's owners and nanosecond times", async () => {
    const path = join(root, "hello.txt");
    nodefs.utimesSync(path, 1_700_000_000.123456, 1_600_000_000.5);
    const st = nodefs.lstatSync(path, { bigint: true });
    const attr = await resolve("hello.txt");
    expect([attr.uid, attr.gid]).toEqual([Number(st.uid), Number(st.gid)]);
    expect(attr.mtime).toEqual({ sec: 1_600_000_000, nsec: 500_000_000 });
    expect(attr.atime.sec).toBe(1_700_000_000);
    expect(attr.atime.nsec).toBe(Number(st.atimeNs % 1_000_000_000n));
  });
});
