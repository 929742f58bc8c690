// What the DAX window maps, for the page's inspector. The page reads the page tables live from their
// SharedArrayBuffers; the mappings (which file range sits where) are polled here, named from the file
// panel's last listing, and sent only when they changed, at most every POLL_MS, while the inspector is on.
import type { DaxWindow, FuseServer, Ino } from "../../src/index.ts";
import type { DaxMapped } from "../protocol.ts";

const POLL_MS = 250;

export class DaxFeed {
  private timer: ReturnType<typeof setInterval> | undefined;
  /** The last list sent, serialized. */
  private last = "";

  constructor(
    private readonly server: FuseServer,
    private readonly window: DaxWindow,
    private readonly pathOf: (ino: Ino) => string | undefined,
    private readonly send: (mappings: DaxMapped[]) => void,
  ) {}

  setInspecting(on: boolean): void {
    clearInterval(this.timer);
    this.timer = on ? setInterval(() => this.poll(), POLL_MS) : undefined;
    // The page may have missed changes while the inspector was off: it gets the current list at once.
    this.last = "";
    if (on) this.poll();
  }

  private poll(): void {
    const snapshot = this.server.daxSnapshot();
    if (!snapshot) return;
    // The snapshot knows the guest's node ids; the window's extents (the same ones, read in the same tick)
    // know the backend inodes, which the listing can name.
    const owners = new Map(this.window.extents().map((e) => [e.offset, e.owner]));
    const mappings = snapshot.mappings.map(({ moffset, length, foffset, writable, nodeid }): DaxMapped => {
      const ino = owners.get(moffset);
      return { moffset, length, foffset, writable, nodeid, path: ino === undefined ? undefined : this.pathOf(ino) };
    });
    const key = JSON.stringify(mappings);
    if (key === this.last) return;
    this.last = key;
    this.send(mappings);
  }
}
