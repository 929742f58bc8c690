// A guest handle: boot the PC, run shell commands through guest/init's framed console, shut down. The same
// code runs in Node and in a browser Worker; only where the images and v86.wasm come from differs.
import { ConsoleFrames } from "./console-frames.ts";
import { kernelCmdline, randomNonce, utf8Base64, type GuestMount } from "./cmdline.ts";
import type { GuestImages } from "./images.ts";
import { startMachine, type GuestRam, type Machine } from "./machine.ts";
import type { V86 } from "v86";
import { attachVirtioFs, v86MemorySize, type AttachedShare, type VirtioFsAttachment, type VirtioFsShare } from "./attach.ts";

/** A virtio-fs share and where the guest mounts it (with dax=always when it has a DAX window, unless the options say otherwise). */
export interface GuestShare extends VirtioFsShare {
  mountPoint: string;
  mountOptions?: string;
}

/**
 * The mount options of a share: a share with a DAX window is mounted to map every regular file into it
 * (dax=always), programs included; dax=inode leaves the choice to the server's FUSE_ATTR_DAX.
 */
export function shareMountOptions(share: Pick<GuestShare, "daxMiB" | "mountOptions">): string | undefined {
  const given = share.mountOptions?.split(",").filter(Boolean) ?? [];
  if (share.daxMiB !== undefined && !given.some((o) => o === "dax" || o.startsWith("dax="))) given.push("dax=always");
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
  /** Attach v86's own virtio-9p device (in memory), the benchmarks' comparison target. */
  ninep?: boolean;
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
  /** init is ready (after boot and after every reboot), at this guest uptime in seconds. */
  onReady?(uptime: number): void;
  /** Stdout of the running command as it arrives. */
  onStdout?(bytes: Uint8Array): void;
  /** Runs once the devices are attached, before the CPU starts. */
  beforeRun?(emulator: V86, shares: readonly AttachedShare[]): void | Promise<void>;
  bootTimeoutMs?: number;
}

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

const decoder = new TextDecoder();
export const text = (b: Uint8Array): string => decoder.decode(b);

export class Guest {
  /** Guest uptime (seconds, from /proc/uptime) when init was ready. */
  uptimeAtReady = NaN;
  /** The attached virtio-fs devices and their FUSE servers, in the order of GuestOptions.shares. */
  shares: AttachedShare[] = [];
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
    const { images, wasmPath } = opts.runtime;
    const nonce = randomNonce();
    const mode = opts.exec !== undefined ? { kind: "exec" as const, command: opts.exec } : opts.interactive ? { kind: "shell" as const } : { kind: "agent" as const };
    const shares = opts.shares ?? [];
    const mounts: GuestMount[] = [
      ...shares.map((sh) => ({ fstype: "virtiofs" as const, tag: sh.tag, dir: sh.mountPoint, options: shareMountOptions(sh) })),
      ...(opts.mounts ?? []),
    ];
    const cmdline = kernelCmdline({ nonce, mode, mounts, append: opts.append });
    const guest = new Guest(mode.kind === "agent");
    if (mode.kind === "exec") {
      guest.execDone = new Promise((resolve) => (guest.current = { chunks: [], onStdout: opts.onStdout, resolve }));
    }

    const readyP = guest.nextReady();
    const frames = new ConsoleFrames(nonce, {
      console: opts.onConsole,
      ready: (up) => {
        guest.uptimeAtReady = up;
        opts.onReady?.(up);
        for (const r of guest.readyWaiters.splice(0)) r();
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
    });
    guest.machine = await startMachine({
      images,
      cmdline,
      memoryBytes: v86MemorySize(opts.memoryMiB ?? 256, shares.flatMap((s) => (s.daxMiB === undefined ? [] : [s.daxMiB]))),
      wasmPath,
      ninep: opts.ninep,
      sharedMemory: opts.sharedMemory,
      onSerial: (b) => frames.push(b),
      beforeRun: async (emulator) => {
        guest.attachment = await attachVirtioFs(emulator, shares);
        guest.shares = [...guest.attachment.shares];
        await opts.beforeRun?.(emulator, guest.shares);
      },
    });
    guest.bootTimeoutMs = opts.bootTimeoutMs ?? 120_000;
    try {
      await guest.waitReady(readyP);
    } catch (e) {
      await guest.shutdown();
      throw e;
    }
    return guest;
  }

  private bootTimeoutMs = 0;
  private readonly readyWaiters: (() => void)[] = [];

  private nextReady(): Promise<void> {
    return new Promise((r) => this.readyWaiters.push(r));
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
