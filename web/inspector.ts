// The protocol inspector: a log of FUSE requests and replies as fuse.h names them, from boot on (the
// Worker's history comes first), the virtqueues' indices, requests per opcode, the DAX window
// (dax-view.ts), each queue's split ring (ring-view.ts), and pause/step/resume for the device. A row clicked (or reached with the arrow keys and
// Enter) shows its chain and bytes (bytes-view.ts). The log goes out as a JSON file and comes back in to be
// read without a guest. Batches from the Worker are drawn once per animation frame; the log keeps the
// newest MAX_ROWS rows.
import { showRequest } from "./bytes-view.ts";
import { DaxView } from "./dax-view.ts";
import { drawRings } from "./ring-view.ts";
import { HISTORY_SIZE, type DeviceAction, type InspectBatch } from "./protocol.ts";
import { decodeRecord, exportTrace, importTrace, type TraceEvent } from "./trace.ts";

/** Two guests' histories. */
const MAX_ROWS = 2 * HISTORY_SIZE;

export class Inspector {
  private readonly log: HTMLTableSectionElement;
  private readonly wrap: HTMLElement;
  private readonly filter: HTMLInputElement;
  /** Rows waiting for their reply, by key. */
  private readonly pending = new Map<string, HTMLTableRowElement>();
  /** What every row shows, by key: for its details and the export. */
  private readonly shown = new Map<string, TraceEvent>();
  private readonly detail: HTMLElement;
  private readonly rings: HTMLDetailsElement;
  private queued: { batch: InspectBatch; events: TraceEvent[] }[] = [];
  /** The file being read instead of the guest's traffic. */
  private replaying: string | undefined;
  /** Each guest's latest queue states, request counts and held requests (batches come per guest). */
  private readonly guests = new Map<number, InspectBatch>();
  private frame = 0;
  readonly dax: DaxView;

  constructor(
    private readonly root: HTMLElement,
    control: (action: DeviceAction) => void,
    /** Leave a replayed file: the Worker sends its history again. */
    private readonly live: () => void,
  ) {
    this.log = root.querySelector("#log tbody")!;
    this.wrap = root.querySelector("#log-wrap")!;
    this.filter = root.querySelector("#log-filter")!;
    this.detail = root.querySelector("#detail")!;
    this.rings = root.querySelector("#rings-box")!;
    root.querySelector("#history-size")!.textContent = `history: the last ${HISTORY_SIZE} requests per guest, from boot on`;
    this.log.addEventListener("click", (ev) => {
      const tr = (ev.target as HTMLElement).closest("tr");
      if (tr?.dataset.key) this.select(tr);
    });
    this.log.addEventListener("keydown", (ev) => this.key(ev));
    root.querySelector("#btn-export")!.addEventListener("click", () => this.export());
    const input = root.querySelector<HTMLInputElement>("#import-input")!;
    input.addEventListener("change", () => {
      const file = input.files?.[0];
      input.value = "";
      if (file) void file.text().then((text) => this.replay(file.name, text));
    });
    root.querySelector("#btn-live")!.addEventListener("click", () => {
      this.setReplaying(undefined);
      this.live();
    });
    this.dax = new DaxView(root);
    for (const action of ["pause", "step", "resume"] as const) {
      root.querySelector(`#btn-${action}`)!.addEventListener("click", () => control(action));
    }
    root.querySelector("#btn-clear")!.addEventListener("click", () => this.clear());
    this.filter.addEventListener("input", () => {
      for (const row of this.log.rows) this.applyFilter(row);
    });
  }

  /** A batch from the Worker, with its records read; drawn at the next frame. */
  apply(batch: InspectBatch, events: TraceEvent[]): void {
    if (this.replaying) return;
    this.queued.push({ batch, events });
    this.frame ||= requestAnimationFrame(() => this.draw());
  }

  /** The Worker's history as the inspector opens: it replaces the log (batches queued before it are in it). */
  backlog(events: TraceEvent[], dropped: number): void {
    if (this.replaying) return;
    this.queued = [];
    this.clearLog();
    this.show(events, dropped > 0 ? `${dropped} older requests were dropped: the history keeps the last ${HISTORY_SIZE} per guest` : undefined);
  }

  clear(): void {
    this.clearLog();
    this.guests.clear();
  }

  private clearLog(): void {
    this.log.replaceChildren();
    this.pending.clear();
    this.shown.clear();
    this.detail.hidden = true;
  }

