// A guest handle: boot the PC, run shell commands through guest/init's framed console, shut down. The same
// code runs in Node and in a browser Worker; only where the images and v86.wasm come from differs.
import { ConsoleFrames } from "./console-frames.ts";
import { kernelCmdline, randomNonce, utf8Base64, type GuestMode, type GuestMount } from "./cmdline.ts";
import type { GuestImages } from "./images.ts";
import { startMachine, type GuestRam, type Machine, type NinepTree } from "./machine.ts";
import type { V86 } from "v86";
import { attachVirtioFs, v86MemorySize, type AttachedShare, type VirtioFsAttachment, type VirtioFsShare } from "./attach.ts";
import { SnapshotError, imageHashes, packSnapshot, unpackSnapshot, type SnapshotContents, type SnapshotShare } from "./snapshot.ts";

/** A virtio-fs share and where the guest mounts it (with dax=always when it has a DAX window, unless the options say otherwise). */
export interface GuestShare extends VirtioFsShare {
  mountPoint: string;
  mountOptions?: string;
}

/**
 * The mount options of a share: a share with a DAX window is mounted to map every regular file into it
 * (dax=always), programs included, or with a `daxInodeMinSize` dax=inode, which leaves the choice to the
 * server's FUSE_ATTR_DAX.
 */
export function shareMountOptions(share: Pick<GuestShare, "daxMiB" | "daxInodeMinSize" | "mountOptions">): string | undefined {
  const given = share.mountOptions?.split(",").filter(Boolean) ?? [];
  if (share.daxMiB !== undefined && !given.some((o) => o === "dax" || o.startsWith("dax="))) given.push(share.daxInodeMinSize === undefined ? "dax=always" : "dax=inode");
  return given.length ? given.join(",") : undefined;
}

/** What the machine boots from: the verified images and where v86.wasm is (a path in Node, a URL in a browser). */
export interface GuestRuntime {
  images: GuestImages;
  wasmPath: string;
}

export interface GuestOptions {
  /** Guest RAM (default 256); v86's memory adds the shares' DAX windows above it. */
  memoryMiB?: number;
  append?: string;
  /** virtio-fs devices to attach; /init mounts each. */
  shares?: GuestShare[];
  /** Other mounts for /init (v86's own virtio-9p is tag host9p). */
  mounts?: GuestMount[];
  /** Attach v86's own virtio-9p device (in memory, empty or a basefs tree), the benchmarks' comparison target. */
  ninep?: boolean | NinepTree;
  /** v86's memory in a SharedArrayBuffer (default: where available); guestMemory() tells which one runs. */
  sharedMemory?: boolean;
  /** The images and v86.wasm: a browser fetches them (fetch-images.ts), Node reads them (node-guest.ts). */
  runtime: GuestRuntime;
  /** Run this one command at boot (vfsw.exec) instead of taking commands with run(). */
  exec?: string;
  /** Start an interactive shell: console bytes go to onConsole, keys go in with send(). */
  interactive?: boolean;
  /** Console text outside command frames: the boot log, the interactive shell. */
  onConsole?(bytes: Uint8Array): void;
  /** init is ready (after boot and after every reboot; a restored guest, whose init was ready already: after every reboot), at this guest uptime in seconds. */
  onReady?(uptime: number): void;
  /** Stdout of the running command as it arrives. */
  onStdout?(bytes: Uint8Array): void;
  /** Runs once the devices are attached, before the CPU starts. */
  beforeRun?(emulator: V86, shares: readonly AttachedShare[]): void | Promise<void>;
  bootTimeoutMs?: number;
}

/**
 * What Guest.restore takes: the snapshot file, the runtime, and the shares to attach — the same tags in the
 * same order, each over a freshly constructed backend of the kind that was saved (a new MemFs, a HostDirFs
 * over the same directory, an OpfsFs over the same origin). The rest comes from the snapshot.
 */
export interface RestoreOptions extends Pick<GuestOptions, "runtime" | "onConsole" | "onStdout" | "onReady" | "beforeRun"> {
  /** The snapshot file, or its contents as unpackSnapshot read them (a page unpacks while the images load). */
  snapshot: Uint8Array | SnapshotContents;
  /** The shares, or a function of how the snapshot's shares were attached that builds them (the CLI's way). */
  shares?: GuestShare[] | ((saved: readonly SavedShare[]) => GuestShare[] | Promise<GuestShare[]>);
}

