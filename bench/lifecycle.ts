// Lifecycle soak: one guest with a memfs share, a host-directory share and a memfs share with a DAX
// window, rebooted and remounted over and over. After every cycle the FUSE servers must be back where a
// fresh mount left them (node table, backend handles, DAX mappings), the process's host file descriptors
// at their count after the first boot, and the heap within a bound: a session that leaks one node id or
// handle per mount shows after a few cycles, not after weeks of uptime.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Volume } from "memfs";
import { bootGuest, HostDirFs, MemFs, text, type AttachedShare, type Guest, type GuestShare } from "../src/node.ts";
import { heapUsed } from "./heap.ts";

export interface LifecycleOptions {
  reboots: number;
  remounts: number;
  /** Makes each cycle's file contents (default 1). */
  seed?: number;
  /** A progress line every this many cycles (default 10). */
  every?: number;
  log?(line: string): void;
}

export interface LifecycleReport {
  reboots: number;
  remounts: number;
  /** Mean wall time of one cycle (file work, reboot or remount, checks), ms. */
  rebootMs: number;
  remountMs: number;
  /** Each reboot alone: wall time from `reboot -f` to init ready, and the guest's uptime then (s). */
  rebootWallMs: number[];
  rebootUptime: number[];
  /** What each share's server held right after the first boot, and host fds then. */
  baseline: { nodes: number[]; handles: number[]; fds: number };
  heapStartMiB: number;
  heapEndMiB: number;
  heapMaxMiB: number;
  /** Everything that was not back at its baseline; empty on success. */
  deviations: string[];
}

/** Heap growth over a run beyond this is a leak, not noise (the fuzzer's bound). */
export const HEAP_GROWTH_MAX = 48 << 20;
const MiB = 1 << 20;

export const hostFdCount = (): number => readdirSync("/proc/self/fd").length;

interface Share {
  spec: GuestShare;
  /** The file a cycle wrote last, as the host sees it. */
  read(name: string): Promise<string>;
}

/** The shell work of one cycle on a mount: create, write, read back, rename, list, unlink. */
function fileWork(dir: string, token: string, keep: string): string {
  const d = `${dir}/work`;
  return [
    `mkdir -p ${d}`,
    `echo ${token} > ${d}/new`,
    `dd if=/dev/urandom of=${d}/blob bs=4k count=24 2>/dev/null`,
    `sum=$(sha256sum < ${d}/blob)`,
    `cp ${d}/blob ${d}/copy`,
    `[ "$(sha256sum < ${d}/copy)" = "$sum" ]`,
    `mv ${d}/new ${dir}/${keep}`,
    `grep -qx ${token} ${dir}/${keep}`,
    `ls -la ${d} > /dev/null`,
    `rm ${d}/blob ${d}/copy`,
    `rmdir ${d}`,
  ].join(" && ");
}

