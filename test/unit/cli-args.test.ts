import { execFile } from "node:child_process";
import { copyFile, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { parseCli } from "../../src/machine/cli.ts";
import { DEBIAN_IMAGES_DIR, DEFAULT_IMAGES_DIR } from "../../src/machine/node-images.ts";

const bin = new URL("../../bin/virtiofs-web.js", import.meta.url).pathname;

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [bin, ...args], { timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

/** One clear line on stderr, no stack trace, non-zero exit. */
function expectOneLineError(r: { code: number; stderr: string }, pattern: RegExp): void {
  expect(r.code).not.toBe(0);
  expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
  expect(r.stderr).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

describe("parseCli", () => {
  it("parses run options", () => {
    expect(parseCli(["run", "--exec", "ls /", "--memory", "128", "--append", "loglevel=7", "--verbose"])).toEqual({
      mnt: true,
      share: undefined,
      tag: "share",
      cache: "auto",
      writeback: false,
      readonly: false,
      daxMiB: undefined,
      guests: 1,
      locks: "auto",
      exec: "ls /",
      browser: false,
      memoryMiB: 128,
      append: "loglevel=7",
      imagesDir: undefined,
      verbose: true,
    });
    expect(parseCli(["run", "--browser", "--share", "d", "--exec", "true"])).toMatchObject({ browser: true, share: "d", exec: "true" });
    // Several guests: the device keeps the locks and nothing is cached, unless asked otherwise.
    expect(parseCli(["run", "--guests", "4", "--exec", "true"])).toMatchObject({ guests: 4, locks: "device", cache: "never" });
    expect(parseCli(["run", "--guests", "2", "--cache", "auto", "--locks", "guest"])).toMatchObject({ guests: 2, locks: "guest", cache: "auto" });
    // A root: the DAX window maps it; /mnt only when asked for.
    expect(parseCli(["run", "--root", "/srv/tree", "--dax", "64"])).toMatchObject({ root: { kind: "dir", path: "/srv/tree" }, mnt: false, daxMiB: 64 });
    expect(parseCli(["run", "--root", "/srv/tree", "--memfs"])).toMatchObject({ root: { kind: "dir", path: "/srv/tree" }, mnt: true });
    expect(parseCli(["run", "--root-image", "img", "--root-overlay", "changes"])).toMatchObject({ root: { kind: "image", path: "img", overlay: "changes" }, mnt: false });
    const debian = parseCli(["run", "--root", "debian"]);
    expect(debian !== "help" && debian.root).toMatchObject({ kind: "image", debian: true, path: expect.stringMatching(/virtiofs-web\/rootfs\/debian\/image$/) });
    // --kernel names an images directory.
    expect(parseCli(["run", "--kernel", "debian", "--cache", "never"])).toMatchObject({ imagesDir: DEBIAN_IMAGES_DIR, cache: "never" });
    expect(parseCli(["run", "--kernel", "project", "--dax"])).toMatchObject({ imagesDir: undefined, daxMiB: 256 });
    expect(parseCli(["run", "--boot-timeout", "300"])).toMatchObject({ bootTimeoutMs: 300_000 });
    expect(parseCli(["run", "--dax", "64", "--dax-min", "1M"])).toMatchObject({ daxMiB: 64, daxInodeMinSize: 1 << 20 });
    expect(parseCli(["run", "--dax", "--dax-min", "65536"])).toMatchObject({ daxMiB: 256, daxInodeMinSize: 65536 });
    expect(parseCli(["run", "--dax", "--dax-min", "512k"])).toMatchObject({ daxInodeMinSize: 512 * 1024 });
    expect(parseCli([])).toBe("help");
    expect(parseCli(["run", "--help"])).toBe("help");
  });

  it.each([
    [["frobnicate"], /unknown command 'frobnicate'/],
    [["run", "--frobnicate"], /Unknown option '--frobnicate'/],
    [["run", "--memory", "lots"], /--memory takes a whole number of MiB/],
    [["run", "--memory", "8"], /--memory takes/],
    [["run", "stray"], /positional/],
    [["run", "--cache", "sometimes"], /--cache takes never, metadata, auto, always/],
    [["run", "--share", "/tmp", "--memfs"], /exclude each other/],
    [["run", "--browser"], /--browser needs --exec/],
    [["run", "--guests", "9"], /--guests takes a whole number from 1 to 8/],
    [["run", "--guests", "2", "--dax"], /--guests 2 and --dax exclude each other/],
    [["run", "--guests", "2", "--writeback"], /--guests 2 and --writeback exclude each other/],
    [["run", "--locks", "kernel"], /--locks takes guest, device, auto/],
    [["run", "--root", "t", "--tag", "root"], /--tag root is the root's/],
    [["run", "--root", "t", "--root-image", "i"], /--root and --root-image exclude each other/],
    [["run", "--boot-timeout", "soon"], /--boot-timeout takes a number of seconds/],
    [["run", "--root", "t", "--root-overlay", "o"], /--root-overlay keeps an image root's changes/],
    [["run", "--root", "t", "--browser", "--exec", "true"], /--root and --browser exclude each other/],
    [["run", "--kernel", "fedora"], /--kernel takes project or debian, not 'fedora'/],
    [["run", "--kernel", "debian", "--images", "d"], /--kernel and --images exclude each other/],
    [["run", "--kernel", "project", "--images", "d"], /--kernel and --images exclude each other/],
    [["run", "--kernel", "debian", "--dax", "64"], /--kernel debian and --dax exclude each other: Debian's kernel has no FUSE DAX/],
    [["run", "--dax-min", "1M"], /--dax-min chooses which files use the DAX window: it needs --dax/],
    [["run", "--dax", "--dax-min", "1MB"], /--dax-min takes a size in bytes \(a K, M or G suffix allowed, e.g. 1M\), not '1MB'/],
    [["run", "--restore-state", "s", "--dax-min", "1M"], /--restore-state and --dax-min exclude each other/],
  ])("rejects %j", (argv, msg) => {
    expect(() => parseCli(argv)).toThrow(msg);
  });
});

describe("virtiofs-web command errors", () => {
  it("an unknown flag: one line, exit 2", async () => {
    expectOneLineError(await cli("run", "--bogus"), /^virtiofs-web: Unknown option '--bogus'/);
  }, 30_000);

  it("missing images: one line, exit 1", async () => {
    const dir = await mkdtemp(join(tmpdir(), "vfsw-"));
    const r = await cli("run", "--images", dir, "--exec", "true");
    expectOneLineError(r, /guest manifest missing at .*manifest\.json/);
    expect(r.code).toBe(1);
  }, 30_000);

  it("a root image that is missing or not an index: one line, exit 2", async () => {
    const dir = await mkdtemp(join(tmpdir(), "vfsw-"));
    expectOneLineError(await cli("run", "--root-image", dir, "--exec", "true"), /^virtiofs-web: --root-image .*: ENOENT/);
    await writeFile(join(dir, "index.json"), "{\"format\": \"tar\"}");
    const r = await cli("run", "--root-image", dir, "--exec", "true");
    expectOneLineError(r, /^virtiofs-web: --root-image .*: index format "tar", not virtiofs-web-image/);
    expect(r.code).toBe(2);
  }, 30_000);

  it("an image whose sha256 differs from the manifest: one line, exit 1", async () => {
    const dir = await mkdtemp(join(tmpdir(), "vfsw-"));
    for (const f of ["manifest.json", "bios.bin", "initramfs.cpio"]) await copyFile(join(DEFAULT_IMAGES_DIR, f), join(dir, f));
    const kernel = await readFile(join(DEFAULT_IMAGES_DIR, "bzImage"));
    kernel[4096]! ^= 1;
    await writeFile(join(dir, "bzImage"), kernel);
    const r = await cli("run", "--images", dir, "--exec", "true");
    expectOneLineError(r, /guest image bzImage has sha256 .* the manifest says/);
    expect(r.code).toBe(1);
  }, 30_000);
});