/** How a saved share was attached: what a restore must attach again. */
export type SavedShare = Pick<SnapshotShare, "tag" | "mountPoint" | "cache" | "writeback" | "numRequestQueues" | "locks"> & { daxMiB?: number; daxInodeMinSize?: number };

export interface RunResult {
  stdout: Uint8Array;
  stderr: Uint8Array;
  status: number;
}

export class GuestError extends Error {}

interface PendingRun {
  chunks: Uint8Array[];
  onStdout?: (bytes: Uint8Array) => void;
  resolve(r: RunResult): void;
}

/** How the machine is built: fresh (boot) or from a snapshot (restore). */
interface LaunchPlan {
  nonce: string;
  mode: GuestMode;
  cmdline: string;
  memoryBytes: number;
  ninep: boolean | NinepTree;
  restore?: SnapshotContents;
}

const decoder = new TextDecoder();
export const text = (b: Uint8Array): string => decoder.decode(b);

export class Guest {
  /** Guest uptime (seconds, from /proc/uptime) when init was ready. */
  uptimeAtReady = NaN;
  /** The attached virtio-fs devices and their FUSE servers, in the order of GuestOptions.shares. */
  shares: AttachedShare[] = [];
  /** When the snapshot this guest was restored from was taken (ISO 8601); undefined for a booted guest. */
  restoredFrom: string | undefined;
  /** Resolves when the guest halts (its shell or exec command ended). */
  readonly halted: Promise<void>;
  private machine: Machine | undefined;
  private attachment: VirtioFsAttachment | undefined;
  private current: PendingRun | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private markHalted!: () => void;
  private execDone: Promise<RunResult> | undefined;

  private constructor(private readonly agent: boolean) {
    this.halted = new Promise((r) => (this.markHalted = r));
  }

  static async boot(opts: GuestOptions): Promise<Guest> {
    const nonce = randomNonce();
    const mode: GuestMode = opts.exec !== undefined ? { kind: "exec", command: opts.exec } : opts.interactive ? { kind: "shell" } : { kind: "agent" };
    const shares = opts.shares ?? [];
    const mounts: GuestMount[] = [
      ...shares.map((sh) => ({ fstype: "virtiofs" as const, tag: sh.tag, dir: sh.mountPoint, options: shareMountOptions(sh) })),
      ...(opts.mounts ?? []),
    ];
    const cmdline = kernelCmdline({ nonce, mode, mounts, append: opts.append });
    const memoryBytes = v86MemorySize(opts.memoryMiB ?? 256, shares.flatMap((s) => (s.daxMiB === undefined ? [] : [s.daxMiB])));
    return Guest.launch(opts, { nonce, mode, cmdline, memoryBytes, ninep: opts.ninep ?? false });
  }

  /**
   * Resumes a guest from a snapshot (saveState) in a new emulator: the machine as it was, the shares'
   * devices and FUSE sessions as they were, the backends' state taken back by the given shares' backends.
   * SnapshotError when the file is damaged, foreign, for other guest images, or its shares do not match.
   */
  static async restore(opts: RestoreOptions): Promise<Guest> {
    const snap = opts.snapshot instanceof Uint8Array ? await unpackSnapshot(opts.snapshot) : opts.snapshot;
    const have = await imageHashes(opts.runtime.images);
    for (const [name, sum] of Object.entries(snap.images)) {
      if (have[name as keyof typeof have] !== sum) throw new SnapshotError(`the snapshot was taken with another ${name} (sha256 ${sum.slice(0, 12)}…, these images have ${have[name as keyof typeof have].slice(0, 12)}…)`);
    }
    const saved = snap.shares.map(
      ({ tag, mountPoint, cache, writeback, numRequestQueues, locks, daxMiB, daxInodeMinSize }): SavedShare => ({
        tag,
        mountPoint,
        cache,
        writeback,
        numRequestQueues,
        locks,
        ...(daxMiB === null ? {} : { daxMiB }),
        ...(daxInodeMinSize === null ? {} : { daxInodeMinSize }),
      }),
    );
    const shares = typeof opts.shares === "function" ? await opts.shares(saved) : (opts.shares ?? []);
    const want = snap.shares.map((s) => `${s.tag}:${s.mountPoint}`).join(", ");
    if (shares.map((s) => `${s.tag}:${s.mountPoint}`).join(", ") !== want) throw new SnapshotError(`the snapshot has shares ${want || "(none)"}; give the same tags and mount points, in order`);
    for (const [i, s] of snap.shares.entries()) {
      const given = shares[i]!;
      const mismatch = [
        ["cache", s.cache, given.cache ?? "auto"],
        ["writeback", s.writeback, given.writeback ?? false],
        ["numRequestQueues", s.numRequestQueues, given.numRequestQueues ?? 1],
        ["locks", s.locks, given.locks ?? "auto"],
        ["daxMiB", s.daxMiB, given.daxMiB ?? null],
        ["daxInodeMinSize", s.daxInodeMinSize, given.daxInodeMinSize ?? null],
      ].find(([, a, b]) => a !== b);
      if (mismatch) throw new SnapshotError(`share ${s.tag}: the snapshot has ${mismatch[0]}=${String(mismatch[1])}, the share given ${String(mismatch[2])}`);
    }
    return Guest.launch(
      { runtime: opts.runtime, shares, onConsole: opts.onConsole, onStdout: opts.onStdout, onReady: opts.onReady, beforeRun: opts.beforeRun, interactive: snap.mode === "shell" },
      { nonce: snap.nonce, mode: { kind: snap.mode }, cmdline: snap.cmdline, memoryBytes: snap.memoryBytes, ninep: snap.ninep, restore: snap },
    );
  }

