// Snapshots of a running guest with its share: saved with a file open for writing, a background process
// and a lock waiter in flight, resumed in a new emulator over a new backend object, ten times in a row;
// and over a host directory that changed between save and restore.
import { mkdtemp, rm, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Volume } from "memfs";
import { afterAll, describe, expect, it } from "vitest";
import { bootGuest, HostDirFs, MemFs, restoreGuest, SnapshotError, text, type FileSystem, type Guest, type GuestShare, type SavedShare } from "../../src/node.ts";

async function sh(g: Guest, script: string): Promise<string> {
  const r = await g.run(script);
  if (r.status !== 0) throw new Error(`${script}\nexit ${r.status}: ${text(r.stderr)}${text(r.stdout)}`);
  return text(r.stdout);
}

const shareOf = (fs: FileSystem): GuestShare => ({ tag: "share", fs, mountPoint: "/mnt", locks: "device" });
const sharesOver = (fs: FileSystem) => (saved: readonly SavedShare[]) => saved.map((s) => ({ ...shareOf(fs), ...s }));
const SUMS = "cd /mnt && find . -type f | sort | xargs sha256sum";
/** Waits in the guest for a file (a process in the background signals through it). */
const waitFor = (path: string) => `i=0; while [ ! -e ${path} ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; [ -e ${path} ]`;

describe("snapshots on memfs", () => {
  let guest: Guest | undefined;
  afterAll(() => guest?.shutdown());

  it("resume a guest in a new emulator: open file, background processes and a waiting lock carry on", { timeout: 900_000 }, async () => {
    guest = await bootGuest({ shares: [shareOf(new MemFs())] });
    await sh(guest, "cd /mnt && mkdir -p d && for i in 1 2 3; do echo file $i > d/f$i; done && head -c 300000 /dev/urandom > big");
    // A writer holding its file open between two writes, a sleeper, and a lock waiter (device locks: the
    // SETLKW is a request in flight while the snapshot is taken, served again after restore).
    await sh(guest, `(exec 3>/mnt/w.txt; echo one >&3; ${waitFor("/tmp/go")}; echo two >&3; exec 3>&-; touch /mnt/writer-done) >/dev/null 2>&1 &
      sleep 1000 >/dev/null 2>&1 & echo $! > /tmp/sleeper
      touch /mnt/lockfile; vfsw-lock /mnt/lockfile sh -c '${waitFor("/tmp/go")}' >/dev/null 2>&1 &
      ${waitFor("/mnt/w.txt")}; sleep 0.3
      (vfsw-lock /mnt/lockfile touch /mnt/lock-got) >/dev/null 2>&1 &
      sleep 0.5; echo ok`);
    const before = await sh(guest, SUMS);
    const SLEEPER = "tr '\\0' ' ' < /proc/$(cat /tmp/sleeper)/cmdline";
    const sleeper = await sh(guest, SLEEPER);
    expect(sleeper).toBe("sleep 1000 ");
    expect(guest.shares[0]!.server.deviceLocks).toBe(true);

    let snapshot = await guest.saveState();
    await guest.shutdown();
    guest = undefined;

    let vol = new Volume();
    for (let round = 1; round <= 10; round++) {
      vol = new Volume();
      guest = await restoreGuest({ snapshot, shares: sharesOver(new MemFs(vol)) });
      if (round === 1) {
        expect(await sh(guest, SUMS)).toBe(before);
        expect(await sh(guest, SLEEPER)).toBe(sleeper);
        expect(await sh(guest, "[ ! -e /mnt/lock-got ] && echo waiting")).toBe("waiting\n");
        // Let the writer and the lock holder go on: the writer's offset survived, the waiter gets the lock.
        await sh(guest, `touch /tmp/go; ${waitFor("/mnt/writer-done")}; ${waitFor("/mnt/lock-got")}`);
        expect(await sh(guest, "cat /mnt/w.txt")).toBe("one\ntwo\n");
        expect(String(vol.readFileSync("/w.txt"))).toBe("one\ntwo\n");
      }
      // New writes reach the new backend; each round counts on from the last snapshot.
      await sh(guest, "n=$(cat /mnt/rounds 2>/dev/null || echo 0); echo $((n+1)) > /mnt/rounds; sync");
      expect(String(vol.readFileSync("/rounds")).trim()).toBe(String(round));
      snapshot = await guest.saveState();
      await guest.shutdown();
      guest = undefined;
    }
    guest = await restoreGuest({ snapshot, shares: sharesOver(new MemFs()) });
    expect(await sh(guest, `cat /mnt/rounds; ${SLEEPER}`)).toBe(`10\n${sleeper}`);
    // The snapshot of a fresh 256 MiB guest is a few MiB, not 256.
    expect(snapshot.length).toBeLessThan(32 << 20);
  });

  it("refuses garbage, truncated and foreign snapshots with one clear error", { timeout: 300_000 }, async () => {
    guest ??= await bootGuest({ shares: [shareOf(new MemFs())] });
    const good = await guest.saveState();
    const bad: [Uint8Array, RegExp][] = [
      [new Uint8Array(1000).map((_, i) => i * 7), /not a virtiofs-web snapshot/],
      [good.subarray(0, good.length >> 1), /truncated or damaged/],
      [Uint8Array.from(good).map((b, i) => (i === good.length - 10 ? b ^ 1 : b)), /truncated or damaged/],
    ];
    for (const [snapshot, message] of bad) {
      await expect(restoreGuest({ snapshot, shares: sharesOver(new MemFs()) })).rejects.toThrow(message);
    }
    await expect(restoreGuest({ snapshot: good, shares: [] })).rejects.toThrow(SnapshotError);
    await expect(restoreGuest({ snapshot: good, shares: (saved) => saved.map((s) => ({ ...shareOf(new MemFs()), ...s, cache: "never" as const, locks: "device" as const })) })).rejects.toThrow(/cache=auto/);
  });
});