  /** Appends rows for `events` (a reply to a row already there fills it), then trims the log. */
  private show(events: TraceEvent[], note?: string): void {
    const atBottom = this.wrap.scrollTop + this.wrap.clientHeight >= this.wrap.scrollHeight - 4;
    const rows: HTMLTableRowElement[] = note ? [this.note(note)] : [];
    for (const e of events) {
      const open = e.reply ? this.pending.get(key(e)) : undefined;
      if (open) {
        this.shown.set(key(e), e);
        this.fillReply(open, e);
        this.pending.delete(key(e));
      } else rows.push(this.row(e));
    }
    this.log.append(...rows);
    while (this.log.rows.length > MAX_ROWS) {
      const first = this.log.rows[0]!;
      this.pending.delete(first.dataset.key!);
      this.shown.delete(first.dataset.key!);
      first.remove();
    }
    if (!this.log.querySelector('tr[tabindex="0"]')) this.log.querySelector<HTMLTableRowElement>("tr[data-key]")?.setAttribute("tabindex", "0");
    if (atBottom) this.wrap.scrollTop = this.wrap.scrollHeight;
  }

  private select(tr: HTMLTableRowElement): void {
    const e = this.shown.get(tr.dataset.key!);
    if (!e) return;
    for (const x of this.log.querySelectorAll('[aria-selected="true"]')) x.setAttribute("aria-selected", "false");
    tr.setAttribute("aria-selected", "true");
    this.focus(tr);
    showRequest(this.detail, e);
  }

  /** The one row the Tab key reaches (roving tabindex). */
  private focus(tr: HTMLTableRowElement): void {
    for (const x of this.log.querySelectorAll('tr[tabindex="0"]')) x.setAttribute("tabindex", "-1");
    tr.tabIndex = 0;
    tr.focus();
  }

  /** Arrow keys, Home and End move along the visible rows; Enter or Space shows the row's request. */
  private key(ev: KeyboardEvent): void {
    const tr = (ev.target as HTMLElement).closest<HTMLTableRowElement>("tr[data-key]");
    if (!tr) return;
    const rows = [...this.log.querySelectorAll<HTMLTableRowElement>("tr[data-key]")].filter((r) => !r.hidden);
    const at = rows.indexOf(tr);
    const to = ev.key === "ArrowDown" ? rows[at + 1] : ev.key === "ArrowUp" ? rows[at - 1] : ev.key === "Home" ? rows[0] : ev.key === "End" ? rows.at(-1) : undefined;
    if (to) this.focus(to);
    else if (ev.key === "Enter" || ev.key === " ") this.select(tr);
    else return;
    ev.preventDefault();
  }

  private export(): void {
    const json = exportTrace([...this.shown.values()].map((e) => e.record));
    const a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([json], { type: "application/json" }));
    a.download = `virtiofs-trace-${new Date().toISOString().replace(/[:.]/g, "-")}.json`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
  }

  /** Shows an exported log instead of the guest's traffic, until "Back to live". */
  replay(name: string, text: string): void {
    let events: TraceEvent[];
    try {
      events = importTrace(text).map(decodeRecord);
    } catch (e) {
      this.root.querySelector("#replay-note")!.textContent = `${name}: ${e instanceof Error ? e.message : String(e)}`;
      return;
    }
    this.setReplaying(name);
    this.queued = [];
    this.clearLog();
    this.show(events);
    this.root.querySelector("#replay-note")!.textContent = `replaying ${name}: ${events.length} requests, no guest`;
  }

  private setReplaying(name: string | undefined): void {
    this.replaying = name;
    this.root.querySelector<HTMLButtonElement>("#btn-live")!.hidden = name === undefined;
    if (name === undefined) this.root.querySelector("#replay-note")!.textContent = "";
  }

  private draw(): void {
    this.frame = 0;
    const batches = this.queued;
    this.queued = [];
    if (batches.length === 0) return;
    const dropped = batches.reduce((n, b) => n + b.batch.dropped, 0);
    for (const { batch } of batches) this.guests.set(batch.guest, batch);
    this.show(
      batches.flatMap((b) => b.events),
      dropped > 0 ? `${dropped} requests not shown: the guest was faster than the page` : undefined,
    );
    const guests = [...this.guests.values()].sort((a, b) => a.guest - b.guest);
    this.drawQueues(guests);
    if (this.rings.open) drawRings(this.rings.querySelector("#rings")!, guests);
    this.drawCounts(guests);
    this.drawState(guests.some((g) => g.paused), guests.reduce((n, g) => n + g.queues.reduce((m, q) => m + q.held, 0), 0));
  }

  private row(e: TraceEvent): HTMLTableRowElement {
    const tr = document.createElement("tr");
    tr.dataset.key = key(e);
    tr.tabIndex = -1;
    this.shown.set(key(e), e);
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

/** A request's key in the log: records are numbered per guest. */
const key = (e: TraceEvent): string => `${e.guest}:${e.seq}`;
