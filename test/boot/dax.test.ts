// The DAX window with the real virtiofs.ko: the window sits in v86's memory above the guest's RAM, the guest
// maps file ranges of a memfs share into it (16 MiB: eight 2 MiB ranges, so bigger files make the driver
// reclaim ranges), loads, stores and runs programs from it, and the host checks the backend against what
// the guest read and wrote.
import { createHash, randomBytes } from "node:crypto";
import { Volume } from "memfs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bootGuest, MemFs, text, type Guest } from "../../src/node.ts";
import { opcodeCounter } from "../support/opcode-counter.ts";

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const MiB = 1 << 20;
const BIG = randomBytes(64 * MiB); // 32 ranges through a window of eight

function shell(guest: () => Guest) {
  return async (cmd: string): Promise<string> => {
    const r = await guest().run(cmd);
    if (r.status !== 0) throw new Error(`'${cmd}' exited ${r.status}: ${text(r.stderr)}`);
    return text(r.stdout);
  };
}

const cachedKiB = (meminfo: string): number => Number(/^Cached:\s+(\d+) kB/m.exec(meminfo)?.[1]);

describe("the DAX window in v86's memory (dax=always, 16 MiB)", () => {
  let guest: Guest;
  const vol = new Volume();
  const ops = opcodeCounter();
  const sh = shell(() => guest);

  beforeAll(async () => {
    vol.writeFileSync("/big", BIG);
    guest = await bootGuest({ sharedMemory: true, shares: [{ tag: "share", fs: new MemFs(vol), daxMiB: 16, mountPoint: "/mnt", observer: ops.observer }] });
  });
  afterAll(() => guest?.shutdown());

  it("sits just above the guest's 256 MiB of RAM, which the BIOS says ends there; the mount is dax=always", async () => {
    expect(await sh("dmesg")).toMatch(/virtiofs virtio\d+: Cache len: 0x1000000 @ 0x10000000/);
    const memTotalKiB = Number(/^MemTotal:\s+(\d+) kB/m.exec(await sh("cat /proc/meminfo"))?.[1]);
    expect(memTotalKiB).toBeLessThanOrEqual(256 * 1024);
    expect(memTotalKiB).toBeGreaterThan(200 * 1024);
    expect(await sh("grep ' /mnt ' /proc/mounts")).toMatch(/^share \/mnt virtiofs rw.*dax=always/);
    const ram = guest.guestMemory();
    expect(ram.shared).toBe(true);
    expect(ram.size).toBe(272 * MiB);
  });

  it("reads a file four times the window through it: the right bytes, no FUSE_READ, no page cache", async () => {
    const before = cachedKiB(await sh("sync; echo 3 > /proc/sys/vm/drop_caches; cat /proc/meminfo"));
    ops.clear();
    expect((await sh("sha256sum /mnt/big")).split(" ")[0]).toBe(sha256(BIG));
    const after = cachedKiB(await sh("cat /proc/meminfo"));
    expect(ops.count("FUSE_READ")).toBe(0);
    expect(ops.count("FUSE_SETUPMAPPING")).toBeGreaterThanOrEqual(32);
    expect(ops.count("FUSE_REMOVEMAPPING")).toBeGreaterThan(0);
    // The seeds' memory saving: the file's 64 MiB never enter the guest's page cache.
    expect(after - before).toBeLessThan(5 * 1024);
  });

  it("loads through a read-only private mapping come from the window: every word of the file, no FUSE_READ", async () => {
    let sum = 0;
    for (let at = 0; at < BIG.length; at += 4) sum = (sum + BIG.readUInt32LE(at)) >>> 0;
    ops.clear();
    expect(await sh("sync; echo 3 > /proc/sys/vm/drop_caches; vfsw-mapsum /mnt/big")).toBe(`${sum.toString(16).padStart(8, "0")}\n`);
    expect(ops.count("FUSE_READ")).toBe(0);
    expect(ops.count("FUSE_SETUPMAPPING")).toBeGreaterThanOrEqual(32);
  });

  it("what the guest loads is the window in v86's memory, which the host sees", async () => {
    // drop_caches unmaps the whole window, so the read maps two of its eight ranges and leaves room: the
    // guest's reclaim worker, which would unmap ranges no one is using, only starts when room runs short.
    await sh("sync; echo 3 > /proc/sys/vm/drop_caches; dd if=/mnt/big of=/dev/null bs=1M count=4 skip=6 2>/dev/null");
    const ram = guest.guestMemory();
    const window = Buffer.from(ram.buffer, ram.base + 256 * MiB, 16 * MiB);
    for (const range of [3, 4]) {
      const bytes = BIG.subarray(range * 2 * MiB, (range + 1) * 2 * MiB);
      const at = [0, 1, 2, 3, 4, 5, 6, 7].filter((slot) => window.subarray(slot * 2 * MiB, (slot + 1) * 2 * MiB).equals(bytes));
      expect(at).toHaveLength(1);
    }
  });

  it("stores in place through the window reach the backend after sync", async () => {
    ops.clear();
    // conv=notrunc over existing bytes: the DAX write path (an extending write goes as FUSE_WRITE).
    await sh("dd if=/dev/urandom of=/tmp/patch bs=4096 count=700 2>/dev/null && dd if=/tmp/patch of=/mnt/big bs=4096 seek=1000 conv=notrunc 2>/dev/null && sync");
    expect(ops.count("FUSE_WRITE")).toBe(0);
    const patch = await sh("sha256sum /tmp/patch");
    const backend = vol.readFileSync("/big") as Uint8Array;
    expect(sha256(backend.subarray(1000 * 4096, 1700 * 4096))).toBe(patch.split(" ")[0]);
    expect(sha256(backend.subarray(0, 1000 * 4096))).toBe(sha256(BIG.subarray(0, 1000 * 4096)));
    expect(backend.length).toBe(BIG.length);
  });

  it("a reader's close(2) sends no FLUSH (guest/patches/0006); a writer's close writes its stores back", async () => {
    ops.clear();
    // busybox dd closes its input twice: six closes of O_RDONLY descriptors.
    await sh("for i in 1 2 3; do dd if=/mnt/big of=/dev/null bs=4096 count=1 skip=$((i * 999)) 2>/dev/null; done");
    expect(ops.count("FUSE_FLUSH")).toBe(0);
    await sh("dd if=/dev/urandom of=/tmp/p3 bs=4096 count=4 2>/dev/null && dd if=/tmp/p3 of=/mnt/big bs=4096 seek=7000 conv=notrunc 2>/dev/null");
    expect(ops.count("FUSE_FLUSH")).toBeGreaterThan(0);
    expect(ops.count("FUSE_FSYNC") + ops.count("FUSE_SYNCFS")).toBe(0);
    const backend = vol.readFileSync("/big") as Uint8Array;
    expect(sha256(backend.subarray(7000 * 4096, 7004 * 4096))).toBe((await sh("sha256sum /tmp/p3")).split(" ")[0]);
  });

  it("stores not yet written back reach the backend when the guest reboots, and the window works after it", async () => {
    await sh("dd if=/dev/urandom of=/tmp/p2 bs=4096 count=16 2>/dev/null && dd if=/tmp/p2 of=/mnt/big bs=4096 seek=5000 conv=notrunc 2>/dev/null");
    const patch = (await sh("sha256sum /tmp/p2")).split(" ")[0];
    await guest.reboot();
    const backend = vol.readFileSync("/big") as Uint8Array;
    expect(sha256(backend.subarray(5000 * 4096, 5016 * 4096))).toBe(patch);
    expect((await sh("sha256sum /mnt/big")).split(" ")[0]).toBe(sha256(backend));
  });

  it("a writable MAP_SHARED mapping stores into the backend's file", async () => {
    await sh("dd if=/dev/zero of=/mnt/mm bs=4096 count=3 2>/dev/null");
    // busybox devmem maps /dev/mem MAP_SHARED read-write: here /dev/mem is /mnt/mm, in a private mount namespace.
    await sh(`unshare -m --propagation private sh -c 'mount -t tmpfs none /dev && : >/dev/mem && mount --bind /mnt/mm /dev/mem && devmem 0x1ffe 32 0x44434241' && sync`);
    const file = vol.readFileSync("/mm") as Uint8Array;
    expect(new TextDecoder().decode(file.subarray(0x1ffe, 0x2002))).toBe("ABCD");
    expect(file.length).toBe(3 * 4096);
  });

  it("runs busybox and a static program from the window, without FUSE_READ", async () => {
    await sh("cp /bin/busybox /bin/vfsw-fsx /mnt/ && sync && echo 3 > /proc/sys/vm/drop_caches");
    ops.clear();
    expect(await sh("for i in $(seq 40); do /mnt/busybox echo ran; done | uniq -c")).toMatch(/^\s*40 ran\n$/);
    const fsx = await guest.run("/mnt/vfsw-fsx");
    expect(fsx.status).toBe(2);
    expect(text(fsx.stderr)).toContain("usage: vfsw-fsx");
    expect(ops.count("FUSE_READ")).toBe(0);
    expect(ops.count("FUSE_SETUPMAPPING")).toBeGreaterThan(0);
  });

  it("runs the new program after its file was rewritten under the same mapping (v86's JIT drops the old code)", async () => {
    // Run each often enough that v86 compiles its hot pages, then rewrite the file in place: truncation and
    // extending FUSE_WRITEs make the device rewrite the mapped pages, which must not run the old code.
    // (busybox runs as itself under a name starting with "busybox"; vfsw-fsx prints its usage.)
    const run = async (): Promise<string> => sh("for i in $(seq 30); do /mnt/busybox-jit echo ran 2>&1 | head -1; done | sort | uniq -c");
    await sh("cat /bin/busybox > /mnt/busybox-jit && chmod 755 /mnt/busybox-jit");
    expect(await run()).toMatch(/^\s*30 ran\n$/);
    ops.clear();
    await sh("cat /bin/vfsw-fsx > /mnt/busybox-jit");
    expect(ops.count("FUSE_WRITE")).toBeGreaterThan(0);
    expect(await run()).toMatch(/^\s*30 usage: vfsw-fsx \[-n OPS\] .*\n$/);
    await sh("cat /bin/busybox > /mnt/busybox-jit");
    expect(await run()).toMatch(/^\s*30 ran\n$/);
  });

  it("truncating a mapped file: what was cut reads as zeros when the file grows again, guest and host", async () => {
    await sh("dd if=/dev/urandom of=/mnt/t bs=4096 count=512 2>/dev/null && cat /mnt/t > /dev/null && truncate -s 1000 /mnt/t && truncate -s 2097152 /mnt/t");
    expect(await sh("dd if=/mnt/t bs=1000 skip=1 2>/dev/null | tr -d '\\000' | wc -c")).toBe("0\n");
    const file = vol.readFileSync("/t") as Uint8Array;
    expect(file.length).toBe(2 << 20);
    expect(file.subarray(1000).every((b) => b === 0)).toBe(true);
  });
});

