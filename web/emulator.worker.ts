// The emulator Worker: downloads the guest images, runs v86 with one virtio-fs share (tag "share",
// mounted on /mnt, with a DAX window if asked), bridges the serial console to the page, and serves the
// file panel and the inspector. On request it boots a second guest on the same share, in this Worker:
// the one backend then has one owner, and the two emulators take turns on its thread.
// It saves the guest as a snapshot file (keeping the latest in OPFS) and, on load, resumes a snapshot
// instead of booting when it can. With ?root=NAME the guest boots from a second share, the root (tag
// "root": a lazy image under an overlay, worker/root.ts), and /mnt is mounted inside it.
// Running here keeps the page responsive while the CPU loop spins, and gives OPFS its sync access handles.
import wasmUrl from "v86/build/v86.wasm?url";
import {
  fetchGuestImages,
  Guest,
  SnapshotError,
  unpackSnapshot,
  type AttachedShare,
  type FileSystem,
  type GuestImages,
  type GuestShare,
  type Ino,
  type SnapshotContents,
  type VirtioFsDevice,
} from "../src/index.ts";
import type { FromWorker, ToWorker } from "./protocol.ts";
import { DaxFeed } from "./worker/dax.ts";
import { listTree, readFile, removePath, writeFile } from "./worker/files.ts";
import { dropKept, keep, readKept } from "./worker/kept-snapshot.ts";
import { openRoot } from "./worker/root.ts";
import { openShare } from "./worker/share.ts";
import { Tap } from "./worker/tap.ts";

const post = (m: FromWorker, transfer: Transferable[] = []): void => postMessage(m, { transfer });
const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));
/** A slow machine under load boots in well under a minute; past this something is wrong. */
const BOOT_TIMEOUT_MS = 300_000;
/** The file panel follows the guest's changes at most this often. */
const TREE_THROTTLE_MS = 400;

/** A guest of this Worker, numbered from 0 in boot order. */
interface Running {
  guest?: Guest;
  device?: VirtioFsDevice;
  readonly tap: Tap;
}

let starting = false;
let settings: Extract<ToWorker, { type: "start" }> | undefined;
let images: GuestImages | undefined;
let fs: FileSystem | undefined;
/** The root the guests boot from (?root=NAME), when its image is there; else they boot the images' own. */
let root: FileSystem | undefined;
const guests: Running[] = [];
let paused = false;
let inspecting = false;
let daxFeed: DaxFeed | undefined;
/** Each inode's path in the share, from the last listing. */
let paths = new Map<Ino, string>();

let treeTimer: ReturnType<typeof setTimeout> | undefined;
function scheduleTree(): void {
  treeTimer ??= setTimeout(() => {
    treeTimer = undefined;
    void sendTree();
  }, TREE_THROTTLE_MS);
}

async function sendTree(): Promise<void> {
  if (!fs) return;
  try {
    const { entries, truncated, paths: listed } = await listTree(fs);
    paths = listed;
    post({ type: "tree", entries, truncated });
  } catch (e) {
    post({ type: "notice", level: "error", message: `listing the share failed: ${message(e)}` });
  }
}

type Start = Extract<ToWorker, { type: "start" }>;

/** The snapshot file this start resumes, if any. */
async function snapshotFor(m: Start): Promise<Uint8Array | undefined> {
  const choice = m.snapshot;
  if (choice === "drop") await dropKept(m);
  if (typeof choice === "object") return new Uint8Array(choice.data);
  // A snapshot never holds a root image (Save is off with one): asking for one is asking to boot.
  if (choice !== "kept" || m.root) return undefined;
  try {
    return await readKept(m);
  } catch (e) {
    post({ type: "notice", level: "error", message: `reading the kept snapshot failed: ${message(e)}` });
    return undefined;
  }
}