  private static async launch(opts: GuestOptions, plan: LaunchPlan): Promise<Guest> {
    const { images, wasmPath } = opts.runtime;
    const { nonce, mode, cmdline } = plan;
    const shares = opts.shares ?? [];
    const guest = new Guest(mode.kind === "agent");
    guest.plan = plan;
    guest.shareOptions = shares;
    guest.images = images;
    if (mode.kind === "exec") {
      guest.execDone = new Promise((resolve) => (guest.current = { chunks: [], onStdout: opts.onStdout, resolve }));
    }

    // A restored guest's init was ready already: nothing waits for it.
    const readyP = plan.restore ? undefined : guest.nextReady();
    const frames = new ConsoleFrames(nonce, {
      console: opts.onConsole,
      ready: (up) => {
        guest.uptimeAtReady = up;
        opts.onReady?.(up);
        for (const w of guest.readyWaiters.splice(0)) w.resolve();
      },
      stdout: (b) => {
        guest.current?.chunks.push(b);
        guest.current?.onStdout?.(b);
      },
      end: (stderr, status) => {
        const run = guest.current;
        guest.current = undefined;
        run?.resolve({ stdout: concatAll(run.chunks), stderr, status });
      },
      halt: () => guest.markHalted(),
      fail: (reason) => {
        for (const w of guest.readyWaiters.splice(0)) w.reject(new GuestError(`the guest could not start: ${reason}`));
      },
    });
    guest.machine = await startMachine({
      images,
      cmdline,
      memoryBytes: plan.memoryBytes,
      wasmPath,
      ninep: plan.ninep,
      sharedMemory: opts.sharedMemory,
      onSerial: (b) => frames.push(b),
      beforeRun: async (emulator) => {
        guest.attachment = await attachVirtioFs(emulator, shares);
        guest.shares = [...guest.attachment.shares];
        if (plan.restore) await guest.takeState(emulator, plan.restore);
        await opts.beforeRun?.(emulator, guest.shares);
      },
    });
    guest.bootTimeoutMs = opts.bootTimeoutMs ?? 120_000;
    if (!readyP) {
      const { uptimeAtReady, created } = plan.restore!;
      guest.uptimeAtReady = uptimeAtReady;
      guest.restoredFrom = created;
      guest.plan = { ...plan, restore: undefined }; // let the saved state (guest RAM and all) go
      return guest; // init was ready when the snapshot was taken, and still is
    }
    try {
      await guest.waitReady(readyP);
    } catch (e) {
      await guest.shutdown();
      throw e;
    }
    return guest;
  }

  /** v86's state, then the shares' (attachment.restoreState). */
  private async takeState(emulator: V86, snap: SnapshotContents): Promise<void> {
    await emulator.restore_state(snap.v86.slice().buffer);
    try {
      await this.attachment!.restoreState(snap.virtiofs);
    } catch (e) {
      throw new SnapshotError(e instanceof Error ? e.message : String(e));
    }
  }

  /**
   * The running guest with its shares as one snapshot file (see snapshot.ts), for Guest.restore. Waits for
   * the commands queued before it, stops the CPU, lets every request in flight finish (a SETLKW waiting
   * for a lock stays in flight and is served again after restore), saves, and runs on. Not for a guest
   * booted with exec.
   */
  async saveState(): Promise<Uint8Array> {
    const job = this.queue.then(() => this.takeSnapshot());
    this.queue = job.catch(() => undefined);
    return job;
  }