describe("dax=inode on v86's own (unshared) memory: the same window, every regular file in it", () => {
  let guest: Guest;
  const vol = new Volume();
  const ops = opcodeCounter();
  const sh = shell(() => guest);

  beforeAll(async () => {
    vol.writeFileSync("/data", BIG.subarray(0, MiB));
    guest = await bootGuest({ sharedMemory: false, shares: [{ tag: "share", fs: new MemFs(vol), daxMiB: 16, mountOptions: "dax=inode", mountPoint: "/mnt", observer: ops.observer }] });
  });
  afterAll(() => guest?.shutdown());

  it("maps a data file and a program, and runs the program", async () => {
    expect(guest.guestMemory().shared).toBe(false);
    ops.clear();
    expect((await sh("sha256sum /mnt/data")).split(" ")[0]).toBe(sha256(BIG.subarray(0, MiB)));
    expect(await sh("grep ' /mnt ' /proc/mounts && cp /bin/busybox /mnt/busybox && sync && echo 3 > /proc/sys/vm/drop_caches && /mnt/busybox echo ran")).toMatch(/dax=inode[\s\S]*\nran\n$/);
    expect(ops.count("FUSE_SETUPMAPPING")).toBeGreaterThan(1);
    expect(ops.count("FUSE_READ")).toBe(0);
  });
});

