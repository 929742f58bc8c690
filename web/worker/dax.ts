// What the DAX window maps, for the page's inspector: the mappings (which file range sits where) are polled
// here, named from the file panel's last listing, and sent only when they changed, at most every POLL_MS,
// while the inspector is on; each poll also finds the dirty pages (daxSnapshot). Where the page cannot
// read the window live (v86's memory is not shared), it gets a copy of the window's state once a second.
import type { DaxWindow, FuseServer, Ino } from "../../src/index.ts";
import { signatures } from "../dax-signature.ts";
import type { DaxCopy, DaxMapped } from "../protocol.ts";

const POLL_MS = 250;
const COPY_EVERY = 4;

export class DaxFeed {
  private timer: ReturnType<typeof setInterval> | undefined;
  /** The last list sent, serialized. */
  private last = "";
  private polls = 0;

  constructor(
    private readonly server: FuseServer,
    private readonly window: DaxWindow,
    private readonly pathOf: (ino: Ino) => string | undefined,
    private readonly send: (mappings: DaxMapped[]) => void,
    /** Given when the page cannot read the window live. */
    private readonly sendCopy?: (copy: DaxCopy) => void,
  ) {}

  setInspecting(on: boolean): void {
    clearInterval(this.timer);
    this.timer = on ? setInterval(() => this.poll(), POLL_MS) : undefined;
    // The page may have missed changes while the inspector was off: it gets the current state at once.
    this.last = "";
    this.polls = 0;
    if (on) this.poll();
  }

  private poll(): void {
    const snapshot = this.server.daxSnapshot();
    if (!snapshot) return;
    if (this.sendCopy && this.polls++ % COPY_EVERY === 0) this.sendCopy(this.copy());
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

  private copy(): DaxCopy {
    const bytes = this.window.bytes();
    const words = new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    const { pageState, dirty } = this.window;
    return { pageState: pageState.slice(), dirty: dirty.slice(), signatures: signatures(words, pageState) };
  }
}
