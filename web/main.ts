// The page: the terminal on the guest's serial console, the file panel, the inspector and the
// walkthrough; the emulator runs in a Worker, restarted whenever the share's backend or DAX window changes,
// or a snapshot is to be resumed. On load it resumes the snapshot kept by the last Save, if any.
import { FilesPanel } from "./files-panel.ts";
import { Inspector } from "./inspector.ts";
import { BACKENDS, type Backend, type FromWorker, type RootSettings, type SnapshotChoice, type ToWorker } from "./protocol.ts";
import { SnapshotControls, type SaveBlock } from "./snapshots.ts";
import { createTerminal } from "./terminal.ts";
import { decodeRecord } from "./trace.ts";
import { Stories } from "./stories.ts";
import { Walkthrough } from "./walkthrough.ts";

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const status = $("status");
const progress = $<HTMLProgressElement>("progress");
const chooser = $<HTMLSelectElement>("backend");
const daxOn = $<HTMLInputElement>("dax-on");
const daxSize = $<HTMLSelectElement>("dax-size");
const params = new URLSearchParams(location.search);
const memoryMiB = Number(params.get("memory") ?? 256);
// ?root=NAME boots from the server's image rootfs/NAME/ (debian: what npm run guest:rootfs builds). Its
// changes go to OPFS, kept across reloads, or to memory with ?overlay=memfs or without OPFS.
const rootName = params.get("root");
const root: RootSettings | undefined =
  rootName !== null && /^[a-z0-9][a-z0-9._-]*$/.test(rootName) ? { name: rootName, overlay: params.get("overlay") === "memfs" || !navigator.storage?.getDirectory ? "memfs" : "opfs" } : undefined;
/** The running guest booted from the root image (not the images' own after a missing one). */
let rootUp = false;
const rootOn = $<HTMLInputElement>("root-on");
rootOn.checked = root?.name === "debian";
rootOn.addEventListener("change", () => {
  const url = new URL(location.href);
  if (rootOn.checked) url.searchParams.set("root", "debian");
  else url.searchParams.delete("root");
  location.assign(url);
});

// Without cross-origin isolation there is no SharedArrayBuffer: v86 keeps its memory to itself (the
// banner says what that changes).
$("isolation").hidden = globalThis.crossOriginIsolated;
// ?kernel=debian boots Debian 12's stock kernel (public/guest-debian/, npm run guest:debian-kernel), which has
// no FUSE DAX: the window is off with it.
const kernel = params.get("kernel") === "debian" ? "debian" : undefined;
if (kernel) {
  daxOn.checked = false;
  daxOn.disabled = true;
  daxOn.title = "Debian's stock kernel has no FUSE DAX (CONFIG_FUSE_DAX)";
}
// The guest maps the window into vmalloc space, which shrinks as RAM grows (src/machine/cli.ts).
if (memoryMiB > 512) {
  for (const option of daxSize.options) option.disabled = Number(option.value) > 64;
  daxSize.value = "64";
}
// ?dax=MiB starts with the window (a size not offered keeps the default).
const askedDax = params.get("dax");
if (askedDax !== null && !kernel) {
  daxOn.checked = true;
  if ([...daxSize.options].some((o) => o.value === askedDax && !o.disabled)) daxSize.value = askedDax;
}

let worker: Worker | undefined;
const send = (m: ToWorker, transfer: Transferable[] = []): void => worker?.postMessage(m, transfer);

const term = createTerminal($("terminal"), (data) => send({ type: "input", guest: 0, data }));
const secondButton = $<HTMLButtonElement>("btn-second-guest");
/** The second guest's terminal, made when it is first asked for. */
let term1: ReturnType<typeof createTerminal> | undefined;
const terminalOf = (guest: number) => (guest === 0 ? term : term1);
const files = new FilesPanel($("panel-files"), {
  upload: (dir, name, data) => send({ type: "upload", dir, name, data }, [data]),
  download: (path) => send({ type: "download", path }),
  remove: (path) => send({ type: "delete", path }),
});
const inspector = new Inspector(
  $("panel-inspector"),
  (action) => send({ type: "device", action }),
  () => {
    // Off and on again: the Worker sends its history, as when the tab opens.
    send({ type: "inspect", on: false });
    send({ type: "inspect", on: true });
  },
);
const runCommand = (command: string): void => {
  send({ type: "input", guest: 0, data: new TextEncoder().encode(command) });
  term.focus();
};
/** The snapshot file this Worker was started to resume, for the banner. */
let restoringFile: string | undefined;
const snapshots = new SnapshotControls($("btn-save"), $("restore-input"), $("snapshot-banner"), {
  save: () => {
    snapshots.block("saving");
    send({ type: "save" });
  },
  restore: (name, data) => start(current, currentFolder, { name, data }),
  bootFresh: (dropKept) => start(current, currentFolder, dropKept ? "drop" : "ignore"),
});
/** Why Save is off now: it is offered for one guest, once it is up. */
const saveBlock = (): SaveBlock =>
  document.body.dataset.state !== "ready" ? "booting" : rootUp ? "root" : document.body.dataset.secondGuest !== undefined ? "two-guests" : undefined;
