// The protocol inspector: a live log of FUSE requests and replies as fuse.h names them, the virtqueues'
// indices, requests per opcode, the DAX window (dax-view.ts), and pause/step/resume for the device. Batches from the
// Worker are drawn once per animation frame; the log keeps the newest MAX_ROWS rows.
import { DaxView } from "./dax-view.ts";
import type { DeviceAction, InspectBatch, TraceEvent } from "./protocol.ts";

const MAX_ROWS = 1000;

export class Inspector {
  private readonly log: HTMLTableSectionElement;
  private readonly wrap: HTMLElement;
  private readonly filter: HTMLInputElement;
  /** Rows waiting for their reply, by guest and unique. */
  private readonly pending = new Map<string, HTMLTableRowElement>();
  private queued: InspectBatch[] = [];
  /** Each guest's latest queue states, request counts and held requests (batches come per guest). */
  private readonly guests = new Map<number, InspectBatch>();
  private frame = 0;
  readonly dax: DaxView;

  constructor(
    private readonly root: HTMLElement,
    control: (action: DeviceAction) => void,
  ) {
    this.log = root.querySelector("#log tbody")!;
    this.wrap = root.querySelector("#log-wrap")!;
    this.filter = root.querySelector("#log-filter")!;
    this.dax = new DaxView(root);
    for (const action of ["pause", "step", "resume"] as const) {
      root.querySelector(`#btn-${action}`)!.addEventListener("click", () => control(action));
    }
    root.querySelector("#btn-clear")!.addEventListener("click", () => this.clear());
    this.filter.addEventListener("input", () => {
      for (const row of this.log.rows) this.applyFilter(row);
    });
  }

  /** A batch from the Worker; drawn at the next frame. */
  apply(batch: InspectBatch): void {
    this.queued.push(batch);
    this.frame ||= requestAnimationFrame(() => this.draw());
  }

  clear(): void {
    this.log.replaceChildren();
    this.pending.clear();
    this.guests.clear();
  }

  private draw(): void {
    this.frame = 0;
    const batches = this.queued;
    this.queued = [];
    if (batches.length === 0) return;
    const atBottom = this.wrap.scrollTop + this.wrap.clientHeight >= this.wrap.scrollHeight - 4;
    const rows: HTMLTableRowElement[] = [];
    let dropped = 0;
    for (const b of batches) {
      dropped += b.dropped;
      this.guests.set(b.guest, b);
      for (const e of b.events) {
        const open = e.reply ? this.pending.get(key(e)) : undefined;
        if (open) {
          this.fillReply(open, e);
          this.pending.delete(key(e));
        } else rows.push(this.row(e));
      }
    }
    if (dropped > 0) rows.push(this.note(`${dropped} requests not shown: the guest was faster than the page`));
    this.log.append(...rows);
    while (this.log.rows.length > MAX_ROWS) {
      const first = this.log.rows[0]!;
      this.pending.delete(first.dataset.key!);
      first.remove();
    }
    if (atBottom) this.wrap.scrollTop = this.wrap.scrollHeight;
    const guests = [...this.guests.values()].sort((a, b) => a.guest - b.guest);
    this.drawQueues(guests);
    this.drawCounts(guests);
    this.drawState(guests.some((g) => g.paused), guests.reduce((n, g) => n + g.queues.reduce((m, q) => m + q.held, 0), 0));
  }

  private row(e: TraceEvent): HTMLTableRowElement {
    const tr = document.createElement("tr");
    tr.dataset.key = key(e);
    tr.dataset.guest = String(e.guest);
    tr.dataset.op = e.op;
    tr.title = `${e.op} at ${(e.at / 1000).toFixed(3)} s on guest ${e.guest}'s queue ${e.queue}`;
    // The second guest's uniques are marked: each guest numbers its own requests.
    for (const text of [e.guest === 0 ? String(e.unique) : `[${e.guest}] ${e.unique}`, e.op.replace(/^FUSE_/, ""), String(e.nodeid), e.text, "…", "", ""]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    if (e.reply) this.fillReply(tr, e);
    else if (e.op === "FUSE_FORGET" || e.op === "FUSE_BATCH_FORGET" || e.op === "FUSE_INTERRUPT") tr.cells[4]!.textContent = "no reply";
    else this.pending.set(key(e), tr);
    this.applyFilter(tr);
    return tr;
  }

  private fillReply(tr: HTMLTableRowElement, e: TraceEvent): void {
    const r = e.reply!;
    tr.cells[4]!.textContent = r.errno;
    tr.cells[5]!.textContent = String(r.bytes);
    tr.cells[6]!.textContent = r.ms < 1 ? `${Math.round(r.ms * 1000)} µs` : `${r.ms.toFixed(1)} ms`;
    tr.classList.toggle("failed", r.error !== 0);
    this.applyFilter(tr);
  }

  private note(text: string): HTMLTableRowElement {
    const tr = document.createElement("tr");
    tr.className = "note";
    const td = document.createElement("td");
    td.colSpan = 7;
    td.textContent = text;
    tr.append(td);
    return tr;
  }

  private applyFilter(tr: HTMLTableRowElement): void {
    const words = this.filter.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    const text = tr.textContent!.toLowerCase();
    tr.hidden = !words.every((w) => text.includes(w));
  }

  private drawQueues(guests: InspectBatch[]): void {
    const body = this.root.querySelector<HTMLTableSectionElement>("#queues tbody")!;
    const several = guests.length > 1;
    body.replaceChildren(
      ...guests.flatMap(({ guest, queues }) => queues.map((q) => ({ guest, q }))).map(({ guest, q }) => {
        const tr = document.createElement("tr");
        const name = q.index === 0 ? "0 · hiprio" : `${q.index} · requests`;
        for (const v of [several ? `guest ${guest} · ${name}` : name, q.size, q.availIdx, q.usedIdx, q.inflight, q.held]) {
          const td = document.createElement("td");
          td.textContent = String(v);
          tr.append(td);
        }
        tr.classList.toggle("holding", q.held > 0);
        return tr;
      }),
    );
  }

  /** Requests per opcode, every guest's added up, the most frequent first. */
  private drawCounts(guests: InspectBatch[]): void {
    const total = new Map<string, number>();
    for (const g of guests) for (const [op, n] of g.counts) total.set(op, (total.get(op) ?? 0) + n);
    this.root.querySelector("#counts")!.replaceChildren(
      ...[...total].sort((a, b) => b[1] - a[1]).map(([op, n]) => {
        const chip = document.createElement("span");
        chip.className = "chip";
        chip.textContent = `${op.replace(/^FUSE_/, "")} ${n}`;
        return chip;
      }),
    );
  }

  private drawState(paused: boolean, held: number): void {
    this.root.querySelector("#device-state")!.textContent = paused ? `paused · ${held} held` : "running";
    this.root.querySelector<HTMLButtonElement>("#btn-pause")!.disabled = paused;
    this.root.querySelector<HTMLButtonElement>("#btn-step")!.disabled = !paused;
    this.root.querySelector<HTMLButtonElement>("#btn-resume")!.disabled = !paused;
  }
}

/** A request's key in the log: uniques are per guest. */
const key = (e: TraceEvent): string => `${e.guest}:${e.unique}`;
