// The real virtiofs.ko in a real v86 guest mounts the device and walks and reads trees from memfs and
// from a host directory; the host side checks what the guest saw against the backend.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { Volume } from "memfs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { v86Cpu } from "../../src/machine/v86-bus.ts";
import { errnoOf } from "../unit/fs-conformance.ts";
import { bootGuest, createSampleTree, describeRequest, fuseOpcodeName, HostDirFs, MemFs, STORE_DIR, text, type FileSystem, type FuseObserver, type Guest } from "../../src/node.ts";

const sh = async (g: Guest, cmd: string): Promise<string> => {
  const r = await g.run(cmd);
  if (r.status !== 0) throw new Error(`'${cmd}' exited ${r.status}: ${text(r.stderr)}`);
  return text(r.stdout);
};
/** EFLAGS.IF */
const FLAG_INTERRUPT = 1 << 9;
const sha256 = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");

/** Paths under a memfs volume, as `find` prints them under /mnt. */
function memfsPaths(vol: Volume, dir = "/"): string[] {
  return (vol.readdirSync(dir) as string[]).flatMap((name) => {
    const p = join(dir, name);
    return [p, ...(vol.lstatSync(p).isDirectory() ? memfsPaths(vol, p) : [])];
  });
}

async function hostPaths(root: string, dir = ""): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(root, dir), { withFileTypes: true })) {
    if (dir === "" && e.name === STORE_DIR) continue; // the backend's own metadata, hidden from the guest
    const p = join("/", dir, e.name);
    out.push(p, ...(e.isDirectory() ? await hostPaths(root, p) : []));
  }
  return out;
}

interface Backend {
  name: string;
  make(): Promise<{ fs: FileSystem; paths: () => Promise<string[]>; read: (p: string) => Uint8Array | string }>;
}

const backends: Backend[] = [
  {
    name: "memfs",
    make: async () => {
      const fs = new MemFs();
      await createSampleTree(fs);
      const vol = fs.vol;
      return { fs, paths: async () => memfsPaths(vol), read: (p) => vol.readFileSync(p) as Uint8Array };
    },
  },
  {
    name: "hostdir",
    make: async () => {
      const root = await mkdtemp(join(tmpdir(), "vfsw-share-"));
      await mkdir(join(root, "sub/deeper"), { recursive: true });
      await writeFile(join(root, "hello.txt"), "Hello from the host!\n");
      await writeFile(join(root, "sub/deeper/data.bin"), new Uint8Array(200_000).map((_, i) => (i * 13) ^ (i >> 8)));
      for (let i = 0; i < 100; i++) await writeFile(join(root, "sub", `f${i}`), `file ${i}\n`);
      await symlink("hello.txt", join(root, "link"));
      await symlink("/etc/passwd", join(root, "outside"));
      const { readFileSync } = await import("node:fs");
      return { fs: await HostDirFs.open(root), paths: () => hostPaths(root), read: (p) => readFileSync(join(root, p)) };
    },
  },
];