/** Runs the lifecycle soak; see the file's head. */
export async function runLifecycle(opts: LifecycleOptions): Promise<LifecycleReport> {
  const log = opts.log ?? (() => {});
  const every = opts.every ?? 10;
  const seed = opts.seed ?? 1;
  const hostDir = await mkdtemp(join(tmpdir(), "vfsw-lifecycle-"));
  const mem = new Volume();
  const daxVol = new Volume();
  const fdsBeforeHost = hostFdCount();
  const host = await HostDirFs.open(hostDir);
  const shares: Share[] = [
    { spec: { tag: "mem", fs: new MemFs(mem), mountPoint: "/mnt/mem" }, read: async (n) => String(mem.readFileSync(`/${n}`)) },
    { spec: { tag: "host", fs: host, mountPoint: "/mnt/host" }, read: (n) => readFile(join(hostDir, n), "utf8") },
    { spec: { tag: "dax", fs: new MemFs(daxVol), mountPoint: "/mnt/dax", daxMiB: 16 }, read: async (n) => String(daxVol.readFileSync(`/${n}`)) },
  ];
  const deviations: string[] = [];
  let guest: Guest | undefined;
  let hostOpen = true;
  try {
    guest = await bootGuest({ shares: shares.map((s) => s.spec) });
    const g = guest;
    const sh = async (cmd: string): Promise<string> => {
      const r = await g.run(cmd);
      if (r.status !== 0) throw new Error(`'${cmd}' exited ${r.status}: ${text(r.stderr)}`);
      return text(r.stdout);
    };
    const servers = (): readonly AttachedShare[] => g.shares;
    const baseline = {
      nodes: servers().map((s) => s.server.nodeCount),
      handles: servers().map((s) => s.server.openHandles),
      fds: hostFdCount(),
    };
    const heapStart = heapUsed();
    let heapMax = heapStart;
    let heapEnd = heapStart;

    /** Compares the servers and the process with the baseline; `fresh`: what a fresh mount holds (else the root only). */
    const check = (label: string, fresh: boolean): void => {
      servers().forEach((s, i) => {
        const nodes = fresh ? baseline.nodes[i] : 1;
        const handles = fresh ? baseline.handles[i] : 0;
        if (s.server.nodeCount !== nodes) deviations.push(`${label}: ${s.tag} holds ${s.server.nodeCount} node ids, ${nodes} expected`);
        if (s.server.openHandles !== handles) deviations.push(`${label}: ${s.tag} holds ${s.server.openHandles} backend handles, ${handles} expected`);
        const dax = s.server.daxSnapshot()?.mappings.length ?? 0;
        if (dax) deviations.push(`${label}: ${s.tag}'s DAX window still maps ${dax} ranges`);
      });
      const fds = hostFdCount();
      if (fds !== baseline.fds) deviations.push(`${label}: ${fds} host file descriptors open, ${baseline.fds} after the first boot`);
    };

    /** File work on every mount, then checks from the host that what the guest wrote arrived. */
    const work = async (cycle: number): Promise<void> => {
      const token = `s${seed}-c${cycle}`;
      const keep = `kept-${cycle % 8}`;
      await sh(shares.map((s) => fileWork(s.spec.mountPoint, token, keep)).join(" && "));
      for (const s of shares) {
        const got = (await s.read(keep)).trim();
        if (got !== token) deviations.push(`cycle ${cycle}: ${s.spec.tag}/${keep} holds '${got}' on the host, '${token}' written`);
      }
    };

    const heap = (): void => {
      heapEnd = heapUsed();
      heapMax = Math.max(heapMax, heapEnd);
    };
    const progress = (kind: string, n: number, total: number, t0: number): void => {
      if (n % every && n !== total) return;
      heap();
      const s = servers();
      log(
        `${kind} ${n}/${total}: ${((performance.now() - t0) / n / 1000).toFixed(2)} s/cycle, nodes ${s.map((x) => x.server.nodeCount).join("/")}, ` +
          `handles ${s.map((x) => x.server.openHandles).join("/")}, host fds ${hostFdCount()}, heap ${(heapEnd / MiB).toFixed(1)} MiB, deviations ${deviations.length}`,
      );
    };

    let cycle = 0;
    const rebootWallMs: number[] = [];
    const rebootUptime: number[] = [];
    const t0 = performance.now();
    for (let i = 1; i <= opts.reboots && deviations.length === 0; i++) {
      await work(cycle++);
      const tr = performance.now();
      await g.reboot();
      rebootWallMs.push(performance.now() - tr);
      rebootUptime.push(g.uptimeAtReady);
      check(`reboot ${i}`, true);
      progress("reboot", i, opts.reboots, t0);
    }
    const rebootMs = opts.reboots ? (performance.now() - t0) / opts.reboots : 0;

    const t1 = performance.now();
    for (let i = 1; i <= opts.remounts && deviations.length === 0; i++) {
      await work(cycle++);
      // umount ends each session with FORGETs and DESTROY: the servers must hold the root alone.
      await sh(shares.map((s) => `umount ${s.spec.mountPoint}`).join(" && "));
      check(`remount ${i} (unmounted)`, false);
      await sh(shares.map((s) => `mount -t virtiofs ${s.spec.daxMiB ? "-o dax=always " : ""}${s.spec.tag} ${s.spec.mountPoint}`).join(" && "));
      // Whatever was kept from earlier cycles is still there, read through the new session.
      await sh(shares.map((s) => `[ -s ${s.spec.mountPoint}/kept-${(cycle - 1) % 8} ]`).join(" && "));
      progress("remount", i, opts.remounts, t1);
    }
    const remountMs = opts.remounts ? (performance.now() - t1) / opts.remounts : 0;
    heap();

    await g.shutdown();
    guest = undefined;
    await host.close();
    hostOpen = false;
    const fds = hostFdCount();
    if (fds !== fdsBeforeHost) deviations.push(`after shutdown and close: ${fds} host file descriptors open, ${fdsBeforeHost} before the share was opened`);
    if (heapEnd - heapStart > HEAP_GROWTH_MAX) deviations.push(`heap grew ${((heapEnd - heapStart) / MiB).toFixed(1)} MiB over the run`);
    return {
      reboots: opts.reboots,
      remounts: opts.remounts,
      rebootMs,
      remountMs,
      rebootWallMs,
      rebootUptime,
      baseline,
      heapStartMiB: heapStart / MiB,
      heapEndMiB: heapEnd / MiB,
      heapMaxMiB: heapMax / MiB,
      deviations,
    };
  } finally {
    await guest?.shutdown();
    if (hostOpen) await host.close();
    await rm(hostDir, { recursive: true, force: true });
  }
}
