// Booting from a virtio-fs root: /init mounts the tag root, moves into it as switch_root would, and runs
// the framed command protocol from the initramfs's /vfsw bound on the new root's /run/vfsw, commands
// running with the tree's own programs.
// The tree here is a host directory holding the guest's own busybox (from the initramfs); the Debian
// userland is test/boot/debian-root.test.ts.
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bootGuest, createSampleTree, DEFAULT_IMAGES_DIR, HostDirFs, MemFs, text, type Guest, type GuestShare } from "../../src/node.ts";
import { cpioFile } from "../support/cpio.ts";

const APPLETS = ["sh", "cat", "grep", "readlink", "tr", "ls"];

/** A minimal Linux tree: busybox and a few applet links, the directories a root needs, one marker file. */
async function busyboxTree(dirs = ["dev", "proc", "sys", "run", "root", "etc", "mnt"]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "vfsw-root-"));
  const busybox = cpioFile(await readFile(join(DEFAULT_IMAGES_DIR, "initramfs.cpio")), "bin/busybox");
  await mkdir(join(dir, "bin"));
  await writeFile(join(dir, "bin/busybox"), busybox, { mode: 0o755 });
  for (const applet of APPLETS) await symlink("busybox", join(dir, "bin", applet));
  for (const d of dirs) await mkdir(join(dir, d));
  if (dirs.includes("etc")) await writeFile(join(dir, "etc/os-release"), "NAME=busybox-root\n");
  return dir;
}

const rootShare = async (dir: string): Promise<GuestShare> => ({ tag: "root", fs: await HostDirFs.open(dir, {}), mountPoint: "/" });

describe("a guest booted from a virtio-fs root", () => {
  let dir: string;
  let guest: Guest;
  beforeAll(async () => {
    dir = await busyboxTree();
    const sample = new MemFs();
    await createSampleTree(sample);
    guest = await bootGuest({ shares: [await rootShare(dir), { tag: "share", fs: sample, mountPoint: "/mnt" }] });
  }, 120_000);
  afterAll(async () => {
    await guest?.shutdown();
    await rm(dir, { recursive: true, force: true });
  });

  it("has the share as / and runs commands with the tree's programs", async () => {
    const r = await guest.run("grep ' / ' /proc/mounts; cat /etc/os-release; readlink /proc/1/exe; tr '\\0' ' ' < /proc/1/cmdline");
    expect(text(r.stderr)).toBe("");
    const [mount, os, exe, cmdline] = text(r.stdout).split("\n");
    expect(mount).toMatch(/^root \/ virtiofs rw[, ]/);
    expect(os).toBe("NAME=busybox-root");
    // init's stage 2, from the root's /run/vfsw (the initramfs's /vfsw), not from the initramfs's /bin.
    expect(exe).toBe("/run/vfsw/busybox");
    expect(cmdline).toBe("/run/vfsw/busybox sh /run/vfsw/init ");
  });

  it("writes into the host directory", async () => {
    const r = await guest.run("echo written > /root/new.txt && ls /root");
    expect(text(r.stdout)).toBe("new.txt\n");
    expect(await readFile(join(dir, "root/new.txt"), "utf8")).toBe("written\n");
  });

  it("mounts the other shares inside the root", async () => {
    const r = await guest.run("cat /mnt/hello.txt; grep ' /mnt ' /proc/mounts");
    expect(text(r.stdout)).toMatch(/^Hello from the browser!\nshare \/mnt virtiofs /);
  });
});

describe("an interactive boot of a tree with /sbin/init", () => {
  it("hands that init PID 1 in the root, the console its own", async () => {
    const dir = await busyboxTree();
    await mkdir(join(dir, "sbin"));
    const script = "#!/bin/sh\necho \"tree init: pid $$, $(grep ' / ' /proc/mounts)\"\nexec sh\n";
    await writeFile(join(dir, "sbin/init"), script, { mode: 0o755 });
    let out = "";
    const guest = await bootGuest({ interactive: true, shares: [await rootShare(dir)], onConsole: (b) => (out += new TextDecoder().decode(b)) });
    try {
      for (let waited = 0; !out.includes("tree init:") && waited < 30_000; waited += 100) await new Promise((r) => setTimeout(r, 100));
      expect(out).toMatch(/tree init: pid 1, root \/ virtiofs rw[, ]/);
    } finally {
      await guest.shutdown();
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe("a mount that fails is an error, not an empty directory", () => {
  it("a root without /run: the guest says what it lacks and halts", async () => {
    const dir = await busyboxTree(["dev", "proc", "sys"]);
    try {
      await expect(bootGuest({ shares: [await rootShare(dir)] })).rejects.toThrow(/could not start: root root has no \/run$/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it("a tag no device has: the CLI prints the guest's reason and exits 1", async () => {
    const bin = new URL("../../bin/virtiofs-web.js", import.meta.url).pathname;
    const r = await promisify(execFile)(process.execPath, [bin, "run", "--append", "vfsw.fs=nosuch:/x", "--exec", "echo should not run"]).then(
      () => ({ code: 0, stdout: "", stderr: "" }),
      (e: { code: number; stdout: string; stderr: string }) => e,
    );
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^virtiofs-web: the guest could not start: mounting nosuch on \/x failed: Invalid argument \(virtiofs; kernel: virtio-fs: tag <nosuch> not found\)\n$/);
  }, 120_000);
});
