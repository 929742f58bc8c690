import { execFileSync } from "node:child_process";
import * as nodefs from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { O_CREAT, O_EXCL, O_RDWR, O_TRUNC, RENAME_EXCHANGE, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK } from "../../src/vfs/linux.ts";
import type { FileAttr } from "../../src/vfs/filesystem.ts";
import { HostDirFs, STORE_DIR } from "../../src/fs/hostdir/hostdir.ts";
import { errnoOf, FIXTURE, fsConformance, type FixtureItem } from "./fs-conformance.ts";

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

// As root, once with owners chowned for real and once with owners in the store; otherwise only the latter.
for (const ownership of process.getuid?.() === 0 ? (["host", "metadata"] as const) : (["metadata"] as const)) {
  fsConformance(
    `hostdir (owners: ${ownership})`,
    async (items, options) => {
      const tmp = await mkdtemp(join(tmpdir(), "vfsw-hostdir-"));
      buildTree(tmp, items);
      const fs = await HostDirFs.open(tmp, { ...options, ownership });
      return {
        fs,
        addFile: async (path) => nodefs.writeFileSync(join(tmp, path), "new"),
        remove: async (path) => nodefs.unlinkSync(join(tmp, path)),
        cleanup: async () => {
          await fs.close();
          await rm(tmp, { recursive: true, force: true });
        },
      };
    },
    { holeGranularity: undefined, timePrecisionNs: 1000 },
  );
}