const walkthrough = new Walkthrough($("story-cat"), runCommand);
const stories = new Stories($("panel-how"), runCommand, () => daxOn.checked);

// Tabs. The Worker sends FUSE traffic only while the inspector or the walkthrough is on screen (its
// history from boot on first).
const tabs = ["files", "inspector", "how"] as const;
let tab: (typeof tabs)[number] = "files";
function showTab(next: (typeof tabs)[number]): void {
  tab = next;
  for (const t of tabs) {
    $(`tab-${t}`).setAttribute("aria-selected", String(t === tab));
    $(`panel-${t}`).hidden = t !== tab;
  }
  send({ type: "inspect", on: tab !== "files" });
}
for (const t of tabs) $(`tab-${t}`).addEventListener("click", () => showTab(t));

function onMessage(m: FromWorker): void {
  switch (m.type) {
    case "progress":
      progress.value = m.phase === "download" ? (0.8 * m.loaded) / m.total : 0.9;
      status.textContent = m.phase === "download" ? `downloading guest ${(m.loaded / 2 ** 20).toFixed(1)} MiB` : "booting…";
      break;
    case "serial":
      terminalOf(m.guest)?.write(m.data);
      break;
    case "ready":
      if (m.guest > 0) {
        document.body.dataset.secondGuest = "ready";
        term1?.focus();
        break;
      }
      // Page to shell, the figure a snapshot is for: from navigation on the first start.
      document.body.dataset.pageMs ??= String(Math.round(performance.now()));
      // Two guests on one overlay root are not offered: each would boot its own system on the one tree.
      secondButton.disabled = daxOn.checked || rootUp || document.body.dataset.secondGuest !== undefined;
      document.body.dataset.boots = String(Number(document.body.dataset.boots ?? 0) + 1);
      progress.value = 1;
      progress.hidden = true;
      status.textContent = `shell ready · guest uptime ${m.uptime.toFixed(2)} s · page ${(m.bootMs / 1000).toFixed(1)} s`;
      document.body.dataset.state = "ready";
      document.body.dataset.uptime = String(m.uptime);
      snapshots.block(saveBlock());
      term.focus();
      break;
    case "halted":
      if (m.guest > 0) {
        document.body.dataset.secondGuest = "halted";
        break;
      }
      status.textContent = "guest halted";
      document.body.dataset.state = "halted";
      snapshots.block("booting");
      break;
    case "error":
      $("error").textContent = `error: ${m.message}`;
      $("error").hidden = false;
      status.textContent = "failed";
      document.body.dataset.state = "error";
      break;
    case "share":
      files.setShare(m.label);
      document.body.dataset.backend = m.backend;
      break;
    case "root":
      rootUp = true;
      document.body.dataset.root = "up";
      $("root-label").textContent = `/ is the ${m.label}`;
      $("root-label").hidden = false;
      break;
    case "root-missing":
      document.body.dataset.root = "missing";
      $("root-banner").textContent = m.message;
      $("root-banner").hidden = false;
      break;
    case "tree":
      files.showTree(m.entries, m.truncated);
      break;
    case "inspect": {
      const events = m.records.map(decodeRecord);
      inspector.apply(m, events);
      walkthrough.observe(events);
      stories.observe(events);
      break;
    }
    case "backlog":
      inspector.backlog(m.records.map(decodeRecord), m.dropped);
      break;
    case "dax-window":
      inspector.dax.attach(m);
      break;
    case "dax-copy":
      inspector.dax.applyCopy(m);
      break;
    case "dax-mappings":
      inspector.dax.setMappings(m.mappings);
      break;
    case "file":
      files.save(m.name, m.data);
      break;
    case "notice":
      files.notice(m.level, m.message);
      break;
    case "save-failed":
      files.notice("error", `saving failed: ${m.message}`);
      snapshots.block(saveBlock());
      break;
    case "restored":
      snapshots.restored(m.created, m.kept, restoringFile);
      document.body.dataset.restored = m.kept ? "kept" : "file";
      showDaxChoice(m.daxMiB);
      if (m.daxMiB !== undefined) secondButton.disabled = true; // as for a boot with the window
      break;
    case "restore-failed":
      // A fresh Worker boots: nothing of the failed attempt is kept (a kept snapshot that fails goes).
      start(current, currentFolder, m.kept ? "drop" : "ignore");
      snapshots.failed(m.message);
      break;
    case "saved": {
      const name = SnapshotControls.fileName(m.created);
      files.save(name, m.data);
      files.notice("info", `saved ${name} (${(m.data.byteLength / 2 ** 20).toFixed(1)} MiB in ${(m.ms / 1000).toFixed(1)} s)${m.kept ? "; the next visit resumes it" : ""}`);
      snapshots.block(saveBlock());
      break;
    }
  }
}