/** The guest images: the project's, or Debian's stock kernel (?kernel=debian); a missing one is a notice and the project's. */
async function guestImages(kernel: Start["kernel"], base: URL): Promise<GuestImages> {
  const fetchFrom = (dir: string) => fetchGuestImages(new URL(dir, base).href, (p) => post({ type: "progress", phase: "download", ...p }));
  if (kernel !== "debian") return fetchFrom("guest/");
  try {
    return await fetchFrom("guest-debian/");
  } catch (e) {
    post({ type: "notice", level: "error", message: `Debian's kernel could not be loaded (npm run guest:debian-kernel builds it): ${message(e)}. The project's kernel booted instead.` });
    return fetchFrom("guest/");
  }
}

async function start(m: Start): Promise<void> {
  const { backend, folder } = m;
  settings = m;
  const t0 = performance.now();
  const base = new URL(import.meta.env.BASE_URL, location.origin);
  // A snapshot file given to Restore… is resumed as it is, with no root image.
  // A root that cannot be opened is one notice and the normal guest, as a missing one: never no guest.
  const rootP = m.root && typeof m.snapshot !== "object" ? openRoot(m.root, base).catch((e: unknown) => ({ missing: `the ${m.root?.name} root could not be opened: ${message(e)}. The normal guest booted instead.` })) : undefined;
  // The images, the snapshot (read and unpacked), the share and the root load side by side: OPFS may wait
  // a moment for a reloaded page's old Worker. What the share starts as depends on whether a snapshot is resumed.
  const [fetched, [snapshot, share], opened] = await Promise.all([
    guestImages(m.kernel, base),
    snapshotFor(m).then(async (file) => {
      const snap = file && unpackSnapshot(file).then(
        (contents) => ({ contents }),
        (error: unknown) => ({ error }),
      );
      return [snap, await openShare(backend, folder, file !== undefined)] as const;
    }),
    rootP,
  ]);
  images = fetched;
  fs = share.fs;
  post({ type: "share", backend, label: share.label });
  post({ type: "progress", phase: "boot", loaded: 0, total: 1 });
  if (snapshot) {
    const kept = typeof m.snapshot !== "object";
    try {
      const unpacked = await snapshot;
      if ("error" in unpacked) throw unpacked.error;
      const guest = await resume(unpacked.contents, t0);
      const attached = guest.shares[0];
      // A snapshot file given to Restore… brings its own window (or none), whatever the page asked for.
      settings = { ...m, daxMiB: attached?.window ? attached.window.size / 2 ** 20 : undefined };
      post({ type: "restored", created: guest.restoredFrom ?? "", kept, daxMiB: settings.daxMiB });
      if (attached) showDax(guest, attached);
    } catch (e) {
      // A half-restored backend or emulator is no ground to boot on: the page starts a new Worker.
      post({ type: "restore-failed", message: e instanceof SnapshotError ? e.message : `restoring failed: ${message(e)}`, kept });
    }
    return;
  }
  if (opened && "missing" in opened) post({ type: "root-missing", message: opened.missing });
  else if (opened) {
    root = opened.fs;
    post({ type: "root", label: opened.label });
  }
  void sendTree();
  const guest = await boot(0, t0);
  const attached = guest.shares[0];
  if (attached) showDax(guest, attached);
}

/** Guest `n`'s record, with the inspector's tap on its device. */
function newRunning(n: number): Running {
  const running: Running = {
    tap: new Tap(
      n,
      (batch) => post({ type: "inspect", ...batch }),
      () => running.device?.queueStates() ?? [],
      () => paused,
      () => scheduleTree(),
    ),
  };
  running.tap.setInspecting(inspecting);
  guests[n] = running;
  return running;
}

/** How every guest of this Worker attaches the share, but for what a boot or a snapshot decides. */
function shareOf(running: Running): Pick<GuestShare, "tag" | "mountPoint" | "fs" | "observer" | "log"> {
  if (!fs) throw new Error("the share is not open yet");
  return { tag: "share", mountPoint: "/mnt", fs, observer: running.tap, log: (m) => post({ type: "notice", level: "error", message: m }) };
}

