// The `virtiofs-web` command: boots the guest under Node.
import { parseArgs } from "node:util";
import { CmdlineError } from "./cmdline.ts";
import { GuestError } from "./guest.ts";
import { bootGuest, type NodeGuestOptions } from "./node-guest.ts";
import type { FileSystem } from "../vfs/filesystem.ts";
import { CACHE_MODES, type CacheMode } from "../fuse/session.ts";
import { HostDirFs } from "../fs/hostdir/hostdir.ts";
import { MemFs } from "../fs/memfs/memfs.ts";
import { createSampleTree } from "../fs/sample-tree.ts";
import { ImageError } from "./images.ts";
import { DAX_MIB_MAX, DAX_MIB_MIN, V86_MEMORY_MAX, daxWindowSize, v86MemorySize } from "./attach.ts";

const MEMORY_MIB_MAX = Math.floor(V86_MEMORY_MAX / (1 << 20));

const USAGE = `usage: virtiofs-web run [--share <dir> | --memfs] [--tag <name>] [--cache <mode>] [--writeback] [--readonly]
                        [--dax [MiB]] [--exec "<cmd>"] [--browser] [--memory <MiB>] [--append "<kernel args>"]
                        [--images <dir>] [--verbose]

  --share <dir>     export a host directory over virtio-fs; the guest mounts it on /mnt
  --memfs           export the embedded sample tree instead (the default)
  --tag <name>      the virtio-fs tag (default: share)
  --cache <mode>    never | metadata | auto | always, as virtiofsd (default: auto)
  --writeback       let the guest's page cache gather writes (FUSE_WRITEBACK_CACHE)
  --readonly        every write fails with EROFS
  --dax [MiB]       give the device a DAX window of MiB (a power of two, ${DAX_MIB_MIN} to ${DAX_MIB_MAX}; default 256,
                    or 64 with more than 512 MiB of RAM) in v86's memory above the guest's RAM, and
                    mount with -o dax=always: the guest maps every file instead of reading it into its
                    page cache, and runs programs straight from the window
  --exec <cmd>      run <cmd> in the guest, print its output, exit with its status
  --browser         run the guest in headless Chromium (as the demo page does, in a Worker) instead of
                    in this process; needs --exec. The share is served to the page read-write.
                    Chromium: /usr/bin/chromium, or CHROMIUM_PATH
  --memory <MiB>    guest RAM, 96 to ${MEMORY_MIB_MAX} with any DAX window (default 256)
  --append <args>   extra kernel command-line parameters
  --images <dir>    guest images and their manifest.json (default: public/guest)
  --verbose         show the boot log (on stderr)
Without --exec: an interactive console on this terminal; Ctrl-A x quits.`;

class UsageError extends Error {}

