// The page's reading of the Worker's raw records (protocol.ts): the opcode, unique and node id from
// fuse_in_header, the key arguments by describeRequest; and a log as a JSON file, out and back in.
import { describeRequest, fuse_in_header, replyErrorName, type ArgValue } from "../src/index.ts";
import type { TraceRecord } from "./protocol.ts";

/** One FUSE request as the log shows it, and its reply once there is one. */
export interface TraceEvent {
  guest: number;
  seq: number;
  unique: number;
  queue: number;
  opcode: number;
  /** fuse.h's opcode name. */
  op: string;
  nodeid: number;
  args: Record<string, ArgValue>;
  text: string;
  /** Milliseconds since the Worker started, when the request reached the server. */
  at: number;
  reply?: { error: number; errno: string; bytes: number; ms: number };
  record: TraceRecord;
}

/** The server reports whole headers only, so a record's request always holds fuse_in_header. */
export function decodeRecord(r: TraceRecord): TraceEvent {
  const v = new DataView(r.request.buffer, r.request.byteOffset, r.request.byteLength);
  const opcode = v.getUint32(fuse_in_header.opcode, true);
  const d = describeRequest(opcode, r.request.subarray(fuse_in_header.SIZE));
  return {
    guest: r.guest,
    seq: r.seq,
    unique: Number(v.getBigUint64(fuse_in_header.unique, true)),
    queue: r.queue,
    opcode,
    op: d.op,
    nodeid: Number(v.getBigUint64(fuse_in_header.nodeid, true)),
    args: d.args,
    text: d.text,
    at: r.at,
    reply: r.reply && { error: r.reply.error, errno: replyErrorName(r.reply.error), bytes: r.reply.length, ms: r.reply.ms },
    record: r,
  };
}

const FORMAT = "virtiofs-web trace";

const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
function unhex(s: unknown): Uint8Array {
  if (typeof s !== "string" || !/^(?:[0-9a-f]{2})*$/.test(s)) throw new Error("bytes are not hex");
  return Uint8Array.from(s.match(/../g) ?? [], (x) => parseInt(x, 16));
}

/** The records as a JSON document (bytes as hex). */
export function exportTrace(records: readonly TraceRecord[]): string {
  const out = records.map((r) => ({ ...r, request: hex(r.request), reply: r.reply && { ...r.reply, bytes: hex(r.reply.bytes) } }));
  return JSON.stringify({ format: FORMAT, version: 1, records: out });
}

/** Reads what exportTrace wrote; throws an Error saying what is wrong with anything else. */
export function importTrace(text: string): TraceRecord[] {
  const doc: unknown = JSON.parse(text);
  if (typeof doc !== "object" || doc === null || (doc as { format?: unknown }).format !== FORMAT) throw new Error(`not a ${FORMAT} file`);
  const records = (doc as { records?: unknown }).records;
  if (!Array.isArray(records)) throw new Error("no records");
  const num = (v: unknown, what: string): number => {
    if (typeof v !== "number" || !Number.isFinite(v)) throw new Error(`${what} is not a number`);
    return v;
  };
  return records.map((x: Record<string, unknown>, i): TraceRecord => {
    const request = unhex(x.request);
    if (request.length < fuse_in_header.SIZE) throw new Error(`record ${i}: the request is shorter than fuse_in_header`);
    const reply = x.reply as Record<string, unknown> | undefined;
    const chain = Array.isArray(x.chain) ? x.chain : [];
    return {
      guest: num(x.guest, "guest"),
      seq: num(x.seq, "seq"),
      queue: num(x.queue, "queue"),
      at: num(x.at, "at"),
      request,
      requestLength: num(x.requestLength, "requestLength"),
      chain: chain.map((c: Record<string, unknown>) => ({ index: num(c.index, "index"), addr: num(c.addr, "addr"), len: num(c.len, "len"), flags: num(c.flags, "flags"), indirect: c.indirect === true })),
      reply: reply && { error: num(reply.error, "error"), length: num(reply.length, "length"), ms: num(reply.ms, "ms"), bytes: unhex(reply.bytes) },
    };
  });
}
