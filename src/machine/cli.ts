// The `virtiofs-web` command: boots the guest under Node.
import { parseArgs } from "node:util";
import { CmdlineError } from "./cmdline.ts";
import { readFile, rename, writeFile } from "node:fs/promises";
import { GuestError, type Guest, type SavedShare } from "./guest.ts";
import { bootGuest, restoreGuest, type NodeGuestOptions } from "./node-guest.ts";
import { DEBIAN_IMAGES_DIR, debianRootDir } from "./node-images.ts";
import { join } from "node:path";
import { fileBlobSource } from "../fs/image/file-source.ts";
import { INDEX_NAME } from "../fs/image/format.ts";
import { ImageFs } from "../fs/image/image.ts";
import { parseImageIndex } from "../fs/image/index.ts";
import { OverlayFs } from "../fs/image/overlay.ts";
import { SnapshotError } from "./snapshot.ts";
import type { FileSystem } from "../vfs/filesystem.ts";
import { CACHE_MODES, LOCK_MODES, type CacheMode, type LockMode } from "../fuse/session.ts";
import { HostDirFs } from "../fs/hostdir/hostdir.ts";
import { MemFs } from "../fs/memfs/memfs.ts";
import { createSampleTree } from "../fs/sample-tree.ts";
import { ImageError } from "./images.ts";
import { DAX_MIB_MAX, DAX_MIB_MIN, V86_MEMORY_MAX, daxWindowSize, v86MemorySize } from "./attach.ts";

const MEMORY_MIB_MAX = Math.floor(V86_MEMORY_MAX / (1 << 20));
const GUESTS_MAX = 8;

const USAGE = `usage: virtiofs-web run [--root <dir> | --root debian | --root-image <dir> [--root-overlay <dir>]] [--share <dir> | --memfs] [--tag <name>] [--cache <mode>] [--writeback] [--readonly]
                        [--dax [MiB]] [--guests <N>] [--locks <mode>] [--exec "<cmd>"] [--browser]
                        [--memory <MiB>] [--append "<kernel args>"] [--kernel <k> | --images <dir>] [--boot-timeout <s>] [--verbose]
                        [--save-state <file>] [--restore-state <file>]

  --root <dir>      boot from a virtio-fs root: a host directory holding a Linux tree (it needs /dev,
                    /proc, /sys and /run), read-write, tag root. /init mounts it and moves into it (as switch_root);
                    --exec runs with the tree's own programs; at the console, the tree's /sbin/init if it
                    has one, else a login shell. --dax then maps the root. No /mnt share unless
                    --share or --memfs asks for one
  --root debian     boot from the Debian 12 userland that npm run guest:rootfs builds (a lazy image)
  --root-image <dir>
                    boot from a lazy image (index.json + blobs/): files are read from it on first use,
                    changes go to an overlay
  --root-overlay <dir>
                    keep an image root's changes in this host directory (default: in memory, gone at exit)
  --share <dir>     export a host directory over virtio-fs; the guest mounts it on /mnt
  --memfs           export the embedded sample tree instead (the default without --root)
  --tag <name>      the virtio-fs tag (default: share)
  --cache <mode>    never | metadata | auto | always, as virtiofsd (default: auto; never with --guests:
                    one guest's write is then seen by the others at once)
  --writeback       let the guest's page cache gather writes (FUSE_WRITEBACK_CACHE)
  --readonly        every write fails with EROFS
  --dax [MiB]       give the device a DAX window of MiB (a power of two, ${DAX_MIB_MIN} to ${DAX_MIB_MAX}; default 256,
                    or 64 with more than 512 MiB of RAM) in v86's memory above the guest's RAM, and
                    mount with -o dax=always: the guest maps every file instead of reading it into its
                    page cache, and runs programs straight from the window
  --dax-min <size>  with --dax, mount with -o dax=inode instead: only files of at least <size> bytes
                    (a K, M or G suffix counts KiB, MiB, GiB; e.g. 1M) use the window, smaller ones the
                    page cache, where one READ costs less than mapping a 2 MiB range
  --guests <N>      boot N guests (1 to ${GUESTS_MAX}) on the one tree, each with its own device; $GUEST is
                    0..N-1 in each. Not with --dax, --writeback or --browser (their caches would not be
                    coherent across guests)
  --locks <mode>    who keeps file locks: guest (each guest kernel), device (across guests), auto (the
                    default: device with --guests, else guest)
  --exec <cmd>      run <cmd> in the guest (in every guest at once with --guests: output lines prefixed
                    [N]), print its output, exit with its status (the first non-zero one)
  --browser         run the guest in headless Chromium (as the demo page does, in a Worker) instead of
                    in this process; needs --exec. The share is served to the page read-write.
                    Chromium: /usr/bin/chromium, or CHROMIUM_PATH
  --memory <MiB>    guest RAM, 96 to ${MEMORY_MIB_MAX} with any DAX window (default 256)
  --append <args>   extra kernel command-line parameters
  --kernel <k>      project (the default: public/guest) or debian: Debian 12's stock i386 kernel and its
                    modules (public/guest-debian, made by npm run guest:debian-kernel); it has no FUSE
                    DAX, so not with --dax
  --images <dir>    guest images and their manifest.json (default: public/guest)
  --boot-timeout <s>
                    seconds to wait for the guest's init (default 120: Debian's stock kernel takes 25-30 s
                    on a loaded 2-core machine, the project's 6-8 s)
  --verbose         show the boot log (on stderr)
  --save-state <file>
                    save the running guest with its share to <file> (a snapshot): after the --exec
                    command has ended, or on Ctrl-A s in the interactive console
  --restore-state <file>
                    resume the guest saved in <file> instead of booting, and run --exec in it (or take
                    the console back). The share's backend is --share <dir> (the same directory: its
                    files stay where they are) or the memfs tree the snapshot holds; the rest of the
                    machine comes from the snapshot
Without --exec: an interactive console on this terminal; Ctrl-A x quits, Ctrl-A 0..9 shows guest N's console,
Ctrl-A s saves to the --save-state file.`;