interface RunArgs {
  share?: string;
  tag: string;
  cache: CacheMode;
  writeback: boolean;
  readonly: boolean;
  /** Size of the DAX window; undefined without --dax. */
  daxMiB?: number;
  exec?: string;
  browser: boolean;
  memoryMiB: number;
  append?: string;
  imagesDir?: string;
  verbose: boolean;
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
        share: { type: "string" },
        memfs: { type: "boolean", default: false },
        tag: { type: "string", default: "share" },
        cache: { type: "string", default: "auto" },
        writeback: { type: "boolean", default: false },
        readonly: { type: "boolean", default: false },
        dax: { type: "string" },
        exec: { type: "string" },
        browser: { type: "boolean", default: false },
        memory: { type: "string" },
        append: { type: "string" },
        images: { type: "string" },
        verbose: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (e) {
    throw new UsageError((e as Error).message.split("\n")[0]);
  }
  if (values.help) return "help";
  if (values.share !== undefined && values.memfs) throw new UsageError("--share and --memfs exclude each other");
  if (values.browser && values.exec === undefined) throw new UsageError("--browser needs --exec: the console of a headless browser is not this terminal");
  const cache = values.cache as CacheMode;
  if (!CACHE_MODES.includes(cache)) throw new UsageError(`--cache takes ${CACHE_MODES.join(", ")}, not '${values.cache}'`);
  const memoryMiB = values.memory === undefined ? 256 : Number(values.memory);
  if (!Number.isInteger(memoryMiB) || memoryMiB < 96 || memoryMiB > MEMORY_MIB_MAX) {
    throw new UsageError(`--memory takes a whole number of MiB from 96 to ${MEMORY_MIB_MAX}, not '${values.memory}'`);
  }
  const dax = values.dax === undefined ? undefined : daxMiB(values.dax, memoryMiB);
  try {
    v86MemorySize(memoryMiB, dax === undefined ? [] : [dax]);
  } catch (e) {
    throw new UsageError(`--memory ${memoryMiB} --dax ${dax}: ${(e as Error).message}`);
  }
  return {
    share: values.share,
    tag: values.tag,
    cache,
    writeback: values.writeback,
    readonly: values.readonly,
    daxMiB: dax,
    exec: values.exec,
    browser: values.browser,
    memoryMiB,
    append: values.append,
    imagesDir: values.images,
    verbose: values.verbose,
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

async function guestOptions(a: RunArgs): Promise<NodeGuestOptions> {
  return {
    memoryMiB: a.memoryMiB,
    append: a.append,
    imagesDir: a.imagesDir,
    shares: [{ tag: a.tag, fs: await shareFs(a), cache: a.cache, writeback: a.writeback, daxMiB: a.daxMiB, mountPoint: "/mnt" }],
  };
}

async function runExec(a: RunArgs & { exec: string }): Promise<number> {
  const guest = await bootGuest({
    ...(await guestOptions(a)),
    exec: a.exec,
    onConsole: a.verbose ? (b) => process.stderr.write(b) : undefined,
    onStdout: (b) => process.stdout.write(b),
  });
  const r = await guest.waitExec();
  process.stderr.write(r.stderr);
  await guest.shutdown();
  return r.status;
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

async function runInteractive(a: RunArgs): Promise<number> {
  const stdin = process.stdin;
  const guest = await bootGuest({
    ...(await guestOptions(a)),
    interactive: true,
    onConsole: (b) => process.stdout.write(b),
  });
  if (stdin.isTTY) stdin.setRawMode(true);
  stdin.resume();
  let quit!: () => void;
  const quitP = new Promise<void>((r) => (quit = r));
  let escape = false;
  // QEMU's escape: Ctrl-A x quits, Ctrl-A Ctrl-A sends one Ctrl-A.
  stdin.on("data", (data: Buffer) => {
    const out: number[] = [];
    for (const byte of data) {
      if (escape) {
        escape = false;
        if (byte === 0x78 /* x */) return quit();
        if (byte === CTRL_A) out.push(CTRL_A);
      } else if (byte === CTRL_A) escape = true;
      else out.push(byte);
    }
    if (out.length) guest.send(Uint8Array.from(out));
  });
  await Promise.race([quitP, guest.halted]);
  if (stdin.isTTY) stdin.setRawMode(false);
  stdin.pause();
  await guest.shutdown();
  process.stdout.write("\r\n");
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  try {
    const args = parseCli(argv);
    if (args === "help") {
      process.stdout.write(USAGE + "\n");
      return 0;
    }
    if (args.exec === undefined) return await runInteractive(args);
    return args.browser ? await runExecInBrowser({ ...args, exec: args.exec }) : await runExec({ ...args, exec: args.exec });
  } catch (e) {
    if (e instanceof UsageError || e instanceof ImageError || e instanceof CmdlineError || e instanceof GuestError || (e instanceof Error && e.name === "BrowserRunError")) {
      process.stderr.write(`virtiofs-web: ${e.message}\n`);
      return e instanceof UsageError ? 2 : 1;
    }
    throw e;
  }
}
