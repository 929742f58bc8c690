import { createHash } from "node:crypto";
import { Volume } from "memfs";
import { describe, expect, it } from "vitest";
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, type FileAttr } from "../../src/fs/filesystem.ts";
import { createSampleTree, MemFs } from "../../src/fs/memfs.ts";
import { fsConformance, type FixtureItem } from "./fs-conformance.ts";

function buildVolume(items: readonly FixtureItem[]): Volume {
  const vol = new Volume();
  for (const item of items) {
    const path = `/${item.path}`;
    if (item.kind === "dir") vol.mkdirSync(path, { mode: item.mode });
    else if (item.kind === "file") vol.writeFileSync(path, item.data, { mode: item.mode });
    else if (item.kind === "symlink") vol.symlinkSync(item.target, path);
    else vol.linkSync(`/${item.existing}`, path);
  }
  return vol;
}

fsConformance("memfs", async (items) => {
  const vol = buildVolume(items);
  return {
    fs: new MemFs(vol),
    addFile: async (path) => vol.writeFileSync(`/${path}`, "new"),
    remove: async (path) => vol.unlinkSync(`/${path}`),
    cleanup: async () => {},
  };
});

describe("memfs backend", () => {
  it("reports the statfs capacity it was given and the space in use", async () => {
    const vol = new Volume();
    vol.writeFileSync("/f", new Uint8Array(10_000));
    const fs = new MemFs(vol, { capacity: 1 << 20, maxInodes: 100 });
    expect(await fs.statfs(fs.rootIno)).toEqual({
      blocks: 256,
      bfree: 256 - 3,
      bavail: 256 - 3,
      files: 100,
      ffree: 98, // the root and /f
      bsize: 4096,
      namelen: 255,
      frsize: 4096,
    });
  });

  it("gives memfs's times to the millisecond", async () => {
    const vol = new Volume();
    vol.writeFileSync("/f", "x");
    vol.utimesSync("/f", 1_700_000_000.25, 1_600_000_000.5);
    const attr = await new MemFs(vol).lookup(1, "f");
    expect(attr.atime).toEqual({ sec: 1_700_000_000, nsec: 250_000_000 });
    expect(attr.mtime).toEqual({ sec: 1_600_000_000, nsec: 500_000_000 });
  });
});

describe("createSampleTree", () => {
  const fs = new MemFs(createSampleTree());

  async function resolve(path: string): Promise<FileAttr> {
    let attr = await fs.getattr(fs.rootIno);
    for (const name of path.split("/")) attr = await fs.lookup(attr.ino, name);
    return attr;
  }

  async function read(path: string): Promise<Uint8Array> {
    const fh = await fs.open((await resolve(path)).ino, 0);
    const data = await fs.read(fh, 0, 4 << 20);
    await fs.release(fh);
    return data;
  }

  const decode = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

  it("is owned by root, with a 0755 root directory", async () => {
    expect(await fs.getattr(fs.rootIno)).toMatchObject({ mode: S_IFDIR | 0o755, uid: 0, gid: 0 });
    for (const path of ["README", "bin/hello.sh", "odd names/日本語.txt", "deepest"]) {
      expect(await resolve(path)).toMatchObject({ uid: 0, gid: 0 });
    }
  });

  it("has a README that explains the mount, and whose checksum matches the data file", async () => {
    const readme = decode(await read("README"));
    expect(readme).toContain("virtiofs.ko");
    const data = await read("data/random-1MiB.bin");
    expect(data.length).toBe(1 << 20);
    expect(readme).toContain(createHash("sha256").update(data).digest("hex"));
  });

  it("has an executable script, nested directories, symlinks, a hard link and odd names", async () => {
    expect(await resolve("bin/hello.sh")).toMatchObject({ mode: S_IFREG | 0o755 });
    expect(decode(await read("bin/hello.sh"))).toMatch(/^#!\/bin\/sh\n/);
    expect(decode(await read("docs/deep/deeper/deepest/bottom.txt"))).toContain("bottom");
    expect((await resolve("deepest")).mode & S_IFMT).toBe(S_IFLNK);
    expect(await fs.readlink((await resolve("deepest")).ino)).toBe("docs/deep/deeper/deepest");
    expect(await fs.readlink((await resolve("README.link")).ino)).toBe("README");
    const hello = await resolve("hello.txt");
    expect(hello.nlink).toBe(2);
    expect((await resolve("docs/hello-again.txt")).ino).toBe(hello.ino);
    for (const name of ["with spaces.txt", "ünïcødé.txt", "日本語.txt", "penguin 🐧.txt"]) {
      expect((await resolve(`odd names/${name}`)).mode).toBe(S_IFREG | 0o644);
    }
    expect((await resolve("empty")).nlink).toBe(2);
  });
});