const CRED = { uid: 4242, gid: 4343 };
const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const makedev = (major: number, minor: number): number => (major << 8) | minor;

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
    expect(await errnoOf(() => fs.lookup(evil.ino, "passwd"))).toBe("ENOTDIR");
    expect(await errnoOf(() => fs.opendir(evil.ino))).toBe("ENOTDIR");
    expect(await errnoOf(() => fs.open(evil.ino, 0))).toBe("ELOOP");
    const escape = await fs.lookup(fs.rootIno, "dir-escape");
    expect(await errnoOf(() => fs.lookup(escape.ino, "secret.txt"))).toBe("ENOTDIR");
  });

  it("cannot open a symlink to a file outside the root", async () => {
    for (const name of ["abs-escape", "rel-escape"]) {
      const link = await fs.lookup(fs.rootIno, name);
      expect(link.mode & S_IFMT).toBe(S_IFLNK);
      expect(await errnoOf(() => fs.open(link.ino, 0))).toBe("ELOOP");
    }
    expect(await fs.readlink((await fs.lookup(fs.rootIno, "rel-escape")).ino)).toBe("../outside/secret.txt");
  });

  it("does not follow a directory replaced by a symlink after lookup", async () => {
    const dir = await resolve("dir");
    const sub = await resolve("dir/sub");
    const leaf = await resolve("dir/sub/deeper/leaf.txt");
    nodefs.renameSync(join(root, "dir"), join(root, "dir.moved"));
    nodefs.symlinkSync(outside, join(root, "dir"));

    for (const ino of [dir.ino, sub.ino, leaf.ino]) expect(await errnoOf(() => fs.getattr(ino))).toBe("ESTALE");
    expect(await errnoOf(() => fs.lookup(dir.ino, "sub"))).toBe("ESTALE");
    expect(await errnoOf(() => fs.lookup(sub.ino, "deeper"))).toBe("ESTALE");
    expect(await errnoOf(() => fs.opendir(dir.ino))).toBe("ESTALE");
    expect(await errnoOf(() => fs.open(leaf.ino, 0))).toBe("ESTALE");
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
    expect(await errnoOf(() => fs.getattr(hello.ino))).toBe("ESTALE");
    expect(await errnoOf(() => fs.open(hello.ino, 0))).toBe("ESTALE");
  });

  it("treats a file replaced by another as stale, and the new one as a new inode", async () => {
    const old = await resolve("empty");
    nodefs.unlinkSync(join(root, "empty"));
    nodefs.writeFileSync(join(root, "other"), "hold the old inode number"); // keeps the host from reusing it
    nodefs.writeFileSync(join(root, "empty"), "replaced");
    expect(await errnoOf(() => fs.getattr(old.ino))).toBe("ESTALE");
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
    expect(await errnoOf(() => fs.open(fifo.ino, 0))).toBe("ENXIO");
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
    expect(await errnoOf(async () => fs.readlink((await fs.lookup(fs.rootIno, "bad-target")).ino))).toBe("EILSEQ");
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

  it("never writes outside the root through a symlink", async () => {
    const outsideBefore = nodefs.readdirSync(outside, { recursive: true }).sort();
    const secret = nodefs.lstatSync(join(outside, "secret.txt"), { bigint: true });
    expect(await errnoOf(() => fs.create(fs.rootIno, "abs-escape", 0o644, O_CREAT | O_EXCL | O_RDWR, CRED))).toBe("EEXIST");
    expect(await errnoOf(() => fs.create(fs.rootIno, "abs-escape", 0o644, O_CREAT | O_TRUNC | O_RDWR, CRED))).toBe("ELOOP");
    for (const name of ["abs-escape", "rel-escape"]) {
      const link = await fs.lookup(fs.rootIno, name);
      expect(await errnoOf(() => fs.open(link.ino, O_RDWR | O_TRUNC))).toBe("ELOOP");
      expect(await errnoOf(() => fs.setattr(link.ino, { size: 0 }))).toBe("EINVAL");
      expect(await errnoOf(() => fs.setattr(link.ino, { mode: 0o777 }))).toBe("EOPNOTSUPP");
      // Owners and times change the link itself.
      await fs.setattr(link.ino, { uid: 7, gid: 8, mtime: { sec: 1_000_000_000, nsec: 0 } });
      expect(nodefs.lstatSync(join(root, name)).mtimeMs).toBe(1e12);
      await fs.setxattr(link.ino, "trusted.x", text("v"), 0);
    }
    const escape = await fs.lookup(fs.rootIno, "dir-escape");
    const hello = await fs.lookup(fs.rootIno, "hello.txt");
    for (const call of [
      () => fs.mkdir(escape.ino, "x", 0o755, CRED),
      () => fs.create(escape.ino, "x", 0o644, O_CREAT | O_RDWR, CRED),
      () => fs.mknod(escape.ino, "x", S_IFIFO | 0o644, 0, CRED),
      () => fs.symlink(escape.ino, "x", "t", CRED),
      () => fs.link(hello.ino, escape.ino, "x"),
      () => fs.tmpfile(escape.ino, 0o644, O_RDWR, CRED),
      () => fs.rename(fs.rootIno, "hello.txt", escape.ino, "x", 0),
      () => fs.unlink(escape.ino, "secret.txt"),
      () => fs.rmdir(escape.ino, "sub")]) {
      expect(await errnoOf(() => call())).toBe("ENOTDIR");
    }
    // Renaming and removing symlinks touch the links, not what they point to.
    await fs.rename(fs.rootIno, "dir-escape", fs.rootIno, "renamed-escape", 0);
    await fs.rename(fs.rootIno, "renamed-escape", fs.rootIno, "evil", RENAME_EXCHANGE);
    await fs.unlink(fs.rootIno, "evil");
    await fs.unlink(fs.rootIno, "renamed-escape");
    // A directory swapped for a symlink after lookup is stale for every change.
    const dir = await fs.lookup(fs.rootIno, "dir");
    nodefs.renameSync(join(root, "dir"), join(root, "dir.moved"));
    nodefs.symlinkSync(outside, join(root, "dir"));
    for (const call of [
      () => fs.mkdir(dir.ino, "x", 0o755, CRED),
      () => fs.create(dir.ino, "x", 0o644, O_CREAT | O_RDWR, CRED),
      () => fs.symlink(dir.ino, "x", "t", CRED),
      () => fs.unlink(dir.ino, "secret.txt"),
      () => fs.setattr(dir.ino, { mode: 0o700 }),
      () => fs.setxattr(dir.ino, "user.x", text("v"), 0)]) {
      expect(await errnoOf(() => call())).toBe("ESTALE");
    }
    expect(nodefs.readdirSync(outside, { recursive: true }).sort()).toEqual(outsideBefore);
    expect(nodefs.readFileSync(join(outside, "secret.txt"), "utf8")).toBe("SECRET");
    const after = nodefs.lstatSync(join(outside, "secret.txt"), { bigint: true });
    expect([after.mode, after.uid, after.mtimeNs, after.ctimeNs]).toEqual([secret.mode, secret.uid, secret.mtimeNs, secret.ctimeNs]);
    expect(nodefs.lstatSync("/etc").isDirectory()).toBe(true);
  });
});