describe("snapshots on a host directory", () => {
  let dir = "";
  let guest: Guest | undefined;
  afterAll(async () => {
    await guest?.shutdown();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("reopen what the guest holds by reference; a file removed meanwhile is ESTALE, never another's data", { timeout: 600_000 }, async () => {
    dir = await mkdtemp(join(tmpdir(), "vfsw-snapshot-"));
    await writeFile(join(dir, "kept.txt"), "kept\n");
    await writeFile(join(dir, "gone.txt"), "gone\n");
    const before = await HostDirFs.open(dir);
    guest = await bootGuest({ shares: [{ ...shareOf(before), cache: "never" }] });
    await sh(guest, `(exec 3</mnt/gone.txt 4</mnt/kept.txt; ${waitFor("/tmp/go")}; cat <&3 >/tmp/gone.out 2>/tmp/gone.err; cat <&4 >/tmp/kept.out; touch /tmp/done) >/dev/null 2>&1 & sleep 0.5`);
    const snapshot = await guest.saveState();
    await guest.shutdown();
    await before.close();
    guest = undefined;
    // Meanwhile: one file goes and another takes its name.
    await unlink(join(dir, "gone.txt"));
    await writeFile(join(dir, "gone.txt"), "someone else's data\n");
    const fs = await HostDirFs.open(dir);
    guest = await restoreGuest({ snapshot, shares: (saved) => saved.map((s) => ({ ...shareOf(fs), ...s, cache: "never" as const, locks: "device" as const })) });
    await sh(guest, `touch /tmp/go; ${waitFor("/tmp/done")}`);
    expect(await sh(guest, "cat /tmp/kept.out")).toBe("kept\n");
    expect(await sh(guest, "cat /tmp/gone.out")).toBe("");
    expect(await sh(guest, "cat /tmp/gone.err")).toMatch(/Stale file handle/);
    // By name, the guest sees the new file.
    expect(await sh(guest, "cat /mnt/gone.txt")).toBe("someone else's data\n");
    await guest.shutdown();
    guest = undefined;
    await fs.close();
  });
});

describe("snapshots with a DAX window", () => {
  let guest: Guest | undefined;
  afterAll(() => guest?.shutdown());

  it("keep the window's mappings: mapped files read the same and programs run from it after restore", { timeout: 600_000 }, async () => {
    const dax = (fs: FileSystem): GuestShare => ({ tag: "share", fs, mountPoint: "/mnt", daxMiB: 64 });
    guest = await bootGuest({ shares: [dax(new MemFs())] });
    const sums = await sh(guest, "cd /mnt && head -c 3000000 /dev/urandom > r && cp /bin/busybox echo && echo hello > w && sha256sum r echo w");
    // A store through a shared mapping sits in the window (dirty) when the snapshot is taken.
    await sh(guest, "cd /mnt && exec 3<>w && echo HELLO >&3");
    expect(guest.shares[0]!.server.daxSnapshot()!.mappings.length).toBeGreaterThan(0);
    const snapshot = await guest.saveState();
    await guest.shutdown();
    const vol = new Volume();
    guest = await restoreGuest({ snapshot, shares: (saved) => saved.map((s) => ({ ...dax(new MemFs(vol)), ...s })) });
    expect(guest.shares[0]!.server.daxSnapshot()!.mappings.length).toBeGreaterThan(0);
    expect(String(vol.readFileSync("/w"))).toBe("HELLO\n");
    expect(await sh(guest, "cd /mnt && sha256sum r echo && ./echo from-the-window && cat w")).toBe(`${sums.split("\n").slice(0, 2).join("\n")}\nfrom-the-window\nHELLO\n`);
    await sh(guest, "echo more >> /mnt/w && sync");
    expect(String(vol.readFileSync("/w"))).toBe("HELLO\nmore\n");
  });
});