describe.each(backends)("virtiofs.ko over the $name backend", (backend) => {
  let guest: Guest;
  let b: Awaited<ReturnType<Backend["make"]>>;
  beforeAll(async () => {
    b = await backend.make();
    guest = await bootGuest({ shares: [{ tag: "share", fs: b.fs, mountPoint: "/mnt" }] });
  });
  afterAll(() => guest?.shutdown());

  it("is mounted by /init as virtiofs", async () => {
    expect(await sh(guest, "grep ' /mnt ' /proc/mounts")).toMatch(/^share \/mnt virtiofs rw/);
  });

  it("lists the same tree as the backend (find | wc -l, and every path)", async () => {
    const expected = (await b.paths()).sort();
    expect(Number(await sh(guest, "find /mnt -mindepth 1 | wc -l"))).toBe(expected.length);
    const listed = (await sh(guest, "cd /mnt && find . -mindepth 1")).trim().split("\n").map((p) => p.slice(1)).sort();
    expect(listed).toEqual(expected);
  });

  it("reads every regular file byte for byte (sha256 on both sides)", async () => {
    const files = (await sh(guest, "cd /mnt && find . -type f")).trim().split("\n").map((p) => p.slice(1));
    expect(files.length).toBeGreaterThan(3);
    const sums = await sh(guest, `cd /mnt && sha256sum ${files.map((f) => `'.${f}'`).join(" ")}`);
    for (const line of sums.trim().split("\n")) {
      const [sum, path] = [line.slice(0, 64), line.slice(66).slice(1)];
      expect(sum, path).toBe(sha256(b.read(path)));
    }
  });

  it("shows symlinks as symlinks and never follows one out of the tree on the host", async () => {
    const links = (await sh(guest, "cd /mnt && find . -type l")).trim().split("\n");
    expect(links.length).toBeGreaterThan(0);
    if (backend.name === "hostdir") {
      expect(await sh(guest, "readlink /mnt/outside")).toBe("/etc/passwd\n");
      // The guest resolves an absolute link in its own namespace, never the host's.
      expect(await sh(guest, "cat /mnt/link")).toBe("Hello from the host!\n");
    }
  });

  it("ls -la works on every directory", async () => {
    const r = await guest.run("ls -laR /mnt > /dev/null");
    expect(r.status).toBe(0);
    expect(text(r.stderr)).toBe("");
  });

  it("writes reach the backend: what the guest writes and syncs, the host reads", async () => {
    await sh(guest, "echo written-in-guest > /mnt/from-guest && mkdir -p /mnt/made/here && sync");
    expect(new TextDecoder().decode(b.read("/from-guest") as Uint8Array)).toBe("written-in-guest\n");
    await sh(guest, "rm -r /mnt/from-guest /mnt/made");
    expect((await b.paths()).filter((p) => p.startsWith("/from-guest") || p.startsWith("/made"))).toEqual([]);
  });

  it("the device is 1af4:105a, bound to virtio-pci, with the virtiofs driver on its virtio device", async () => {
    const out = await sh(
      guest,
      `for d in /sys/bus/pci/devices/*; do
         if [ "$(cat $d/vendor):$(cat $d/device)" = 0x1af4:0x105a ]; then
           echo pci=$(basename $(readlink $d/driver)); for v in $d/virtio*; do echo virtio=$(basename $(readlink $v/driver)); done
         fi
       done`,
    );
    expect(out).toBe("pci=virtio-pci\nvirtio=virtiofs\n");
  });

  it("leaves no virtio or fuse error in dmesg", async () => {
    const log = await sh(guest, "dmesg");
    expect(log).toMatch(/fuse: init \(API version 7\.38\)/);
    const bad = log.split("\n").filter((l) => /virtio|fuse/i.test(l) && /err|fail|warn|bug|unable|invalid/i.test(l));
    expect(bad).toEqual([]);
  });

  it("umount gives every inode back; mounting again works", async () => {
    await sh(guest, "ls -laR /mnt > /dev/null");
    expect(guest.shares[0]!.server.nodeCount).toBeGreaterThan(1);
    await sh(guest, "umount /mnt");
    expect(guest.shares[0]!.server.nodeCount).toBe(1);
    expect(await sh(guest, "grep -c virtiofs /proc/mounts || true")).toBe("0\n");
    await sh(guest, "mount -t virtiofs share /mnt");
    expect(Number(await sh(guest, "find /mnt -mindepth 1 | wc -l"))).toBe((await b.paths()).length);
  });

  it("survives a reboot of the guest inside the same emulator and mounts again", async () => {
    await sh(guest, "ls -R /mnt > /dev/null");
    await guest.reboot();
    expect(await sh(guest, "grep ' /mnt ' /proc/mounts")).toMatch(/virtiofs/);
    expect(Number(await sh(guest, "find /mnt -mindepth 1 | wc -l"))).toBe((await b.paths()).length);
    expect(await sh(guest, "dmesg | grep -ci 'virtio.*err' || true")).toBe("0\n");
  });
});