class UsageError extends Error {}

type RootArg = { kind: "dir" | "image"; path: string; /** --root debian */ debian?: boolean; /** --root-overlay */ overlay?: string };

/** The tag of the share the guest boots from. */
const ROOT_TAG = "root";

interface RunArgs {
  /** What the guest boots from: --root <dir>, or --root debian / --root-image with --root-overlay. */
  root?: RootArg;
  /** A share on /mnt: --share, --memfs, or neither without --root. */
  mnt: boolean;
  share?: string;
  tag: string;
  cache: CacheMode;
  writeback: boolean;
  readonly: boolean;
  /** Size of the DAX window; undefined without --dax. */
  daxMiB?: number;
  /** --dax-min: mount dax=inode, files of at least this many bytes in the window. */
  daxInodeMinSize?: number;
  guests: number;
  locks: LockMode;
  exec?: string;
  browser: boolean;
  memoryMiB: number;
  append?: string;
  imagesDir?: string;
  verbose: boolean;
  /** --boot-timeout, in ms. */
  bootTimeoutMs?: number;
  saveState?: string;
  restoreState?: string;
}

export function parseCli(argv: string[]): RunArgs | "help" {
  if (argv.length === 0 || argv[0] === "--help" || argv[0] === "-h" || argv[0] === "help") return "help";
  const [cmd, ...args] = argv;
  const rest = daxValue(args);
  if (cmd !== "run") throw new UsageError(`unknown command '${cmd}' (try: virtiofs-web run --help)`);
  let values;
  try {
    ({ values } = parseArgs({
      args: rest,
      strict: true,
      allowPositionals: false,
      options: {
        root: { type: "string" },
        "root-image": { type: "string" },
        "root-overlay": { type: "string" },
        share: { type: "string" },
        memfs: { type: "boolean", default: false },
        tag: { type: "string" },
        cache: { type: "string" },
        writeback: { type: "boolean", default: false },
        readonly: { type: "boolean", default: false },
        dax: { type: "string" },
        "dax-min": { type: "string" },
        guests: { type: "string", default: "1" },
        locks: { type: "string" },
        exec: { type: "string" },
        browser: { type: "boolean", default: false },
        memory: { type: "string" },
        append: { type: "string" },
        kernel: { type: "string" },
        images: { type: "string" },
        verbose: { type: "boolean", default: false },
        "boot-timeout": { type: "string" },
        "save-state": { type: "string" },
        "restore-state": { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (e) {
    throw new UsageError((e as Error).message.split("\n")[0]);
  }
  if (values.help) return "help";
  if (values.share !== undefined && values.memfs) throw new UsageError("--share and --memfs exclude each other");
  if (values.root !== undefined && values["root-image"] !== undefined) throw new UsageError("--root and --root-image exclude each other");
  const root: RootArg | undefined =
    values.root === "debian" ? { kind: "image", path: join(debianRootDir(), "image"), debian: true } : values.root !== undefined ? { kind: "dir", path: values.root } : values["root-image"] !== undefined ? { kind: "image", path: values["root-image"] } : undefined;
  if (values["root-overlay"] !== undefined) {
    if (root?.kind !== "image") throw new UsageError("--root-overlay keeps an image root's changes: it needs --root debian or --root-image");
    root.overlay = values["root-overlay"];
  }
  if (root !== undefined) {
    const alone = values.browser ? "--browser" : values["restore-state"] !== undefined ? "--restore-state" : undefined;
    if (alone) throw new UsageError(`--root and ${alone} exclude each other: the root is served from this process and booted fresh`);
  }
  if (values.browser && values.exec === undefined) throw new UsageError("--browser needs --exec: the console of a headless browser is not this terminal");
  const guests = Number(values.guests);
  if (!Number.isInteger(guests) || guests < 1 || guests > GUESTS_MAX) throw new UsageError(`--guests takes a whole number from 1 to ${GUESTS_MAX}, not '${values.guests}'`);
  if (guests > 1) {
    const alone = values.dax !== undefined ? "--dax" : values.writeback ? "--writeback" : values.browser ? "--browser" : undefined;
    if (alone) throw new UsageError(`--guests ${guests} and ${alone} exclude each other: that cache would not be coherent across guests`);
  }
  if (values["save-state"] !== undefined || values["restore-state"] !== undefined) {
    const flag = values["save-state"] !== undefined ? "--save-state" : "--restore-state";
    const alone = guests > 1 ? "--guests" : values.browser ? "--browser" : undefined;
    if (alone) throw new UsageError(`${flag} and ${alone} exclude each other: a snapshot holds one guest of this process`);
  }
  if (values["restore-state"] !== undefined) {
    const fromSnapshot = (["tag", "cache", "writeback", "readonly", "locks", "memory", "append", "dax", "dax-min"] as const).find((k) => values[k] !== undefined && values[k] !== false);
    if (fromSnapshot) throw new UsageError(`--restore-state and --${fromSnapshot} exclude each other: the machine and its share come from the snapshot`);
  }
  const kernel = values.kernel ?? "project";
  if (kernel !== "project" && kernel !== "debian") throw new UsageError(`--kernel takes project or debian, not '${values.kernel}'`);
  if (values.kernel !== undefined && values.images !== undefined) throw new UsageError("--kernel and --images exclude each other: --kernel names an images directory");
  // Debian builds without CONFIG_FUSE_DAX: the guest would refuse the mount.
  if (kernel === "debian" && values.dax !== undefined) throw new UsageError("--kernel debian and --dax exclude each other: Debian's kernel has no FUSE DAX (CONFIG_FUSE_DAX)");
  const cache = (values.cache ?? (guests > 1 ? "never" : "auto")) as CacheMode;
  if (!CACHE_MODES.includes(cache)) throw new UsageError(`--cache takes ${CACHE_MODES.join(", ")}, not '${values.cache}'`);
  const locks = (values.locks ?? "auto") as LockMode;
  if (!LOCK_MODES.includes(locks)) throw new UsageError(`--locks takes ${LOCK_MODES.join(", ")}, not '${values.locks}'`);
  const memoryMiB = values.memory === undefined ? 256 : Number(values.memory);
  if (!Number.isInteger(memoryMiB) || memoryMiB < 96 || memoryMiB > MEMORY_MIB_MAX) {
    throw new UsageError(`--memory takes a whole number of MiB from 96 to ${MEMORY_MIB_MAX}, not '${values.memory}'`);
  }
  const dax = values.dax === undefined ? undefined : daxMiB(values.dax, memoryMiB);
  if (values["dax-min"] !== undefined && dax === undefined) throw new UsageError("--dax-min chooses which files use the DAX window: it needs --dax");
  const daxInodeMinSize = values["dax-min"] === undefined ? undefined : byteSize(values["dax-min"], "--dax-min");
  try {
    v86MemorySize(memoryMiB, dax === undefined ? [] : [dax]);
  } catch (e) {
    throw new UsageError(`--memory ${memoryMiB} --dax ${dax}: ${(e as Error).message}`);
  }
  const bootTimeout = values["boot-timeout"] === undefined ? undefined : Number(values["boot-timeout"]);
  if (bootTimeout !== undefined && !(Number.isFinite(bootTimeout) && bootTimeout > 0)) throw new UsageError(`--boot-timeout takes a number of seconds, not '${values["boot-timeout"]}'`);
  const bootTimeoutMs = bootTimeout === undefined ? undefined : bootTimeout * 1000;
  const tag = values.tag ?? "share";
  if (root !== undefined && tag === ROOT_TAG) throw new UsageError(`--tag ${ROOT_TAG} is the root's`);
  return {
    root,
    mnt: root === undefined || values.share !== undefined || values.memfs,
    share: values.share,
    tag,
    cache,
    writeback: values.writeback,
    readonly: values.readonly,
    daxMiB: dax,
    daxInodeMinSize,
    guests,
    // Guests boot one after another: "auto" could see one server as the first mounts.
    locks: locks === "auto" && guests > 1 ? "device" : locks,
    exec: values.exec,
    browser: values.browser,
    memoryMiB,
    append: values.append,
    imagesDir: kernel === "debian" ? DEBIAN_IMAGES_DIR : values.images,
    verbose: values.verbose,
    bootTimeoutMs,
    saveState: values["save-state"],
    restoreState: values["restore-state"],
  };
}

/** `--dax` takes an optional value, which parseArgs cannot express: a bare --dax becomes --dax= (the default). */
function daxValue(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] !== "--dax") out.push(args[i]!);
    else if (/^\d+$/.test(args[i + 1] ?? "")) out.push(`--dax=${args[++i]}`);
    else out.push("--dax=");
  }
  return out;
}

/**
 * The window's size. Linux maps it into vmalloc space, which shrinks as RAM grows (i386: about 750 MiB free
 * with 256 MiB of RAM, 120 MiB with 1 GiB), hence the default.
 */
function daxMiB(value: string, memoryMiB: number): number {
  const mib = value === "" ? (memoryMiB <= 512 ? 256 : 64) : Number(value);
  try {
    daxWindowSize(mib);
  } catch {
    throw new UsageError(`--dax takes a power of two from ${DAX_MIB_MIN} to ${DAX_MIB_MAX} MiB, not '${value}'`);
  }
  return mib;
}

/** A number of bytes, with an optional K, M or G suffix (binary units). */
function byteSize(value: string, flag: string): number {
  const m = /^(\d+)([KMG]?)$/i.exec(value);
  const bytes = m ? Number(m[1]) * 1024 ** " KMG".indexOf((m[2] || " ").toUpperCase()) : NaN;
  if (!Number.isSafeInteger(bytes)) throw new UsageError(`${flag} takes a size in bytes (a K, M or G suffix allowed, e.g. 1M), not '${value}'`);
  return bytes;
}

/** The backend behind --share / --memfs. */
async function shareFs(a: RunArgs): Promise<FileSystem> {
  const options = { readOnly: a.readonly };
  if (a.share === undefined) {
    // Written through a writable MemFs; a read-only share then serves the same Volume.
    const sample = new MemFs();
    await createSampleTree(sample);
    return a.readonly ? new MemFs(sample.vol, options) : sample;
  }
  try {
    return await HostDirFs.open(a.share, options);
  } catch (e) {
    throw new UsageError(`--share ${a.share}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** The backend behind --root / --root-image: a host directory, or a lazy image under an overlay. */
async function rootFs(root: RootArg): Promise<FileSystem> {
  const flag = root.debian ? "--root debian" : root.kind === "dir" ? `--root ${root.path}` : `--root-image ${root.path}`;
  try {
    if (root.kind === "dir") return await HostDirFs.open(root.path, {});
    const index = await readFile(join(root.path, INDEX_NAME), "utf8").catch((e: unknown) => {
      throw root.debian ? new Error(`no image at ${root.path} (npm run guest:rootfs builds it)`) : e;
    });
    const upper = root.overlay === undefined ? new MemFs() : await HostDirFs.open(root.overlay, {});
    return await OverlayFs.mount(new ImageFs(parseImageIndex(index), fileBlobSource(root.path)), upper);
  } catch (e) {
    throw new UsageError(`${flag}: ${message(e)}`);
  }
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** The backends of a run, each shared by all its guests. */
interface Backends {
  root?: FileSystem;
  mnt?: FileSystem;
}

async function backends(a: RunArgs): Promise<Backends> {
  return { root: a.root === undefined ? undefined : await rootFs(a.root), mnt: a.mnt ? await shareFs(a) : undefined };
}

/** The options of guest `n` of a.guests. A DAX window maps the root when there is one (programs run from it). */
function guestOptions(a: RunArgs, fs: Backends, n: number): NodeGuestOptions {
  const share = { cache: a.cache, writeback: a.writeback, locks: a.locks };
  const dax = { daxMiB: a.daxMiB, daxInodeMinSize: a.daxInodeMinSize };
  return {
    memoryMiB: a.memoryMiB,
    bootTimeoutMs: a.bootTimeoutMs,
    append: [a.append, a.guests > 1 ? `vfsw.guest=${n}` : undefined].filter(Boolean).join(" ") || undefined,
    imagesDir: a.imagesDir,
    shares: [
      ...(fs.root ? [{ ...share, tag: ROOT_TAG, fs: fs.root, ...dax, mountPoint: "/" }] : []),
      ...(fs.mnt ? [{ ...share, tag: a.tag, fs: fs.mnt, ...(fs.root ? {} : dax), mountPoint: "/mnt" }] : []),
    ],
  };
}

/** Boots a.guests guests on one backend; if one fails to boot, the others are shut down. */
async function bootGuests(a: RunArgs, options: (n: number) => Partial<NodeGuestOptions>): Promise<Guest[]> {
  const fs = await backends(a);
  const booting = Array.from({ length: a.guests }, (_, n) => bootGuest({ ...guestOptions(a, fs, n), ...options(n) }));
  const booted = await Promise.allSettled(booting);
  const failed = booted.find((r) => r.status === "rejected");
  if (!failed) return booted.map((r) => (r as PromiseFulfilledResult<Guest>).value);
  await Promise.all(booted.map((r) => (r.status === "fulfilled" ? r.value.shutdown() : undefined)));
  throw failed.reason;
}

/**
 * The guest of --restore-state, resumed over the backend the snapshot's share had: a host directory
 * (--share, by reference) or the memfs tree the snapshot holds.
 */
async function resumeGuest(a: RunArgs & { restoreState: string }, options: Pick<NodeGuestOptions, "onConsole" | "onStdout">): Promise<Guest> {
  let snapshot: Uint8Array;
  try {
    snapshot = await readFile(a.restoreState);
  } catch (e) {
    throw new UsageError(`--restore-state ${a.restoreState}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const shares = async (saved: readonly SavedShare[]) => {
    if (a.share !== undefined && saved.length !== 1) throw new SnapshotError(`the snapshot has ${saved.length} shares; --share gives one`);
    return Promise.all(saved.map(async (s) => ({ ...s, fs: a.share === undefined ? new MemFs() : await shareFs(a) })));
  };
  return restoreGuest({ imagesDir: a.imagesDir, snapshot, shares, ...options });
}

/** Writes the snapshot beside its destination first: an interrupted save leaves the last good file. */
async function saveTo(guest: Guest, file: string): Promise<void> {
  const bytes = await guest.saveState();
  const tmp = `${file}.partial`;
  await writeFile(tmp, bytes);
  await rename(tmp, file);
}

/** --exec with --save-state or --restore-state: the command runs in an agent guest, which a snapshot can hold. */
async function runExecSaved(a: RunArgs & { exec: string }): Promise<number> {
  const onConsole = a.verbose ? (b: Uint8Array) => process.stderr.write(b) : undefined;
  const guest = a.restoreState !== undefined ? await resumeGuest({ ...a, restoreState: a.restoreState }, { onConsole }) : await bootGuest({ ...guestOptions(a, await backends(a), 0), onConsole });
  try {
    if (guest.mode !== "agent") throw new SnapshotError("the snapshot holds an interactive console: restore it without --exec");
    const r = await guest.run(a.exec, (b) => process.stdout.write(b));
    process.stderr.write(r.stderr);
    if (a.saveState !== undefined) await saveTo(guest, a.saveState);
    return r.status;
  } finally {
    await guest.shutdown();
  }
}

async function runExec(a: RunArgs & { exec: string }): Promise<number> {
  // Several guests: each line of output goes out whole, prefixed with its guest's number.
  const out = (n: number, to: NodeJS.WriteStream) => (a.guests > 1 ? linePrefixer(`[${n}] `, (t) => to.write(t)) : { write: (b: Uint8Array) => to.write(b), end() {} });
  const stdout = Array.from({ length: a.guests }, (_, n) => out(n, process.stdout));
  const guests = await bootGuests(a, (n) => ({
    exec: a.exec,
    onConsole: a.verbose ? (b) => process.stderr.write(b) : undefined,
    onStdout: (b) => stdout[n]!.write(b),
  }));
  const results = await Promise.all(
    guests.map(async (g, n) => {
      const r = await g.waitExec();
      stdout[n]!.end();
      const stderr = out(n, process.stderr);
      stderr.write(r.stderr);
      stderr.end();
      await g.shutdown();
      return r.status;
    }),
  );
  return results.find((status) => status !== 0) ?? 0;
}

/** Writes whole lines, each prefixed; end() writes what is left of the last one. */
function linePrefixer(prefix: string, write: (text: string) => void): { write(bytes: Uint8Array): void; end(): void } {
  const decoder = new TextDecoder();
  let partial = "";
  return {
    write(bytes) {
      const lines = (partial + decoder.decode(bytes, { stream: true })).split("\n");
      partial = lines.pop()!;
      if (lines.length) write(lines.map((l) => `${prefix}${l}\n`).join(""));
    },
    end() {
      partial += decoder.decode();
      if (partial) write(`${prefix}${partial}\n`);
      partial = "";
    },
  };
}

async function runExecInBrowser(a: RunArgs & { exec: string }): Promise<number> {
  const { runInBrowser } = await import("./cli-browser.ts");
  return runInBrowser({
    settings: {
      exec: a.exec,
      memoryMiB: a.memoryMiB,
      append: a.append,
      tag: a.tag,
      cache: a.cache,
      writeback: a.writeback,
      daxMiB: a.daxMiB,
      daxInodeMinSize: a.daxInodeMinSize,
      remoteShare: a.share !== undefined,
      readOnly: a.readonly,
      verbose: a.verbose,
    },
    fs: a.share === undefined ? undefined : await shareFs(a),
    imagesDir: a.imagesDir,
    out: (stream, bytes) => (stream === "stdout" ? process.stdout : process.stderr).write(bytes),
  });
}

const CTRL_A = 0x01;

/** Console bytes kept for a guest not on the screen, replayed when it is switched to. */
const BACKLOG_BYTES = 64 * 1024;

async function runInteractive(a: RunArgs): Promise<number> {
  const stdin = process.stdin;
  let shown = 0;
  const backlog: Uint8Array[][] = Array.from({ length: a.guests }, () => []);
  const onConsole = (n: number) => (b: Uint8Array) => {
    if (n === shown) process.stdout.write(b);
    else keep(backlog[n]!, b);
  };
  const guests =
    a.restoreState !== undefined ? [await resumeGuest({ ...a, restoreState: a.restoreState }, { onConsole: onConsole(0) })] : await bootGuests(a, (n) => ({ interactive: true, onConsole: onConsole(n) }));
  if (guests[0]!.mode !== "shell") {
    await guests[0]!.shutdown();
    throw new SnapshotError("the snapshot holds a guest that takes --exec commands: restore it with --exec");
  }
  if (a.restoreState !== undefined) guests[0]!.send("\n"); // a fresh prompt: the old one scrolled away with the old process
  if (stdin.isTTY) stdin.setRawMode(true);
  stdin.resume();
  let quit!: () => void;
  const quitP = new Promise<void>((r) => (quit = r));
  let escape = false;
  // QEMU's escape: Ctrl-A x quits, Ctrl-A Ctrl-A sends one Ctrl-A; Ctrl-A N shows guest N's console.
  stdin.on("data", (data: Buffer) => {
    const out: number[] = [];
    for (const byte of data) {
      if (escape) {
        escape = false;
        const n = byte - 0x30;
        if (byte === 0x78 /* x */) return quit();
        if (byte === 0x73 /* s */ && a.saveState !== undefined) {
          flush(out);
          save(guests[shown]!, a.saveState);
        } else if (byte === CTRL_A) out.push(CTRL_A);
        else if (n >= 0 && n < guests.length && n !== shown) {
          flush(out);
          shown = n;
          process.stdout.write(`\r\n[virtiofs-web: guest ${n}]\r\n`);
          for (const b of backlog[n]!.splice(0)) process.stdout.write(b);
        }
      } else if (byte === CTRL_A) escape = true;
      else out.push(byte);
    }
    flush(out);
  });
  const flush = (out: number[]) => {
    if (out.length) guests[shown]!.send(Uint8Array.from(out.splice(0)));
  };
  const save = (g: Guest, file: string) => {
    saveTo(g, file).then(
      () => process.stdout.write(`\r\n[virtiofs-web: saved to ${file}]\r\n`),
      (e: unknown) => process.stdout.write(`\r\n[virtiofs-web: not saved: ${e instanceof Error ? e.message : String(e)}]\r\n`),
    );
  };
  await Promise.race([quitP, Promise.all(guests.map((g) => g.halted))]);
  if (stdin.isTTY) stdin.setRawMode(false);
  stdin.pause();
  await Promise.all(guests.map((g) => g.shutdown()));
  process.stdout.write("\r\n");
  return 0;
}

/** Appends to a backlog, dropping its oldest chunks past BACKLOG_BYTES. */
function keep(backlog: Uint8Array[], bytes: Uint8Array): void {
  backlog.push(bytes.slice());
  let total = backlog.reduce((n, b) => n + b.length, 0);
  while (total > BACKLOG_BYTES && backlog.length > 1) total -= backlog.shift()!.length;
}

export async function main(argv: string[]): Promise<number> {
  try {
    const args = parseCli(argv);
    if (args === "help") {
      process.stdout.write(USAGE + "\n");
      return 0;
    }
    if (args.exec === undefined) return await runInteractive(args);
    if (args.saveState !== undefined || args.restoreState !== undefined) return await runExecSaved({ ...args, exec: args.exec });
    return args.browser ? await runExecInBrowser({ ...args, exec: args.exec }) : await runExec({ ...args, exec: args.exec });
  } catch (e) {
    if (e instanceof UsageError || e instanceof ImageError || e instanceof CmdlineError || e instanceof GuestError || e instanceof SnapshotError || (e instanceof Error && e.name === "BrowserRunError")) {
      process.stderr.write(`virtiofs-web: ${e.message}\n`);
      return e instanceof UsageError ? 2 : 1;
    }
    throw e;
  }
}