/** Resumes `snapshot` as guest 0 over the share, which the snapshot's session and backend state take back. */
async function resume(snapshot: SnapshotContents, t0: number): Promise<Guest> {
  if (!images) throw new Error("the images are not loaded yet");
  const running = newRunning(0);
  const guest = await Guest.restore({
    runtime: { images, wasmPath: wasmUrl },
    snapshot,
    shares: (saved) => {
      const [s, more] = saved;
      if (!s || more || s.tag !== "share" || s.mountPoint !== "/mnt") throw new SnapshotError(`the snapshot's shares (${saved.map((x) => `${x.tag} on ${x.mountPoint}`).join(", ") || "none"}) are not the page's one share on /mnt`);
      return [{ ...shareOf(running), cache: s.cache, writeback: s.writeback, numRequestQueues: s.numRequestQueues, locks: s.locks, daxMiB: s.daxMiB }];
    },
    onConsole: (data) => post({ type: "serial", guest: 0, data }, [data.buffer]),
    // After a reboot (the second guest's arrival restarts this one).
    onReady: (uptime) => post({ type: "ready", guest: 0, uptime, bootMs: performance.now() - t0 }),
    beforeRun: (_emulator, [attached]) => {
      running.device = attached?.device;
      if (paused) running.device?.pause();
    },
  });
  if (guest.mode !== "shell") {
    await guest.shutdown();
    throw new SnapshotError("the snapshot holds a guest that takes commands (the command line's --exec), not a console");
  }
  running.guest = guest;
  void guest.halted.then(() => post({ type: "halted", guest: 0 }));
  void sendTree();
  post({ type: "ready", guest: 0, uptime: guest.uptimeAtReady, bootMs: performance.now() - t0 });
  guest.send("\n"); // a fresh prompt: the terminal that showed the old one is gone
  return guest;
}

/** Saves guest 0 (alone: the page offers Save only then) and keeps it in OPFS. */
async function save(): Promise<void> {
  const guest = guests[0]?.guest;
  if (!guest || !settings) throw new Error("no guest is running");
  if (guests.length > 1) throw new Error("two guests share the backend; a snapshot holds one");
  const t = performance.now();
  const bytes = (await guest.saveState()) as Uint8Array<ArrayBuffer>;
  const ms = performance.now() - t;
  // A picked folder cannot be reopened on load without the user's pick: only the download is kept.
  let kept = settings.backend !== "local";
  if (kept) {
    try {
      await keep(settings, bytes);
    } catch (e) {
      kept = false;
      post({ type: "notice", level: "error", message: `keeping the snapshot in OPFS failed: ${message(e)}` });
    }
  }
  post({ type: "saved", data: bytes.buffer, created: new Date().toISOString(), kept, ms }, [bytes.buffer]);
}

/**
 * Boots guest `n` on the share. Locks are "auto": a guest alone keeps its own (zero-message open, no FLUSH
 * where there is nothing to flush); once a second server shares the backend, sessions that start keep them
 * on the device.
 */
async function boot(n: number, t0: number): Promise<Guest> {
  if (!settings || !images) throw new Error("the share is not open yet");
  const running = newRunning(n);
  const guest = await Guest.boot({
    runtime: { images, wasmPath: wasmUrl },
    memoryMiB: settings.memoryMiB,
    append: [settings.append, n > 0 ? `vfsw.guest=${n}` : undefined].filter(Boolean).join(" ") || undefined,
    interactive: true,
    bootTimeoutMs: BOOT_TIMEOUT_MS,
    // The share first: beforeRun's first attached share is the one the inspector and the DAX view follow.
    shares: [{ ...shareOf(running), daxMiB: n === 0 ? settings.daxMiB : undefined }, ...(root ? [{ tag: "root", mountPoint: "/", fs: root }] : [])],
    onConsole: (data) => post({ type: "serial", guest: n, data }, [data.buffer]),
    // After the first boot and after every reboot.
    onReady: (uptime) => post({ type: "ready", guest: n, uptime, bootMs: performance.now() - t0 }),
    beforeRun: (_emulator, [attached]) => {
      running.device = attached?.device;
      if (paused) running.device?.pause();
      if (n > 0) restartFirst();
    },
  });
  running.guest = guest;
  void guest.halted.then(() => post({ type: "halted", guest: n }));
  return guest;
}

/**
 * The first guest's kernel mounted alone and keeps its file locks to itself, where the second guest cannot
 * see them: once the second guest's server is there, the first restarts (as with its reset button; the
 * share's files stay) and its new session keeps its locks on the device.
 */
