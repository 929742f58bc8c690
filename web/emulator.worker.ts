// The emulator Worker: downloads the guest images, runs v86 with one virtio-fs share (tag "share",
// mounted on /mnt, with a DAX window if asked), bridges the serial console to the page, and serves the
// file panel and the inspector.
// Running here keeps the page responsive while the CPU loop spins, and gives OPFS its sync access handles.
import wasmUrl from "v86/build/v86.wasm?url";
import { fetchGuestImages, Guest, type AttachedShare, type FileSystem, type Ino, type VirtioFsDevice } from "../src/index.ts";
import type { FromWorker, ToWorker } from "./protocol.ts";
import { DaxFeed } from "./worker/dax.ts";
import { listTree, readFile, removePath, writeFile } from "./worker/files.ts";
import { openShare } from "./worker/share.ts";
import { Tap } from "./worker/tap.ts";

const post = (m: FromWorker, transfer: Transferable[] = []): void => postMessage(m, { transfer });
const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));
/** A slow machine under load boots in well under a minute; past this something is wrong. */
const BOOT_TIMEOUT_MS = 300_000;
/** The file panel follows the guest's changes at most this often. */
const TREE_THROTTLE_MS = 400;

let guest: Guest | undefined;
let starting = false;
let fs: FileSystem | undefined;
let device: VirtioFsDevice | undefined;
let paused = false;
let inspecting = false;
let daxFeed: DaxFeed | undefined;
/** Each inode's path in the share, from the last listing. */
let paths = new Map<Ino, string>();

const tap = new Tap(
  (batch) => post({ type: "inspect", ...batch }),
  () => device?.queueStates() ?? [],
  () => paused,
  () => scheduleTree(),
);

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

async function start(m: Extract<ToWorker, { type: "start" }>): Promise<void> {
  const { backend, folder, memoryMiB, daxMiB, append } = m;
  const t0 = performance.now();
  // The images and the share load side by side: OPFS may wait a moment for a reloaded page's old Worker.
  const [images, share] = await Promise.all([
    fetchGuestImages(new URL("guest/", new URL(import.meta.env.BASE_URL, location.origin)).href, (p) => post({ type: "progress", phase: "download", ...p })),
    openShare(backend, folder),
  ]);
  fs = share.fs;
  post({ type: "share", backend, label: share.label });
  void sendTree();
  post({ type: "progress", phase: "boot", loaded: 0, total: 1 });
  guest = await Guest.boot({
    runtime: { images, wasmPath: wasmUrl },
    memoryMiB,
    append,
    interactive: true,
    bootTimeoutMs: BOOT_TIMEOUT_MS,
    shares: [{ tag: "share", fs: share.fs, daxMiB, mountPoint: "/mnt", observer: tap, log: (m) => post({ type: "notice", level: "error", message: m }) }],
    onConsole: (data) => post({ type: "serial", data }, [data.buffer]),
    // After the first boot and after every reboot.
    onReady: (uptime) => post({ type: "ready", uptime, bootMs: performance.now() - t0 }),
    beforeRun: (_emulator, [attached]) => {
      device = attached?.device;
    },
  });
  void guest.halted.then(() => post({ type: "halted" }));
  const attached = guest.shares[0];
  if (attached) showDax(guest, attached);
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
      guest?.send(m.data);
      break;
    case "inspect":
      inspecting = m.on;
      tap.setInspecting(m.on);
      daxFeed?.setInspecting(m.on);
      break;
    case "device":
      if (!device) break;
      if (m.action === "pause") device.pause();
      else if (m.action === "step") device.step();
      else device.resume();
      paused = m.action !== "resume";
      tap.refresh();
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
  }
};