/**
 * Shows the share's DAX window (its size, or none) in the controls, the address (?dax=) and the
 * inspector: what the page asks a boot for, or what a resumed snapshot brought.
 */
function showDaxChoice(daxMiB: number | undefined): void {
  daxOn.checked = daxMiB !== undefined;
  if (daxMiB !== undefined) {
    // A size the list lacks (a snapshot from the command line) is shown as an option of its own.
    if (![...daxSize.options].some((o) => o.value === String(daxMiB))) daxSize.add(new Option(`${daxMiB} MiB`, String(daxMiB)));
    daxSize.value = String(daxMiB);
  }
  const url = new URL(location.href);
  if (daxMiB === undefined) url.searchParams.delete("dax");
  else url.searchParams.set("dax", String(daxMiB));
  history.replaceState(null, "", url);
  inspector.dax.reset(daxMiB !== undefined);
}

/** (Re)starts the emulator on `backend`: a fresh Worker, a fresh or resumed guest, a clean terminal. */
function start(backend: Backend, folder?: FileSystemDirectoryHandle, snapshot: SnapshotChoice = "ignore"): void {
  worker?.terminate();
  restoringFile = typeof snapshot === "object" ? snapshot.name : undefined;
  snapshots.hide();
  snapshots.block("booting");
  delete document.body.dataset.restored;
  term.reset();
  term1?.reset();
  $("terminal-1").hidden = true;
  secondButton.disabled = true;
  delete document.body.dataset.secondGuest;
  delete document.body.dataset.boots;
  inspector.clear();
  progress.hidden = false;
  progress.value = 0;
  $("error").hidden = true;
  delete document.body.dataset.state;
  rootUp = false;
  delete document.body.dataset.root;
  $("root-label").hidden = true;
  $("root-banner").hidden = true;
  status.textContent = "loading…";
  chooser.value = backend;
  const url = new URL(location.href);
  url.searchParams.set("backend", backend);
  history.replaceState(null, "", url);
  const daxMiB = daxOn.checked ? Number(daxSize.value) : undefined;
  showDaxChoice(daxMiB);

  worker = new Worker(new URL("./emulator.worker.ts", import.meta.url), { type: "module" });
  worker.onmessage = (e: MessageEvent<FromWorker>) => onMessage(e.data);
  send({ type: "start", backend, folder, memoryMiB, daxMiB, append: params.get("append") ?? undefined, snapshot, root, kernel }, typeof snapshot === "object" ? [snapshot.data] : []);
  send({ type: "inspect", on: tab !== "files" });
}

// A second PC on the same share, in the same Worker: a second terminal under the first.
secondButton.addEventListener("click", () => {
  secondButton.disabled = true;
  $("terminal-1").hidden = false;
  term1 ??= createTerminal($("terminal-1"), (data) => send({ type: "input", guest: 1, data }));
  term1.reset();
  document.body.dataset.secondGuest = "booting";
  snapshots.block("two-guests");
  send({ type: "second-guest" });
});

// A local folder needs the File System Access API's picker, which only some browsers offer.
type PickerWindow = Window & { showDirectoryPicker?(options: { mode: "readwrite" }): Promise<FileSystemDirectoryHandle> };
const picker = (window as PickerWindow).showDirectoryPicker;
const localOption = chooser.querySelector<HTMLOptionElement>('option[value="local"]')!;
if (!picker) {
  localOption.disabled = true;
  localOption.textContent = "a local folder (not offered by this browser)";
}

let current: Backend = "memfs";
/** The picked folder while the share is "local": a restart for the DAX window keeps it. */
let currentFolder: FileSystemDirectoryHandle | undefined;
chooser.addEventListener("change", async () => {
  const next = chooser.value as Backend;
  if (next !== "local") {
    current = next;
    currentFolder = undefined;
    start(next);
    return;
  }
  try {
    currentFolder = await picker!.call(window, { mode: "readwrite" });
    current = "local";
    start("local", currentFolder);
  } catch {
    chooser.value = current; // the picker was dismissed
  }
});
daxOn.addEventListener("change", () => start(current, currentFolder));
daxSize.addEventListener("change", () => {
  if (daxOn.checked) start(current, currentFolder);
});

// ?backend=memfs|opfs picks the share (a local folder needs the picker, so it starts as memfs).
const asked = params.get("backend") as Backend | null;
current = asked && BACKENDS.includes(asked) && asked !== "local" ? asked : "memfs";
start(current, undefined, "kept");
