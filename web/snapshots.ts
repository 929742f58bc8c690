// The page's snapshot controls: Save (a download, kept in OPFS by the Worker), Restore… (a file, checked
// here before the running guest is given up), and the banner saying where the guest came from, with
// "Boot fresh".
import { checkSnapshot } from "../src/index.ts";

export interface SnapshotHooks {
  save(): void;
  /** Resume this checked snapshot file in place of the running guest. */
  restore(name: string, data: ArrayBuffer): void;
  /** Boot afresh; `dropKept`: the banner showed the kept snapshot, which goes. */
  bootFresh(dropKept: boolean): void;
}

/** Why Save is off, or undefined when the guest can be saved. */
export type SaveBlock = "booting" | "root" | "two-guests" | "saving" | undefined;

const SAVE_TITLES: Record<NonNullable<SaveBlock> | "ok", string> = {
  ok: "Save the running guest with its share as a snapshot file, and keep it for the next visit",
  booting: "The guest is not up yet",
  root: "A guest booted from a root image is not saved: the page's snapshots hold the one share on /mnt (the root's changes stay in its overlay)",
  "two-guests": "Two guests share the backend: a snapshot holds one guest",
  saving: "Saving…",
};

/** A date as the banner shows it: local, to the second. */
const when = (iso: string): string => new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });

export class SnapshotControls {
  private keptShown = false;

  constructor(
    private readonly saveButton: HTMLButtonElement,
    private readonly input: HTMLInputElement,
    private readonly banner: HTMLElement,
    private readonly hooks: SnapshotHooks,
  ) {
    saveButton.addEventListener("click", () => hooks.save());
    input.addEventListener("change", () => void this.picked());
    banner.querySelector("button")!.addEventListener("click", () => {
      this.hide();
      hooks.bootFresh(this.keptShown);
    });
    this.block("booting");
  }

  block(why: SaveBlock): void {
    this.saveButton.disabled = why !== undefined;
    this.saveButton.title = SAVE_TITLES[why ?? "ok"];
  }

  restored(created: string, kept: boolean, name?: string): void {
    this.keptShown = kept;
    this.show(`restored from ${name ? `${name}, a ` : ""}snapshot of ${when(created)}`, false, true);
  }

  /** A snapshot that could not be restored; the page boots fresh. */
  failed(message: string): void {
    this.show(`the snapshot was not restored: ${message}. Booted fresh.`, true, false);
  }

  /** The file name a Save's snapshot downloads as. */
  static fileName(created: string): string {
    return `virtiofs-web-${created.replace(/[:.]/g, "-")}.vfsw`;
  }

  hide(): void {
    this.banner.hidden = true;
  }

  private show(text: string, error: boolean, withBootFresh: boolean): void {
    this.banner.querySelector("#snapshot-note")!.textContent = text;
    this.banner.classList.toggle("error", error);
    this.banner.querySelector("button")!.hidden = !withBootFresh;
    this.banner.hidden = false;
  }

  private async picked(): Promise<void> {
    const file = this.input.files?.[0];
    this.input.value = ""; // the same file again is a new choice
    if (!file) return;
    const data = await file.arrayBuffer();
    try {
      await checkSnapshot(new Uint8Array(data));
    } catch (e) {
      this.show(`${file.name} cannot be restored: ${e instanceof Error ? e.message : String(e)}. The running guest goes on.`, true, false);
      return;
    }
    this.hooks.restore(file.name, data);
  }
}
