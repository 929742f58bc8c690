// The Worker's view of FUSE traffic, from the server's observer: counts every opcode, keeps every request
// and reply from boot on in a bounded history (raw bytes, a bounded prefix each: copying them is all it
// costs while nobody looks), tells the file panel when the guest changed the tree, and, while the page
// shows the inspector, sends the traffic in batches, one per animation frame, at most MAX_BATCH records each.
import { FuseOpcode as O, fuseOpcodeName, type FuseObserver, type QueueState, type RequestTrace } from "../../src/index.ts";
import { BYTES_KEPT, HISTORY_SIZE, type InspectBatch, type TraceRecord } from "../protocol.ts";

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

/** The first BYTES_KEPT bytes of `parts` laid end to end, copied. */
function keep(parts: readonly Uint8Array[]): Uint8Array {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(Math.min(total, BYTES_KEPT));
  let at = 0;
  for (const p of parts) {
    if (at === out.length) break;
    const n = Math.min(p.length, out.length - at);
    out.set(p.subarray(0, n), at);
    at += n;
  }
  return out;
}

export class Tap implements FuseObserver {
  private readonly counts = new Map<number, number>();
  /** Records waiting for their reply. */
  private readonly open = new Map<RequestTrace, TraceRecord>();
  /** The newest HISTORY_SIZE records, a ring: `next` is where the next one goes. */
  private readonly history: TraceRecord[] = [];
  private next = 0;
  private historyDropped = 0;
  private seq = 0;
  private records: TraceRecord[] = [];
  /** The records of the batch being gathered, for replies to find their request in it. */
  private readonly batch = new Set<TraceRecord>();
  private dropped = 0;
  private inspecting = false;
  private scheduled = false;
  private idle: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly guest: number,
    private readonly send: (batch: InspectBatch) => void,
    private readonly queues: () => QueueState[],
    private readonly paused: () => boolean,
    /** The guest changed the tree. */
    private readonly changed: () => void,
  ) {}

  /** The history, oldest first, and how many records it has dropped for want of room. */
  backlog(): { records: TraceRecord[]; dropped: number } {
    return { records: [...this.history.slice(this.next), ...this.history.slice(0, this.next)], dropped: this.historyDropped };
  }

  /** On: stream from now on (the page has just been sent the backlog). */
  setInspecting(on: boolean): void {
    this.inspecting = on;
    this.records = [];
    this.batch.clear();
    this.dropped = 0;
    clearInterval(this.idle);
    this.idle = on ? setInterval(() => this.schedule(), IDLE_MS) : undefined;
    if (on) this.schedule();
  }

  request(t: RequestTrace): void {
    this.counts.set(t.opcode, (this.counts.get(t.opcode) ?? 0) + 1);
    const r: TraceRecord = {
      guest: this.guest,
      seq: this.seq++,
      queue: t.queue,
      at: performance.now(),
      request: keep([t.header, t.args]),
      requestLength: t.header.length + t.args.length,
      chain: t.chain,
    };
    if (this.history.length < HISTORY_SIZE) this.history.push(r);
    else {
      this.history[this.next] = r;
      this.next = (this.next + 1) % HISTORY_SIZE;
      this.historyDropped++;
    }
    if (!NO_REPLY.has(t.opcode)) {
      this.open.set(t, r);
      // A reset drops the replies of requests in flight: past the history's size, the oldest are such.
      if (this.open.size > HISTORY_SIZE) this.open.delete(this.open.keys().next().value!);
    }
    if (this.inspecting) this.push(r);
  }

  reply(t: RequestTrace, error: number, bytes: number, ms: number, written: readonly Uint8Array[]): void {
    if (error === 0 && MODIFYING.has(t.opcode)) this.changed();
    const r = this.open.get(t);
    if (!r) return;
    this.open.delete(t);
    r.reply = { error, length: bytes, ms, bytes: keep(written) };
    // A reply in the same batch as its request fills the request's record; a later one sends it again.
    if (this.inspecting && !this.batch.has(r)) this.push(r);
  }

  /** Something changed the device (pause, step): show it now. */
  refresh(): void {
    if (this.inspecting) this.schedule();
  }

  private push(r: TraceRecord): void {
    this.records.push(r);
    this.batch.add(r);
    if (this.records.length > MAX_BATCH) {
      this.batch.delete(this.records.shift()!);
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
      this.send({ guest: this.guest, records: this.records, dropped: this.dropped, queues: this.queues(), counts, paused: this.paused() });
      this.records = [];
      this.batch.clear();
      this.dropped = 0;
    });
  }
}
