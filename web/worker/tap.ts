// The Worker's view of FUSE traffic, from the server's observer: counts every opcode (cheap, always),
// tells the file panel when the guest changed the tree, and, only while the page shows the inspector,
// decodes requests and sends them in batches, one per animation frame, at most MAX_BATCH events each.
import { describeRequest, FuseOpcode as O, fuseOpcodeName, replyErrorName, type FuseObserver, type QueueState, type RequestTrace } from "../../src/index.ts";
import type { InspectBatch, TraceEvent } from "../protocol.ts";

/** Replies to these change what the file panel shows. */
const MODIFYING = new Set<number>([
  O.FUSE_SETATTR,
  O.FUSE_SYMLINK,
  O.FUSE_MKNOD,
  O.FUSE_MKDIR,
  O.FUSE_UNLINK,
  O.FUSE_RMDIR,
  O.FUSE_RENAME,
  O.FUSE_RENAME2,
  O.FUSE_LINK,
  O.FUSE_WRITE,
  O.FUSE_CREATE,
  O.FUSE_TMPFILE,
  O.FUSE_FALLOCATE,
  O.FUSE_COPY_FILE_RANGE,
]);

/** The server answers these with no reply at all. */
const NO_REPLY = new Set<number>([O.FUSE_FORGET, O.FUSE_BATCH_FORGET, O.FUSE_INTERRUPT]);

const MAX_BATCH = 400;
/** Queue state refreshes this often while nothing else is sent. */
const IDLE_MS = 250;

const frame: (cb: () => void) => void =
  typeof requestAnimationFrame === "function" ? (cb) => requestAnimationFrame(cb) : (cb) => setTimeout(cb, 16);

export class Tap implements FuseObserver {
  private readonly counts = new Map<number, number>();
  private readonly open = new Map<RequestTrace, TraceEvent>();
  private events: TraceEvent[] = [];
  /** The events of the batch being gathered, for replies to find their request in it. */
  private readonly batch = new Set<TraceEvent>();
  private dropped = 0;
  private inspecting = false;
  private scheduled = false;
  private idle: ReturnType<typeof setInterval> | undefined;
  private readonly t0 = performance.now();

  constructor(
    private readonly guest: number,
    private readonly send: (batch: InspectBatch) => void,
    private readonly queues: () => QueueState[],
    private readonly paused: () => boolean,
    /** The guest changed the tree. */
    private readonly changed: () => void,
  ) {}

  setInspecting(on: boolean): void {
    this.inspecting = on;
    this.open.clear();
    clearInterval(this.idle);
    this.idle = on ? setInterval(() => this.schedule(), IDLE_MS) : undefined;
    if (on) this.schedule();
  }

  request(t: RequestTrace): void {
    this.counts.set(t.opcode, (this.counts.get(t.opcode) ?? 0) + 1);
    if (!this.inspecting) return;
    const d = describeRequest(t.opcode, t.args);
    const e: TraceEvent = { guest: this.guest, unique: Number(t.unique), queue: t.queue, opcode: t.opcode, op: d.op, nodeid: Number(t.nodeid), args: d.args, text: d.text, at: performance.now() - this.t0 };
    if (!NO_REPLY.has(t.opcode)) this.open.set(t, e);
    this.push(e);
  }

  reply(t: RequestTrace, error: number, bytes: number, ms: number): void {
    if (error === 0 && MODIFYING.has(t.opcode)) this.changed();
    const e = this.open.get(t);
    if (!e) return;
    this.open.delete(t);
    // A reply in the same batch as its request fills the request's event; a later one travels alone.
    const reply = { error, errno: replyErrorName(error), bytes, ms };
    if (this.batch.has(e)) e.reply = reply;
    else this.push({ ...e, reply });
  }

  /** Something changed the device (pause, step): show it now. */
  refresh(): void {
    if (this.inspecting) this.schedule();
  }

  private push(e: TraceEvent): void {
    this.events.push(e);
    this.batch.add(e);
    if (this.events.length > MAX_BATCH) {
      this.batch.delete(this.events.shift()!);
      this.dropped++;
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    frame(() => {
      this.scheduled = false;
      if (!this.inspecting) return;
      const counts = [...this.counts].sort((a, b) => b[1] - a[1]).map(([op, n]): [string, number] => [fuseOpcodeName(op) ?? `opcode ${op}`, n]);
      this.send({ guest: this.guest, events: this.events, dropped: this.dropped, queues: this.queues(), counts, paused: this.paused() });
      this.events = [];
      this.batch.clear();
      this.dropped = 0;
    });
  }
}