function restartFirst(): void {
  post({ type: "notice", level: "info", message: "the first guest restarts so that its file locks move to the device, where the second guest sees them" });
  guests[0]?.guest?.emulator.restart();
}

async function startSecondGuest(): Promise<void> {
  if (guests.length !== 1 || !guests[0]?.guest) return; // one second guest, once the first is up
  if (settings?.daxMiB !== undefined) throw new Error("a second guest needs the share without a DAX window: each guest's window would hold its own copy of the files");
  await boot(1, performance.now());
}

/** Tells the page about the share's DAX window: v86's memory itself where it is shared, else copies to follow. */
function showDax(guest: Guest, share: AttachedShare): void {
  const { window, windowAddress } = share;
  if (!window || windowAddress === undefined) return;
  const ram = guest.guestMemory();
  const live = ram.shared ? { memory: ram.buffer, offset: ram.base + windowAddress, pageState: window.pageState, dirty: window.dirty } : undefined;
  post({ type: "dax-window", size: window.size, live });
  daxFeed = new DaxFeed(
    share.server,
    window,
    (ino) => paths.get(ino),
    (mappings) => post({ type: "dax-mappings", mappings }),
    live ? undefined : (copy) => post({ type: "dax-copy", ...copy }, [copy.pageState.buffer, copy.dirty.buffer, copy.signatures.buffer]),
  );
  daxFeed.setInspecting(inspecting);
}

/** Every guest's history in one list, oldest first, for the inspector that has just opened. */
function sendBacklog(): void {
  const backlogs = guests.map((g) => g.tap.backlog());
  const records = backlogs.flatMap((b) => b.records).sort((a, b) => a.at - b.at);
  post({ type: "backlog", records, dropped: backlogs.reduce((n, b) => n + b.dropped, 0) });
}

/** A file panel action on the share, reported to the page; the tree follows. */
async function fileAction(what: string, action: (fs: FileSystem) => Promise<void>): Promise<void> {
  if (!fs) return;
  try {
    await action(fs);
  } catch (e) {
    post({ type: "notice", level: "error", message: `${what} failed: ${message(e)}` });
  }
  await sendTree();
}

onmessage = (e: MessageEvent<ToWorker>) => {
  const m = e.data;
  switch (m.type) {
    case "start":
      if (starting) break;
      starting = true;
      start(m).catch((err: unknown) => post({ type: "error", message: message(err) }));
      break;
    case "input":
      guests[m.guest]?.guest?.send(m.data);
      break;
    case "second-guest":
      startSecondGuest().catch((err: unknown) => post({ type: "notice", level: "error", message: `the second guest: ${message(err)}` }));
      break;
    case "inspect":
      if (m.on && !inspecting) sendBacklog();
      inspecting = m.on;
      for (const g of guests) g.tap.setInspecting(m.on);
      daxFeed?.setInspecting(m.on);
      break;
    case "device":
      // Every guest's device: a step lets each one's oldest held request through.
      for (const { device } of guests) {
        if (m.action === "pause") device?.pause();
        else if (m.action === "step") device?.step();
        else device?.resume();
      }
      paused = m.action !== "resume";
      for (const g of guests) g.tap.refresh();
      break;
    case "upload":
      void fileAction(`uploading ${m.name}`, async (fs) => {
        await writeFile(fs, m.dir, m.name, new Uint8Array(m.data));
        post({ type: "notice", level: "info", message: `${m.name} is in /mnt/${m.dir ? m.dir + "/" : ""}` });
      });
      break;
    case "download":
      void fileAction(`reading ${m.path}`, async (fs) => {
        const data = await readFile(fs, m.path);
        post({ type: "file", name: m.path.slice(m.path.lastIndexOf("/") + 1), data: data.buffer as ArrayBuffer }, [data.buffer as ArrayBuffer]);
      });
      break;
    case "delete":
      void fileAction(`deleting ${m.path}`, (fs) => removePath(fs, m.path));
      break;
    case "save":
      save().catch((err: unknown) => post({ type: "save-failed", message: message(err) }));
      break;
  }
};
