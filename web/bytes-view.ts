// One request up close: its descriptor chain as the device walked it (guest address, length, flags, who
// may write it, indirect tables, and how much of each the request and the reply filled), and the request
// and reply bytes as annotated hex dumps, field by field with fuse.h's names. Hovering a field, in the dump
// or in the table under it, lights it in both and shows its value.
import { annotateReply, annotateRequest, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, type ByteField, type ChainDescriptor } from "../src/index.ts";
import type { TraceEvent } from "./trace.ts";

/** Dump rows shown before the rest of a payload folds away. */
const ROWS_OPEN = 4;

const el = <K extends keyof HTMLElementTagNameMap>(tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] => {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
};

const addr = (a: number): string => "0x" + a.toString(16).padStart(8, "0");

/** virtq_desc.flags by name. */
export function flagNames(flags: number): string {
  const names = [
    [VIRTQ_DESC_F_NEXT, "NEXT"],
    [VIRTQ_DESC_F_WRITE, "WRITE"],
    [VIRTQ_DESC_F_INDIRECT, "INDIRECT"],
  ] as const;
  return names.filter(([bit]) => flags & bit).map(([, n]) => n).join("|") || "0";
}

export function showRequest(root: HTMLElement, e: TraceEvent): void {
  const r = e.record;
  const head = el("h3", undefined, `${e.op} · unique ${e.unique} · nodeid ${e.nodeid}${e.guest ? ` · guest ${e.guest}` : ""} · queue ${e.queue}`);
  const request = annotateRequest(r.request, r.requestLength);
  const parts: HTMLElement[] = [head, chainView(r.chain, r.requestLength, r.reply?.length ?? 0)];
  parts.push(dump("request", "device-readable: what the guest sent", r.request, r.requestLength, request));
  if (r.reply) parts.push(dump("reply", "device-writable: what the device wrote back", r.reply.bytes, r.reply.length, annotateReply(r.request, r.reply.bytes, r.reply.length)));
  else parts.push(el("p", "muted", e.op === "FUSE_FORGET" || e.op === "FUSE_BATCH_FORGET" || e.op === "FUSE_INTERRUPT" ? "no reply: fuse.h's FORGET and INTERRUPT get none" : "no reply yet"));
  root.replaceChildren(...parts);
  root.hidden = false;
}

/** The chain, descriptor by descriptor, each with the bytes of the request or reply it carried. */
function chainView(chain: readonly ChainDescriptor[], requestLength: number, replyLength: number): HTMLElement {
  const box = el("section", "chain");
  box.setAttribute("aria-label", "descriptor chain");
  box.append(el("h4", undefined, "descriptor chain"));
  if (chain.length === 0) {
    box.append(el("p", "muted", "the device did not list this chain's descriptors"));
    return box;
  }
  const list = el("ol", "descs");
  let readLeft = requestLength;
  let writeLeft = replyLength;
  for (const d of chain) {
    const table = (d.flags & VIRTQ_DESC_F_INDIRECT) !== 0;
    const writable = !table && (d.flags & VIRTQ_DESC_F_WRITE) !== 0;
    const li = el("li", `desc ${table ? "table" : writable ? "writable" : "readable"}${d.indirect ? " in-table" : ""}`);
    li.dataset.addr = String(d.addr);
    const used = table ? 0 : Math.min(d.len, writable ? writeLeft : readLeft);
    if (writable) writeLeft -= used;
    else if (!table) readLeft -= used;
    li.append(
      el("span", "idx", `${d.indirect ? "indirect" : "desc"}[${d.index}]`),
      el("span", "addr", addr(d.addr)),
      el("span", "len", `len ${d.len}`),
      el("span", "flags", flagNames(d.flags)),
      el("span", "role", table ? `indirect table: ${d.len / 16} descriptors` : writable ? `device-writable · ${used} written` : `device-readable · ${used} read`),
    );
    if (!table && d.len > 0) {
      const bar = el("span", "fill");
      bar.style.setProperty("--fill", String(used / d.len));
      li.append(bar);
    }
    list.append(li);
  }
  box.append(list);
  return box;
}

/** A message's kept bytes, 16 a row, each byte marked with its field; the fields listed underneath. */
function dump(kind: "request" | "reply", caption: string, bytes: Uint8Array, length: number, fields: ByteField[]): HTMLElement {
  const box = el("section", `dump ${kind}`);
  box.setAttribute("aria-label", `${kind} bytes`);
  box.append(el("h4", undefined, `${kind} · ${length} bytes${bytes.length < length ? `, the first ${bytes.length} kept` : ""} · ${caption}`));
  const owner = new Int32Array(bytes.length).fill(-1);
  fields.forEach((f, i) => owner.fill(i, f.offset, Math.min(f.offset + f.size, bytes.length)));
  const label = (i: number): string => (i < 0 ? "" : `${fields[i]!.struct}${fields[i]!.field ? "." + fields[i]!.field : ""} = ${fields[i]!.value}`);

  const hex = el("div", "hex");
  const structEnd = fields.filter((f) => f.struct !== "payload").reduce((n, f) => Math.max(n, f.offset + f.size), 0);
  const openRows = Math.ceil(structEnd / 16) + ROWS_OPEN;
  let fold: HTMLDetailsElement | undefined;
  for (let row = 0; row * 16 < bytes.length; row++) {
    const line = el("div", "row");
    line.append(el("span", "off", (row * 16).toString(16).padStart(4, "0")));
    let text = "";
    for (let i = row * 16; i < Math.min(bytes.length, row * 16 + 16); i++) {
      const b = el("span", owner[i]! >= 0 ? `b f${owner[i]! % 6}` : "b", bytes[i]!.toString(16).padStart(2, "0"));
      b.dataset.field = String(owner[i]);
      b.title = label(owner[i]!);
      line.append(b);
      text += bytes[i]! >= 0x20 && bytes[i]! < 0x7f ? String.fromCharCode(bytes[i]!) : ".";
    }
    line.append(el("span", "ascii", text));
    if (row === openRows && !fold) {
      fold = el("details", "fold");
      fold.append(el("summary", undefined, `${bytes.length - row * 16} more bytes kept${bytes.length < length ? ` (of ${length - row * 16})` : ""}`));
      hex.append(fold);
    }
    (fold ?? hex).append(line);
  }
  box.append(hex);

  const table = el("table", "fields grid");
  const body = el("tbody");
  fields.forEach((f, i) => {
    const tr = el("tr", `f${i % 6}`);
    tr.dataset.field = String(i);
    tr.dataset.name = `${f.struct}${f.field ? "." + f.field : ""}`;
    for (const v of [String(f.offset), String(f.size), tr.dataset.name]) tr.append(el("td", undefined, v));
    // Long flag lists break after each "|".
    const value = el("td");
    f.value.split("|").forEach((part, k) => value.append(...(k ? [el("wbr"), "|" + part] : [part])));
    tr.append(value);
    body.append(tr);
  });
  const thead = el("thead");
  thead.innerHTML = "<tr><th>offset</th><th>size</th><th>field</th><th>value</th></tr>";
  table.append(thead, body);
  box.append(table);

  // One field lit across the dump and the table.
  box.addEventListener("mouseover", (ev) => {
    const field = (ev.target as HTMLElement).closest<HTMLElement>("[data-field]")?.dataset.field;
    for (const x of box.querySelectorAll<HTMLElement>(".hl")) x.classList.remove("hl");
    if (field === undefined || field === "-1") return;
    for (const x of box.querySelectorAll<HTMLElement>(`[data-field="${field}"]`)) x.classList.add("hl");
  });
  return box;
}