describe("virtiofs-web run --share", () => {
  it("serves a host directory: cat /mnt/hello prints its content", async () => {
    const d = await mkdtemp(join(tmpdir(), "vfsw-d-"));
    await writeFile(join(d, "hello"), "hi\n");
    const bin = new URL("../../bin/virtiofs-web.js", import.meta.url).pathname;
    const { stdout } = await promisify(execFile)(process.execPath, [bin, "run", "--share", d, "--exec", "cat /mnt/hello"]);
    expect(stdout).toBe("hi\n");
  });

  it("--browser: the guest runs in headless Chromium's Worker, on the same directory, with the command's status", async () => {
    const d = await mkdtemp(join(tmpdir(), "vfsw-b-"));
    await writeFile(join(d, "x"), "from the host\n");
    const bin = new URL("../../bin/virtiofs-web.js", import.meta.url).pathname;
    const r = await promisify(execFile)(process.execPath, [bin, "run", "--browser", "--share", d, "--exec", "cat /mnt/x; echo from the guest > /mnt/y; echo oops >&2; exit 7"]).catch(
      (e: { code: number; stdout: string; stderr: string }) => e,
    );
    expect(r).toMatchObject({ code: 7, stdout: "from the host\n", stderr: "oops\n" });
    expect(await readFile(join(d, "y"), "utf8")).toBe("from the guest\n");
  });

  it("a missing directory is one clear error", async () => {
    const bin = new URL("../../bin/virtiofs-web.js", import.meta.url).pathname;
    const r = await promisify(execFile)(process.execPath, [bin, "run", "--share", "/nonexistent/dir", "--exec", "true"]).catch((e: { code: number; stderr: string }) => e);
    expect(r).toMatchObject({ code: 2, stderr: expect.stringMatching(/^virtiofs-web: --share \/nonexistent\/dir: .*\n$/) });
  });
});