describe("hostdir metadata store", () => {
  let tmp: string;
  let fs: HostDirFs;
  const journal = (): string => join(tmp, STORE_DIR, "metadata.jsonl");

  beforeEach(async () => {
    tmp = await mkdtemp(join(tmpdir(), "vfsw-store-"));
    buildTree(tmp, FIXTURE);
    fs = await HostDirFs.open(tmp, { ownership: "metadata" });
  });
  afterEach(async () => {
    await fs.close();
    await rm(tmp, { recursive: true, force: true });
  });

  async function reopen(options: Parameters<typeof HostDirFs.open>[1] = { ownership: "metadata" }): Promise<void> {
    await fs.close();
    fs = await HostDirFs.open(tmp, options);
  }

  /** The live records of the journal, by key. */
  function records(): Map<string, Record<string, unknown>> {
    const live = new Map<string, Record<string, unknown>>();
    for (const line of nodefs.readFileSync(journal(), "utf8").split("\n").slice(1, -1)) {
      const r = JSON.parse(line) as Record<string, unknown>;
      if (Object.keys(r).length === 1) live.delete(r.key as string);
      else live.set(r.key as string, r);
    }
    return live;
  }

  const hostIno = (path: string): string => String(nodefs.lstatSync(join(tmp, path)).ino);

  it("keeps xattrs, special files, set-id bits, modes and owners across reopening", async () => {
    const hello = await fs.lookup(fs.rootIno, "hello.txt");
    const acl = Uint8Array.from([2, 0, 0, 0, 1, 0, 6, 0, 255, 255, 255, 255]);
    await fs.setxattr(hello.ino, "user.comment", text("kept"), 0);
    await fs.setxattr(hello.ino, "system.posix_acl_access", acl, 0);
    await fs.setattr(hello.ino, { mode: 0o4755, uid: 4242, gid: 4343 });
    const devices = [
      { name: "null", mode: S_IFCHR | 0o666, rdev: makedev(1, 3) },
      { name: "fifo", mode: S_IFIFO | 0o640, rdev: 0 },
      { name: "sock", mode: S_IFSOCK | 0o777, rdev: 0 },
    ];
    for (const d of devices) await fs.mknod(fs.rootIno, d.name, d.mode, d.rdev, CRED);
    await fs.mkdir(fs.rootIno, "locked", 0o000, { uid: 7, gid: 8 });
    await reopen();
    expect(await fs.lookup(fs.rootIno, "hello.txt")).toMatchObject({ mode: S_IFREG | 0o4755, uid: 4242, gid: 4343 });
    const again = await fs.lookup(fs.rootIno, "hello.txt");
    expect(await fs.getxattr(again.ino, "user.comment")).toEqual(text("kept"));
    expect(await fs.getxattr(again.ino, "system.posix_acl_access")).toEqual(acl);
    for (const d of devices) {
      expect(await fs.lookup(fs.rootIno, d.name)).toMatchObject({ mode: d.mode, rdev: d.rdev, uid: CRED.uid, gid: CRED.gid });
      // On the host: an empty regular file the server can read and write.
      const st = nodefs.lstatSync(join(tmp, d.name));
      expect([st.isFile(), st.size, st.mode & 0o600]).toEqual([true, 0, 0o600]);
    }
    const locked = await fs.lookup(fs.rootIno, "locked");
    expect(locked).toMatchObject({ mode: S_IFDIR, uid: 7, gid: 8 });
    expect(await fs.mkdir(locked.ino, "inside", 0o755, CRED)).toMatchObject({ mode: S_IFDIR | 0o755 });
    const host = nodefs.lstatSync(join(tmp, "hello.txt"));
    expect([host.mode & 0o7777, host.uid]).toEqual([0o755, process.getuid!()]); // no set-uid bit on the host
    expect(nodefs.lstatSync(join(tmp, "locked")).mode & 0o777).toBe(0o700);
  });

  it("writes the journal compactly and drops a record with its inode's last link", async () => {
    const fifo = await fs.mknod(fs.rootIno, "fifo", S_IFIFO | 0o644, 0, CRED);
    await fs.link(fifo.ino, fs.rootIno, "fifo2");
    const key = hostIno("fifo");
    await fs.setxattr(fifo.ino, "user.a", text("1"), 0);
    await fs.setxattr(fifo.ino, "user.a", text("2"), 0);
    expect(nodefs.readFileSync(journal(), "utf8").split("\n")[0]).toBe('{"virtiofs-web-metadata":1}');
    expect(records().get(key)).toMatchObject({ mode: S_IFIFO | 0o644, xattrs: { "user.a": "Mg==" } });
    await fs.unlink(fs.rootIno, "fifo");
    expect(records().has(key)).toBe(true);
    await fs.unlink(fs.rootIno, "fifo2");
    expect(records().has(key)).toBe(false);

    const { attr, fh } = await fs.create(fs.rootIno, "open", 0o644, O_CREAT | O_RDWR, CRED);
    const openKey = hostIno("open");
    await fs.unlink(fs.rootIno, "open");
    expect(await fs.getattr(attr.ino)).toMatchObject({ nlink: 0, uid: CRED.uid });
    expect(records().has(openKey)).toBe(true);
    await fs.release(fh);
    expect(records().has(openKey)).toBe(false);

    const dir = await fs.mkdir(fs.rootIno, "d", 0o1777, CRED);
    const dirKey = hostIno("d");
    await fs.mkdir(dir.ino, "sub", 0o755, CRED);
    await fs.rename(dir.ino, "sub", fs.rootIno, "empty-dir", 0);
    await fs.rmdir(fs.rootIno, "d");
    expect(records().has(dirKey)).toBe(false);

    const lines = nodefs.readFileSync(journal(), "utf8").split("\n").length;
    await reopen();
    const compacted = nodefs.readFileSync(journal(), "utf8").split("\n");
    expect(compacted.length).toBeLessThan(lines);
    expect(compacted.length - 2).toBe(records().size);
    expect(nodefs.readdirSync(join(tmp, STORE_DIR)).sort()).toEqual(["metadata.jsonl"]);
  });

  it("ignores a torn last line, and refuses a journal corrupt elsewhere", async () => {
    await fs.setxattr((await fs.lookup(fs.rootIno, "hello.txt")).ino, "user.a", text("1"), 0);
    await fs.close();
    nodefs.appendFileSync(journal(), '{"key":"1234","mo');
    fs = await HostDirFs.open(tmp, { ownership: "metadata" });
    expect(await fs.getxattr((await fs.lookup(fs.rootIno, "hello.txt")).ino, "user.a")).toEqual(text("1"));
    expect(nodefs.readFileSync(journal(), "utf8").endsWith("\n")).toBe(true);
    await fs.close();
    const lines = nodefs.readFileSync(journal(), "utf8").split("\n");
    nodefs.writeFileSync(journal(), [lines[0], "not json", ...lines.slice(1)].join("\n"));
    await expect(HostDirFs.open(tmp)).rejects.toThrow(/line 2 is corrupt/);
    nodefs.writeFileSync(journal(), "something else\n");
    await expect(HostDirFs.open(tmp)).rejects.toThrow(/not a virtiofs-web metadata journal/);
    nodefs.rmSync(join(tmp, STORE_DIR), { recursive: true });
    fs = await HostDirFs.open(tmp);
  });

  it("ignores a record made for an earlier inode with the same number", async () => {
    const st = nodefs.lstatSync(join(tmp, "hello.txt"), { bigint: true });
    if (st.birthtimeNs === 0n) return; // the host filesystem keeps no birth times: nothing to tell inodes apart by
    await fs.setxattr((await fs.lookup(fs.rootIno, "hello.txt")).ino, "user.a", text("1"), 0);
    await fs.close();
    nodefs.appendFileSync(journal(), `${JSON.stringify({ key: String(st.ino), gen: "1", mode: S_IFCHR | 0o600 })}\n`);
    fs = await HostDirFs.open(tmp, { ownership: "metadata" });
    const hello = await fs.lookup(fs.rootIno, "hello.txt");
    expect(hello.mode).toBe(S_IFREG | 0o644);
    expect(await fs.listxattr(hello.ino)).toEqual([]);
  });

  it("hides its directory from the guest, who can neither reach nor make that name", async () => {
    await fs.setxattr(fs.rootIno, "user.a", text("1"), 0);
    expect(nodefs.statSync(join(tmp, STORE_DIR)).isDirectory()).toBe(true);
    const dh = await fs.opendir(fs.rootIno);
    expect((await fs.readdir(dh, 0)).map((e) => e.name)).not.toContain(STORE_DIR);
    await fs.releasedir(dh);
    expect((await fs.getattr(fs.rootIno)).nlink).toBe(2 + 3);
    const hello = await fs.lookup(fs.rootIno, "hello.txt");
    expect(await errnoOf(() => fs.lookup(fs.rootIno, STORE_DIR))).toBe("ENOENT");
    for (const call of [() => fs.unlink(fs.rootIno, STORE_DIR), () => fs.rmdir(fs.rootIno, STORE_DIR), () => fs.rename(fs.rootIno, STORE_DIR, fs.rootIno, "x", 0)]) {
      expect(await errnoOf(() => call())).toBe("ENOENT");
    }
    for (const call of [
      () => fs.mkdir(fs.rootIno, STORE_DIR, 0o755, CRED),
      () => fs.create(fs.rootIno, STORE_DIR, 0o644, O_CREAT | O_RDWR, CRED),
      () => fs.mknod(fs.rootIno, STORE_DIR, S_IFREG | 0o644, 0, CRED),
      () => fs.symlink(fs.rootIno, STORE_DIR, "t", CRED),
      () => fs.link(hello.ino, fs.rootIno, STORE_DIR),
      () => fs.rename(fs.rootIno, "hello.txt", fs.rootIno, STORE_DIR, 0),
      () => fs.rename(fs.rootIno, "hello.txt", fs.rootIno, STORE_DIR, RENAME_EXCHANGE)]) {
      expect(await errnoOf(() => call())).toBe("EPERM");
    }
    const dir = await fs.lookup(fs.rootIno, "dir");
    expect(await fs.mkdir(dir.ino, STORE_DIR, 0o755, CRED)).toMatchObject({ mode: S_IFDIR | 0o755 });
    expect(nodefs.readdirSync(join(tmp, STORE_DIR)).sort()).toEqual(["metadata.jsonl"]);
  });

  it("leaves the directory untouched when read-only, and still reports a store made before", async () => {
    await fs.close();
    const fresh = await mkdtemp(join(tmpdir(), "vfsw-ro-"));
    buildTree(fresh, FIXTURE);
    fs = await HostDirFs.open(fresh, { readOnly: true });
    await fs.lookup(fs.rootIno, "hello.txt");
    await fs.syncfs();
    expect(nodefs.existsSync(join(fresh, STORE_DIR))).toBe(false);
    await fs.close();
    await rm(fresh, { recursive: true });

    fs = await HostDirFs.open(tmp, { ownership: "metadata" });
    await fs.mknod(fs.rootIno, "null", S_IFCHR | 0o666, makedev(1, 3), CRED);
    const journalBefore = nodefs.readFileSync(journal(), "utf8");
    await reopen({ readOnly: true });
    expect(await fs.lookup(fs.rootIno, "null")).toMatchObject({ mode: S_IFCHR | 0o666, rdev: makedev(1, 3) });
    expect(nodefs.readFileSync(journal(), "utf8")).toBe(journalBefore);
  });

  it("removes the files of unnamed O_TMPFILE inodes at release, at close, and those a crash left", async () => {
    const tmpfiles = (): string[] => nodefs.readdirSync(join(tmp, STORE_DIR)).filter((n) => n.startsWith("tmpfile-"));
    const a = await fs.tmpfile(fs.rootIno, 0o600, O_RDWR, CRED);
    await fs.write(a.fh, 0, text("gone"));
    expect(tmpfiles().length).toBe(1);
    await fs.release(a.fh);
    expect(tmpfiles()).toEqual([]);
    await fs.tmpfile(fs.rootIno, 0o600, O_RDWR, CRED);
    await reopen();
    expect(tmpfiles()).toEqual([]);
    await fs.close();
    nodefs.writeFileSync(join(tmp, STORE_DIR, "tmpfile-0123456789abcdef"), "left by a crash");
    fs = await HostDirFs.open(tmp, { ownership: "metadata" });
    expect(tmpfiles()).toEqual([]);
  });

  it("keeps the guest's owners and modes in the store without chown rights", async () => {
    const { attr, fh } = await fs.create(fs.rootIno, "mine", 0o400, O_CREAT | O_RDWR, CRED);
    await fs.release(fh);
    expect(attr).toMatchObject({ mode: S_IFREG | 0o400, uid: CRED.uid, gid: CRED.gid });
    const host = nodefs.lstatSync(join(tmp, "mine"));
    expect([host.mode & 0o7777, host.uid, host.gid]).toEqual([0o600, process.getuid!(), process.getgid!()]);
    expect(await fs.setattr(attr.ino, { uid: process.getuid!(), gid: process.getgid!(), mode: 0o600 })).toMatchObject({ mode: S_IFREG | 0o600 });
    expect(records().has(hostIno("mine"))).toBe(false); // the host holds all of it again
  });

  it.runIf(process.getuid?.() === 0)("gives the guest's owners and modes to the host as root", async () => {
    await reopen({ ownership: "host" });
    const { attr, fh } = await fs.create(fs.rootIno, "theirs", 0o4750, O_CREAT | O_RDWR, CRED);
    await fs.release(fh);
    expect(attr).toMatchObject({ mode: S_IFREG | 0o4750, uid: CRED.uid, gid: CRED.gid });
    const host = nodefs.lstatSync(join(tmp, "theirs"));
    expect([host.mode & 0o7777, host.uid, host.gid]).toEqual([0o750, CRED.uid, CRED.gid]);
    expect(records().get(hostIno("theirs"))).toEqual({ key: hostIno("theirs"), gen: expect.any(String), mode: S_IFREG | 0o4750 });
  });
});
