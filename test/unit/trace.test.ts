// The page's reading of the Worker's raw records, and the log's JSON file out and back in.
import { describe, expect, it } from "vitest";
import { FuseOpcode, fuse_in_header } from "../../src/index.ts";
import type { TraceRecord } from "../../web/protocol.ts";
import { decodeRecord, exportTrace, importTrace } from "../../web/trace.ts";

function lookupRecord(): TraceRecord {
  const name = new TextEncoder().encode("hello.txt\0");
  const request = new Uint8Array(fuse_in_header.SIZE + name.length);
  const v = new DataView(request.buffer);
  v.setUint32(fuse_in_header.len, request.length, true);
  v.setUint32(fuse_in_header.opcode, FuseOpcode.FUSE_LOOKUP, true);
  v.setBigUint64(fuse_in_header.unique, 6n, true);
  v.setBigUint64(fuse_in_header.nodeid, 1n, true);
  request.set(name, fuse_in_header.SIZE);
  return {
    guest: 1,
    seq: 3,
    queue: 1,
    at: 12.5,
    request,
    requestLength: request.length,
    chain: [{ index: 0, addr: 0x2000, len: 64, flags: 4, indirect: false }],
    reply: { error: -2, length: 16, ms: 0.3, bytes: new Uint8Array(16).fill(0xfe) },
  };
}

describe("trace records", () => {
  it("reads the opcode, unique, node id and arguments from the request's bytes", () => {
    const e = decodeRecord(lookupRecord());
    expect(e).toMatchObject({ guest: 1, seq: 3, unique: 6, nodeid: 1, op: "FUSE_LOOKUP", text: 'name="hello.txt"', reply: { errno: "ENOENT", bytes: 16 } });
  });

  it("exports a log as JSON and imports it back unchanged", () => {
    const r = lookupRecord();
    expect(importTrace(exportTrace([r]))).toEqual([r]);
  });

  it("refuses what is not an exported log", () => {
    expect(() => importTrace("{}")).toThrow(/not a virtiofs-web trace/);
    const bad = JSON.parse(exportTrace([lookupRecord()])) as { records: { request: string }[] };
    bad.records[0]!.request = "zz";
    expect(() => importTrace(JSON.stringify(bad))).toThrow(/hex/);
  });
});