describe("names the guest looked up and missed", () => {
  let guest: Guest;
  const lookups = new Map<string, number>();
  const creates = new Map<string, number>();
  const observer = (tag: string): FuseObserver => ({
    request: (t) => {
      const { op, args } = describeRequest(t.opcode, t.args);
      const counts = op === "FUSE_LOOKUP" ? lookups : op === "FUSE_CREATE" ? creates : undefined;
      if (!counts) return;
      const key = `${tag}:${args.name}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    },
    reply: () => {},
  });
  const auto = new MemFs();
  const always = new MemFs();
  beforeAll(async () => {
    guest = await bootGuest({
      shares: [
        { tag: "always", fs: always, cache: "always", mountPoint: "/always", observer: observer("always") },
        { tag: "auto", fs: auto, cache: "auto", mountPoint: "/auto", observer: observer("auto") },
        { tag: "never", fs: new MemFs(), cache: "never", mountPoint: "/never", observer: observer("never") },
      ],
    });
  });
  afterAll(() => guest?.shutdown());

  it("keeps a miss as a negative dentry for the entry timeout; the guest's own create replaces it", async () => {
    await sh(guest, "for i in 1 2 3; do stat /always/nope /never/nope 2>/dev/null; done; true");
    expect(lookups.get("always:nope")).toBe(1);
    expect(lookups.get("never:nope")).toBe(3);
    expect(await sh(guest, "echo made > /always/nope && cat /always/nope")).toBe("made\n");
  });

  it("an exclusive create trusts a negative dentry; EEXIST from the device makes it stale (guest/patches/0005)", async () => {
    // busybox tar's order: remove the name (a miss), then open it O_CREAT|O_EXCL (set -C: noclobber).
    await sh(guest, "for i in 1 2 3; do rm -f /always/x$i; (set -C; : > /always/x$i); done");
    for (const i of [1, 2, 3]) expect(lookups.get(`always:x${i}`)).toBe(1);
    // A name the host makes while the guest holds a negative dentry for it: the create says EEXIST, and
    // the next lookup asks again instead of trusting the dentry for the rest of its long timeout.
    await sh(guest, "stat /always/late 2>/dev/null; true");
    always.vol.writeFileSync("/late", "from the host\n");
    expect(await sh(guest, "(set -C; : > /always/late) 2>&1 | grep -c 'File exists'; cat /always/late")).toBe("1\nfrom the host\n");
  });

  it("creates a name it never looked up without a LOOKUP; a name that exists is looked up after the create fails (guest/patches/0008)", async () => {
    expect(await sh(guest, "echo new > /always/fresh && stat -c %s /always/fresh && cat /always/fresh")).toBe("4\nnew\n");
    expect(lookups.get("always:fresh")).toBeUndefined(); // nor for the stat: the created name is in the dcache
    expect(creates.get("always:fresh")).toBe(1);
    // Names the host made, unknown to the guest: each open(O_CREAT) means what it always did.
    always.vol.writeFileSync("/old", "older and longer\n");
    always.vol.mkdirSync("/dir");
    always.vol.symlinkSync("target", "/link");
    expect(await sh(guest, "echo new > /always/old; cat /always/old")).toBe("new\n");
    expect(await sh(guest, "(: > /always/dir) 2>&1; true")).toMatch(/Is a directory/);
    expect(await sh(guest, "echo via > /always/link; cat /always/target")).toBe("via\n");
    for (const name of ["old", "dir", "link"]) {
      expect(creates.get(`always:${name}`)).toBe(1); // the exclusive attempt, nothing more
      expect(lookups.get(`always:${name}`)).toBe(1);
    }
    expect(creates.get("always:target")).toBe(1);
    expect(lookups.get("always:target")).toBeUndefined();
  });

  it("with cache=auto, sees a name added behind its back once the second has passed", async () => {
    await sh(guest, "stat /auto/late 2>/dev/null; true");
    auto.vol.writeFileSync("/late", "from the host\n");
    expect(await sh(guest, "sleep 2; cat /auto/late")).toBe("from the host\n");
    expect(lookups.get("auto:late")).toBe(2);
  });
});

describe("how requests end (guest/patches/0007: in the interrupt handler, or in a worker)", () => {
  let guest: Guest;
  const fs = new MemFs();
  beforeAll(async () => {
    for (let i = 0; i < 8; i++) fs.vol.writeFileSync(`/f${i}`, `file ${i} `.repeat(100 + i));
    guest = await bootGuest({ shares: [{ tag: "never", fs, cache: "never", mountPoint: "/mnt" }] });
  });
  afterAll(() => guest?.shutdown());

  it("eight readers at once each get their own replies", async () => {
    await sh(guest, "for i in 0 1 2 3 4 5 6 7; do (for j in $(seq 25); do cat /mnt/f$i; done > /tmp/r$i) & done; wait");
    for (let i = 0; i < 8; i++) expect(await sh(guest, `cat /tmp/r${i}`)).toBe(`file ${i} `.repeat(100 + i).repeat(25));
  });

  it("a waiter signalled while the device holds its request ends when the device answers, and the share goes on", async () => {
    const state = async (pid: string) => (await sh(guest, `cut -d' ' -f3 /proc/${pid}/stat 2>/dev/null; true`)).trim();
    const poll = (pid: string) => expect.poll(() => state(pid), { timeout: 5000 });
    const { device } = guest.shares[0]!;
    device.pause();
    try {
      const pid = (await sh(guest, "stat /mnt/held > /dev/null 2>&1 & echo $!")).trim();
      await poll(pid).toBe("S"); // request_wait_answer(): any signal wakes it
      // USR1 is fatal: the request is marked FR_INTERRUPTED and the task waits on, unkillable, for the reply.
      await sh(guest, `kill -USR1 ${pid}`);
      await poll(pid).toBe("D");
      device.resume();
      await poll(pid).toMatch(/^Z?$/); // gone, or a zombie
    } finally {
      device.resume();
    }
    expect(await sh(guest, "cat /mnt/f1")).toBe(`file 1 `.repeat(101));
    const bad = (await sh(guest, "dmesg")).split("\n").filter((l) => /WARNING|BUG|Oops|(virtio|fuse).*(err|fail)/i.test(l));
    expect(bad).toEqual([]);
  });
});

describe("file capabilities (FUSE_HANDLE_KILLPRIV_V2)", () => {
  let guest: Guest;
  const fs = new MemFs();
  const sent = new Map<string, number>();
  const observer: FuseObserver = {
    request: (t) => {
      // An xattr request by its name (after fuse_getxattr_in's 8 bytes, or REMOVEXATTR's none).
      const op = fuseOpcodeName(t.opcode);
      const at = op === "FUSE_GETXATTR" ? 8 : 0;
      const key = op === "FUSE_GETXATTR" || op === "FUSE_REMOVEXATTR" ? `${op} ${new TextDecoder().decode(t.args.subarray(at)).replace(/\0.*$/s, "")}` : String(op);
      sent.set(key, (sent.get(key) ?? 0) + 1);
    },
    reply: () => {},
  };
  beforeAll(async () => {
    guest = await bootGuest({ shares: [{ tag: "caps", fs, cache: "auto", mountPoint: "/mnt", observer }] });
  });
  afterAll(() => guest?.shutdown());

  it("the guest asks nothing before a write or chown (guest/patches/0004); the device drops what the host set", async () => {
    sent.clear();
    // tar's order per file: create, write, chown, chmod, utimes; then more writes and a truncate.
    await sh(guest, "cd /mnt && for i in 1 2 3; do echo $i > f$i && chown 1:1 f$i && chmod 640 f$i && touch -d @1000 f$i && echo more >> f$i && truncate -s 1 f$i; done");
    // (chmod still fetches each new file's POSIX ACL once: system.posix_acl_access.)
    expect(sent.get("FUSE_GETXATTR security.capability") ?? 0).toBe(0);
    expect(sent.get("FUSE_REMOVEXATTR security.capability") ?? 0).toBe(0);
    expect(sent.get("FUSE_SETATTR")).toBeGreaterThanOrEqual(3 * 4);

    // Capabilities set on the host side, behind the guest's back: its next write drops them.
    const caps = Uint8Array.from([0, 0, 0, 2, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    const { ino } = await fs.lookup(fs.rootIno, "f1");
    await fs.setxattr(ino, "security.capability", caps, 0);
    await sh(guest, "echo again >> /mnt/f1");
    expect(await errnoOf(() => fs.getxattr(ino, "security.capability"))).toBe("ENODATA");
    await fs.setxattr(ino, "security.capability", caps, 0);
    await sh(guest, "chown 2:2 /mnt/f1");
    expect(await errnoOf(() => fs.getxattr(ino, "security.capability"))).toBe("ENODATA");
    fs.forget(ino, 1);
  });
});

describe("a PCI interrupt line shared by several functions (src/machine/v86-pci-irq.ts)", () => {
  let guest: Guest;
  const shares = ["i0", "i1", "i2"].map((tag) => ({ tag, fs: new MemFs(), cache: "never" as const, mountPoint: `/${tag}` }));
  beforeAll(async () => {
    for (const { tag, fs } of shares) fs.vol.writeFileSync("/f", `answered by ${tag}\n`);
    guest = await bootGuest({ shares });
  });
  afterAll(() => guest?.shutdown());

  it("a completion the guest cannot take yet survives another function on its line deasserting", async () => {
    const cpu = v86Cpu(guest.emulator);
    const { pci } = cpu.devices;
    const eflags = (cpu as unknown as { flags: Int32Array }).flags;
    const pciId = (tag: string) => pci.devices.findIndex((d) => (d as { name?: string } | undefined)?.name === `virtio-fs ${tag}`);
    const line = (id: number) => pci.device_spaces[id]![0x3c >> 2]! & 0xff; // Interrupt Line, as the guest set it
    // Three functions on consecutive slots: the four INTx routes meet on two IRQs, so two of them share one.
    const ids = shares.map((s) => pciId(s.tag));
    const a = ids.findIndex((id, i) => ids.some((other, j) => j !== i && line(other) === line(id)));
    expect(a).toBeGreaterThanOrEqual(0);
    const other = ids.find((id, j) => j !== a && line(id) === line(ids[a]!))!;
    const { tag, fs } = shares[a]!;
    const { device } = guest.shares[a]!;

    device.pause();
    await sh(guest, `cat /${tag}/f > /${tag}/got &`);
    await expect.poll(() => device.queueStates().some((q) => q.held > 0)).toBe(true);
    // The guest holds interrupts off (as while its handler for the shared line runs) as the device answers.
    await guest.emulator.stop();
    const flags = eflags[0]!;
    eflags[0] = flags & ~FLAG_INTERRUPT;
    device.resume();
    await expect.poll(() => device.queueStates().every((q) => q.inflight === 0)).toBe(true);
    await new Promise((r) => setTimeout(r, 10)); // the interrupt check runs a microtask after the completion
    pci.lower_irq(other); // what the other function does as the handler reads its ISR
    eflags[0] = flags;
    void guest.emulator.run();
    // Watched from the host: a guest that lost the interrupt also stops answering its console.
    await expect.poll(() => (fs.vol.existsSync("/got") ? fs.vol.readFileSync("/got", "utf8") : ""), { timeout: 5000 }).toBe(`answered by ${tag}\n`);
    expect(await sh(guest, `cat /${tag}/got`)).toBe(`answered by ${tag}\n`);
  });
});