  private async takeSnapshot(): Promise<Uint8Array> {
    const plan = this.plan;
    const emulator = this.emulator;
    if (plan.mode.kind === "exec") throw new GuestError("a guest booted with exec cannot be saved: boot it without exec and run() the command");
    emulator.stop();
    try {
      const virtiofs = await this.attachment!.saveState();
      const v86 = new Uint8Array(await emulator.save_state());
      const shares = this.shareOptions.map((o) => ({
        tag: o.tag,
        mountPoint: o.mountPoint,
        cache: o.cache ?? "auto",
        writeback: o.writeback ?? false,
        numRequestQueues: o.numRequestQueues ?? 1,
        locks: o.locks ?? "auto",
        daxMiB: o.daxMiB ?? null,
        daxInodeMinSize: o.daxInodeMinSize ?? null,
      }));
      return await packSnapshot({
        created: new Date().toISOString(),
        images: await imageHashes(this.images),
        memoryBytes: plan.memoryBytes,
        cmdline: plan.cmdline,
        nonce: plan.nonce,
        mode: plan.mode.kind,
        ninep: plan.ninep !== false, // v86's state holds the 9p tree itself
        uptimeAtReady: this.uptimeAtReady,
        v86,
        shares,
        virtiofs,
      });
    } finally {
      void emulator.run();
    }
  }

  private bootTimeoutMs = 0;
  private plan!: LaunchPlan;
  private shareOptions: readonly GuestShare[] = [];
  private images!: GuestImages;
  private readonly readyWaiters: { resolve: () => void; reject: (e: GuestError) => void }[] = [];

  /** Resolves when init is next ready; rejects when it reports a failure instead. */
  private nextReady(): Promise<void> {
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  private async waitReady(ready: Promise<void>): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new GuestError(`guest did not come up within ${this.bootTimeoutMs / 1000} s`)), this.bootTimeoutMs);
    });
    try {
      await Promise.race([ready, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Reboots the machine from inside the guest (`reboot -f`) and waits until init is ready again. */
  async reboot(): Promise<void> {
    if (!this.agent) throw new GuestError("reboot() needs a guest booted without exec or interactive");
    await this.queue;
    const ready = this.nextReady();
    this.sendCommand("reboot -f"); // never answers: the machine resets under it
    await this.waitReady(ready);
  }

  /** How the guest takes commands: run() (agent), its console (shell), or the one given at boot (exec). */
  get mode(): GuestMode["kind"] {
    return this.plan.mode.kind;
  }

  get emulator(): V86 {
    if (!this.machine) throw new GuestError("guest is not running");
    return this.machine.emulator;
  }

  /** Guest RAM inside v86's memory, and whether that is shared (see GuestRam). */
  guestMemory(): GuestRam {
    if (!this.machine) throw new GuestError("guest is not running");
    return this.machine.guestMemory();
  }

  /** JIT modules v86 compiled against the shared memory so far. */
  get sharedJitModules(): number {
    return this.machine?.sharedJitModules ?? 0;
  }

  /** Runs a shell script in the guest (agent mode); commands queue one after another. */
  run(command: string, onStdout?: (bytes: Uint8Array) => void): Promise<RunResult> {
    if (!this.agent) return Promise.reject(new GuestError("run() needs a guest booted without exec or interactive"));
    const job = this.queue.then(
      () =>
        new Promise<RunResult>((resolve) => {
          this.current = { chunks: [], onStdout, resolve };
          this.sendCommand(command);
        }),
    );
    this.queue = job.catch(() => undefined);
    return job;
  }

  /** The result of the command given at boot (GuestOptions.exec). */
  waitExec(): Promise<RunResult> {
    return this.execDone ?? Promise.reject(new GuestError("the guest was booted without exec"));
  }

  /** The agent's input format: base64 lines, then a line ".". */
  private sendCommand(command: string): void {
    const b64 = utf8Base64(command);
    this.send(`${b64.replace(/.{1,76}/g, "$&\n")}.\n`);
  }

  send(data: Uint8Array | string): void {
    this.machine?.send(data);
  }

  /** Stops the machine and ends the devices' FUSE sessions: the backends get every handle back. */
  async shutdown(): Promise<void> {
    const m = this.machine;
    this.machine = undefined;
    await m?.destroy();
    await this.attachment?.detach();
  }
}

function concatAll(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}
