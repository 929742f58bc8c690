// The DAX window with the real virtiofs.ko (patched for i386: guest/patches): the guest maps file ranges
// of a memfs share into an 8 MiB window (four 2 MiB ranges, so bigger files make the driver reclaim
// ranges), and the host checks the backend against what the guest read and wrote.
import { createHash, randomBytes } from "node:crypto";
import { Volume } from "memfs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bootGuest, fuseOpcodeName, MemFs, text, type Guest } from "../../src/node.ts";

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const BIG = randomBytes(20 << 20); // 20 MiB: ten ranges through a window of four

describe("the DAX window (dax=always, 8 MiB)", () => {
  let guest: Guest;
  const vol = new Volume();
  const ops = new Map<string, number>();
  const count = (name: string) => ops.get(name) ?? 0;
  const sh = async (cmd: string): Promise<string> => {
    const r = await guest.run(cmd);
    if (r.status !== 0) throw new Error(`'${cmd}' exited ${r.status}: ${text(r.stderr)}`);
    return text(r.stdout);
  };

  beforeAll(async () => {
    vol.writeFileSync("/big", BIG);
    const observer = {
      request: (t: { opcode: number }) => {
        const name = fuseOpcodeName(t.opcode) ?? String(t.opcode);
        ops.set(name, count(name) + 1);
      },
      reply: () => {},
    };
    guest = await bootGuest({ shares: [{ tag: "share", fs: new MemFs(vol), daxMiB: 8, mountOptions: "dax=always", mountPoint: "/mnt", observer }] });
  });
  afterAll(() => guest?.shutdown());

  it("the driver reports the window and /proc/mounts shows dax=always", async () => {
    expect(await sh("dmesg")).toMatch(/virtiofs virtio\d+: Cache len: 0x800000 @ 0xd0000000/);
    expect(await sh("grep ' /mnt ' /proc/mounts")).toMatch(/^share \/mnt virtiofs rw.*dax=always/);
  });

  it("reads a file larger than the window through it: the right bytes, no FUSE_READ, ranges reclaimed", async () => {
    ops.clear();
    expect((await sh("sha256sum /mnt/big")).split(" ")[0]).toBe(sha256(BIG));
    expect(count("FUSE_READ")).toBe(0);
    expect(count("FUSE_SETUPMAPPING")).toBeGreaterThanOrEqual(10);
    expect(count("FUSE_REMOVEMAPPING")).toBeGreaterThan(0);
  });

  it("stores in place through the window reach the backend after sync", async () => {
    ops.clear();
    // conv=notrunc over existing bytes: the DAX write path (an extending write goes as FUSE_WRITE).
    await sh("dd if=/dev/urandom of=/tmp/patch bs=4096 count=700 2>/dev/null && dd if=/tmp/patch of=/mnt/big bs=4096 seek=1000 conv=notrunc 2>/dev/null && sync");
    expect(count("FUSE_WRITE")).toBe(0);
    const patch = await sh("sha256sum /tmp/patch");
    const backend = vol.readFileSync("/big") as Uint8Array;
    expect(sha256(backend.subarray(1000 * 4096, 1700 * 4096))).toBe(patch.split(" ")[0]);
    expect(sha256(backend.subarray(0, 1000 * 4096))).toBe(sha256(BIG.subarray(0, 1000 * 4096)));
    expect(backend.length).toBe(BIG.length);
  });

  it("a writable MAP_SHARED mapping stores into the backend's file", async () => {
    await sh("dd if=/dev/zero of=/mnt/mm bs=4096 count=3 2>/dev/null");
    // busybox devmem maps /dev/mem MAP_SHARED read-write: here /dev/mem is /mnt/mm, in a private mount namespace.
    await sh(`unshare -m --propagation private sh -c 'mount -t tmpfs none /dev && : >/dev/mem && mount --bind /mnt/mm /dev/mem && devmem 0x1ffe 32 0x44434241' && sync`);
    const file = vol.readFileSync("/mm") as Uint8Array;
    expect(new TextDecoder().decode(file.subarray(0x1ffe, 0x2002))).toBe("ABCD");
    expect(file.length).toBe(3 * 4096);
  });

  it("refuses to run a program from the window (EACCES), and the emulator lives on", async () => {
    // v86 cannot fetch instructions from MMIO; guest/patches/0002 makes the kernel refuse instead.
    const r = await guest.run("cp /bin/busybox /mnt/busybox && /mnt/busybox echo ran");
    expect(r.status).toBe(126);
    expect(text(r.stderr)).toContain("Permission denied");
    expect(await sh("sh -c 'echo alive' && rm /mnt/busybox")).toBe("alive\n");
  });

  it("truncating a mapped file: what was cut reads as zeros when the file grows again, guest and host", async () => {
    await sh("dd if=/dev/urandom of=/mnt/t bs=4096 count=512 2>/dev/null && cat /mnt/t > /dev/null && truncate -s 1000 /mnt/t && truncate -s 2097152 /mnt/t");
    expect(await sh("dd if=/mnt/t bs=1000 skip=1 2>/dev/null | tr -d '\\000' | wc -c")).toBe("0\n");
    const file = vol.readFileSync("/t") as Uint8Array;
    expect(file.length).toBe(2 << 20);
    expect(file.subarray(1000).every((b) => b === 0)).toBe(true);
  });
});

describe("dax=inode, the --dax default: programs stay out of the window", () => {
  let guest: Guest;
  const vol = new Volume();
  const ops = new Map<string, number>();
  const count = (name: string) => ops.get(name) ?? 0;

  beforeAll(async () => {
    vol.writeFileSync("/data", BIG.subarray(0, 1 << 20));
    const observer = {
      request: (t: { opcode: number }) => {
        const name = fuseOpcodeName(t.opcode) ?? String(t.opcode);
        ops.set(name, count(name) + 1);
      },
      reply: () => {},
    };
    guest = await bootGuest({ shares: [{ tag: "share", fs: new MemFs(vol), daxMiB: 8, mountPoint: "/mnt", observer }] });
  });
  afterAll(() => guest?.shutdown());

  it("maps a data file, reads a program through FUSE_READ and runs it", async () => {
    ops.clear();
    const data = await guest.run("sha256sum /mnt/data");
    expect(text(data.stdout).split(" ")[0]).toBe(sha256(BIG.subarray(0, 1 << 20)));
    expect(count("FUSE_SETUPMAPPING")).toBeGreaterThan(0);
    expect(count("FUSE_READ")).toBe(0);
    const prog = await guest.run("grep ' /mnt ' /proc/mounts && cp /bin/busybox /mnt/busybox && chmod 755 /mnt/busybox && sync && echo 3 > /proc/sys/vm/drop_caches && /mnt/busybox echo ran");
    expect(text(prog.stdout)).toMatch(/dax=inode[\s\S]*\nran\n$/);
    expect(count("FUSE_READ")).toBeGreaterThan(0);
  });
});