describe("dax=inode with daxInodeMinSize 1 MiB: big files in the window, small ones in the page cache", () => {
  let guest: Guest;
  const vol = new Volume();
  const ops = opcodeCounter();
  const sh = shell(() => guest);
  const drop = "sync && echo 3 > /proc/sys/vm/drop_caches && echo 3 > /proc/sys/vm/drop_caches";

  beforeAll(async () => {
    vol.writeFileSync("/big", BIG.subarray(0, 4 * MiB));
    vol.writeFileSync("/small", BIG.subarray(0, 64 * 1024));
    guest = await bootGuest({ shares: [{ tag: "share", fs: new MemFs(vol), daxMiB: 16, daxInodeMinSize: MiB, mountPoint: "/mnt", observer: ops.observer }] });
  });
  afterAll(() => guest?.shutdown());

  it("reads a big file through the window and a small one with READ", async () => {
    ops.clear();
    expect((await sh("sha256sum /mnt/big")).split(" ")[0]).toBe(sha256(BIG.subarray(0, 4 * MiB)));
    expect(ops.count("FUSE_SETUPMAPPING")).toBeGreaterThan(0);
    expect(ops.count("FUSE_READ")).toBe(0);
    ops.clear();
    expect((await sh("sha256sum /mnt/small")).split(" ")[0]).toBe(sha256(BIG.subarray(0, 64 * 1024)));
    expect(ops.count("FUSE_READ")).toBeGreaterThan(0);
    expect(ops.count("FUSE_SETUPMAPPING")).toBe(0);
  });

  it("creates and writes small files without a FLUSH at close, and maps a file once it grew past the line", async () => {
    ops.clear();
    await sh("for i in 1 2 3 4 5; do echo note $i > /mnt/n$i; done; dd if=/dev/urandom of=/mnt/grown bs=64K count=32 2> /dev/null");
    expect(ops.count("FUSE_CREATE")).toBe(6);
    expect(ops.count("FUSE_FLUSH")).toBe(0);
    expect(ops.count("FUSE_SETUPMAPPING")).toBe(0); // created empty: outside the window while open
    expect(text(vol.readFileSync("/n3") as Uint8Array)).toBe("note 3\n");
    const grown = new Uint8Array(vol.readFileSync("/grown") as Uint8Array);
    expect(grown).toHaveLength(2 * MiB);
    ops.clear();
    expect((await sh(`${drop} && sha256sum /mnt/grown`)).split(" ")[0]).toBe(sha256(grown));
    expect(ops.count("FUSE_SETUPMAPPING")).toBeGreaterThan(0);
    expect(ops.count("FUSE_READ")).toBe(0);
  });
});
