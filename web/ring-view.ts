// Each virtqueue's split ring as the device sees it, redrawn with every batch: the available ring (flags,
// idx, used_event, the newest entries, those the device has not taken yet marked), the device's
// last_avail_idx, the used ring (flags, idx, avail_event, the newest entries), the descriptor table entries
// of those chains (the ones being served or held by a paused device lit), and the interrupts sent or
// suppressed. With the device paused, Step moves it one request at a time.
import { VIRTQ_DESC_F_NEXT, type QueueState } from "../src/index.ts";
import { flagNames } from "./bytes-view.ts";

const hex = (a: number): string => "0x" + a.toString(16);


const span = (className: string, text: string, title?: string): HTMLSpanElement => {
  const s = document.createElement("span");
  s.className = className;
  s.textContent = text;
  if (title) s.title = title;
  return s;
};

export function drawRings(root: HTMLElement, guests: { guest: number; queues: QueueState[] }[]): void {
  const several = guests.length > 1;
  root.replaceChildren(
    ...guests.flatMap(({ guest, queues }) =>
      queues.map((q) => {
        const r = q.ring;
        const box = document.createElement("div");
        box.className = "ring";
        box.dataset.queue = String(q.index);
        box.dataset.guest = String(guest);
        const title = document.createElement("h4");
        title.textContent = `${several ? `guest ${guest} · ` : ""}queue ${q.index === 0 ? "0 · hiprio" : `${q.index} · requests`} · size ${r.size} · desc ${hex(r.desc)} · avail ${hex(r.driver)} · used ${hex(r.device)}`;

        // Which chain each listed descriptor belongs to: served (in flight), held, or done.
        const byIndex = new Map(r.descriptors.map((d) => [d.index, d]));
        const state = new Map<number, string>();
        const held = new Set(q.heldHeads);
        for (const head of r.inflight) {
          for (let i: number | undefined = head, n = 0; i !== undefined && n < r.size && !state.has(i); n++) {
            state.set(i, held.has(head) ? "held" : "serving");
            const d = byIndex.get(i);
            i = d && d.flags & VIRTQ_DESC_F_NEXT ? d.next : undefined;
          }
        }

        const avail = line("avail ring", `flags ${r.availFlags} · idx ${r.availIdx}${r.eventIdx ? ` · used_event ${r.usedEvent}` : ""}`);
        // A head comes back once its chain is used: only its newest avail entry is the chain in flight.
        const newest = new Map(r.avail.map((e) => [e.head, e.idx]));
        for (const e of r.avail) {
          const waiting = ((e.idx - r.lastAvail) & 0xffff) < 0x8000;
          const lit = newest.get(e.head) === e.idx && !waiting ? state.get(e.head) : undefined;
          avail.append(span(`slot${waiting ? " waiting" : ""}${lit ? ` ${lit}` : ""}`, `[${e.idx & (r.size - 1)}] ${e.head}`, `avail entry ${e.idx}: chain head ${e.head}${waiting ? ", not taken by the device yet" : ""}`));
        }
        const device = line("device", `last_avail_idx ${r.lastAvail} · ${q.inflight} in flight${q.held ? ` · ${q.held} held (paused)` : ""}`);
        const used = line("used ring", `flags ${r.usedFlags} · idx ${r.usedIdx}${r.eventIdx ? ` · avail_event ${r.availEvent}` : ""}`);
        for (const e of r.used) used.append(span("slot", `[${e.idx & (r.size - 1)}] ${e.id}:${e.len}`, `used entry ${e.idx}: chain ${e.id}, ${e.len} bytes written`));
        const table = line("descriptors", r.descriptors.length ? "" : "none listed");
        for (const d of r.descriptors) {
          table.append(span(`slot desc${state.has(d.index) ? ` ${state.get(d.index)}` : ""}`, `#${d.index} ${hex(d.addr)}+${d.len} ${flagNames(d.flags)}${d.flags & VIRTQ_DESC_F_NEXT ? ` →${d.next}` : ""}`));
        }
        const irq = line("interrupts", `${r.interrupts.sent} sent · ${r.interrupts.suppressed} suppressed${r.eventIdx ? " (EVENT_IDX: used_event decides)" : ""}`);
        box.append(title, avail, device, used, table, irq);
        return box;
      }),
    ),
  );
}

function line(name: string, text: string): HTMLDivElement {
  const div = document.createElement("div");
  div.className = "ring-line";
  div.append(span("ring-name", name), span("ring-fields", text));
  return div;
}
