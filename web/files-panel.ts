// The file panel: the share's tree as the Worker lists it (live: it re-lists after the guest changes
// something), upload by drop or file picker into the selected directory, download and delete per entry.
import type { TreeEntry } from "./protocol.ts";

export interface FileActions {
  upload(dir: string, name: string, data: ArrayBuffer): void;
  download(path: string): void;
  remove(path: string): void;
}

const TYPE_CHAR: Record<TreeEntry["kind"], string> = { dir: "d", file: "-", symlink: "l", special: "?" };
const SPECIAL_TYPES = new Map([
  [0o010000, "p"],
  [0o020000, "c"],
  [0o060000, "b"],
  [0o140000, "s"],
]);

/** "drwxr-xr-x", as ls -l. */
export function modeString(kind: TreeEntry["kind"], mode: number): string {
  const type = kind === "special" ? (SPECIAL_TYPES.get(mode & 0o170000) ?? "?") : TYPE_CHAR[kind];
  let s = type;
  for (let shift = 6; shift >= 0; shift -= 3) {
    const bits = (mode >> shift) & 7;
    s += (bits & 4 ? "r" : "-") + (bits & 2 ? "w" : "-") + (bits & 1 ? "x" : "-");
  }
  return s;
}

export function sizeString(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = -1;
  do {
    v /= 1024;
    u++;
  } while (v >= 1024 && u < units.length - 1);
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[u]}`;
}

export class FilesPanel {
  private target = "";
  private readonly tree: HTMLUListElement;
  private readonly notices: HTMLElement;

  constructor(
    private readonly root: HTMLElement,
    private readonly actions: FileActions,
  ) {
    this.tree = root.querySelector("#file-tree")!;
    this.notices = root.querySelector("#notices")!;
    const input = root.querySelector<HTMLInputElement>("#upload-input")!;
    input.addEventListener("change", () => {
      void this.upload(this.target, input.files);
      input.value = "";
    });
    root.addEventListener("dragover", (e) => {
      if (!e.dataTransfer?.types.includes("Files")) return;
      e.preventDefault();
      e.dataTransfer.dropEffect = "copy";
      root.classList.add("dragging");
      this.dropRow(e)?.classList.add("drop-here");
    });
    root.addEventListener("dragleave", (e) => {
      (e.target as HTMLElement).closest?.("li")?.classList.remove("drop-here");
      if (e.target === root) root.classList.remove("dragging");
    });
    root.addEventListener("drop", (e) => {
      e.preventDefault();
      root.classList.remove("dragging");
      const row = this.dropRow(e);
      row?.classList.remove("drop-here");
      void this.upload(row?.dataset.path ?? this.target, e.dataTransfer?.files);
    });
    this.tree.addEventListener("click", (e) => this.onClick(e));
  }

  setShare(label: string): void {
    this.root.querySelector("#share-label")!.textContent = `/mnt is ${label}.`;
    this.target = "";
    this.tree.replaceChildren();
    this.showTarget();
  }

  showTree(entries: TreeEntry[], truncated: boolean): void {
    if (this.target && !entries.some((e) => e.path === this.target && e.kind === "dir")) this.target = "";
    const rootRow = this.row({ path: "", name: "/mnt", depth: -1, kind: "dir", mode: 0o40755, size: 0 }, false);
    this.tree.replaceChildren(rootRow, ...entries.map((e) => this.row(e, true)));
    const note = this.root.querySelector<HTMLElement>("#tree-note")!;
    note.hidden = !truncated;
    note.textContent = "Only part of the tree is shown: it is large or deep.";
    this.showTarget();
  }

  notice(level: "info" | "error", message: string): void {
    const p = document.createElement("p");
    p.className = `notice ${level}`;
    p.textContent = message;
    this.notices.prepend(p);
    setTimeout(() => p.remove(), level === "error" ? 12_000 : 5_000);
  }

  /** Hands a downloaded file to the browser. */
  save(name: string, data: ArrayBuffer): void {
    const url = URL.createObjectURL(new Blob([data]));
    const a = document.createElement("a");
    a.href = url;
    a.download = name;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  }

  private row(e: TreeEntry, withActions: boolean): HTMLLIElement {
    const li = document.createElement("li");
    li.className = `entry kind-${e.kind}`;
    li.dataset.path = e.path;
    li.dataset.kind = e.kind;
    li.style.setProperty("--depth", String(e.depth + 1));
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = `${e.name}${e.kind === "dir" && e.depth >= 0 ? "/" : ""}`;
    if (e.target !== undefined) {
      const target = document.createElement("span");
      target.className = "target";
      target.textContent = ` → ${e.target}`;
      name.append(target);
    }
    name.title = `/mnt/${e.path}`;
    li.append(name);
    if (!withActions) return li;
    const mode = document.createElement("span");
    mode.className = "mode";
    mode.textContent = modeString(e.kind, e.mode);
    const size = document.createElement("span");
    size.className = "size";
    size.textContent = e.kind === "file" ? sizeString(e.size) : "";
    const actions = document.createElement("span");
    actions.className = "actions";
    if (e.kind === "file") actions.append(this.button("⬇", `Download ${e.name}`, "download"));
    actions.append(this.button("✕", `Delete ${e.name}`, "delete"));
    li.append(mode, size, actions);
    return li;
  }

  private button(label: string, title: string, action: string): HTMLButtonElement {
    const b = document.createElement("button");
    b.textContent = label;
    b.title = title;
    b.setAttribute("aria-label", title);
    b.dataset.action = action;
    return b;
  }

  private onClick(e: MouseEvent): void {
    const el = e.target as HTMLElement;
    const li = el.closest("li");
    if (!li) return;
    const path = li.dataset.path!;
    const action = el.closest("button")?.dataset.action;
    if (action === "download") this.actions.download(path);
    else if (action === "delete") {
      if (confirm(`Delete /mnt/${path}?`)) this.actions.remove(path);
    } else if (li.dataset.kind === "dir") {
      this.target = path;
      this.showTarget();
    }
  }

  private showTarget(): void {
    this.root.querySelector("#upload-target")!.textContent = `/mnt/${this.target ? this.target + "/" : ""}`;
    for (const li of this.tree.querySelectorAll<HTMLElement>("li")) li.classList.toggle("selected", li.dataset.path === this.target && li.dataset.kind === "dir");
  }

  private dropRow(e: DragEvent): HTMLElement | undefined {
    const li = (e.target as HTMLElement).closest?.<HTMLElement>("li.kind-dir");
    return li ?? undefined;
  }

  private async upload(dir: string, files: FileList | null | undefined): Promise<void> {
    for (const file of files ?? []) this.actions.upload(dir, file.name, await file.arrayBuffer());
  }
}
