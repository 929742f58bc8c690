// The Worker's tap on FUSE traffic: a bounded history from boot on, kept whether or not the page looks,
// and the stream that follows it once the inspector opens.
import { afterEach, describe, expect, it, vi } from "vitest";
import { FuseOpcode, fuse_in_header, type RequestTrace } from "../../src/index.ts";
import { BYTES_KEPT, HISTORY_SIZE, type InspectBatch } from "../../web/protocol.ts";
import { Tap } from "../../web/worker/tap.ts";

function trace(unique: number, args = new Uint8Array(8)): RequestTrace {
  const header = new Uint8Array(fuse_in_header.SIZE);
  const v = new DataView(header.buffer);
  v.setUint32(fuse_in_header.len, header.length + args.length, true);
  v.setUint32(fuse_in_header.opcode, FuseOpcode.FUSE_GETATTR, true);
  v.setBigUint64(fuse_in_header.unique, BigInt(unique), true);
  return { queue: 1, opcode: FuseOpcode.FUSE_GETATTR, unique: BigInt(unique), nodeid: 1n, header, args, chain: [{ index: 0, addr: 0x1000, len: 48, flags: 1, indirect: false }] };
}

afterEach(() => vi.useRealTimers());

describe("the tap", () => {
  it("keeps the newest HISTORY_SIZE requests with their replies, and counts the ones it dropped", () => {
    const tap = new Tap(0, () => {}, () => [], () => false, () => {});
    const traces = Array.from({ length: HISTORY_SIZE + 5 }, (_, i) => trace(i));
    for (const t of traces) tap.request(t);
    tap.reply(traces.at(-1)!, -2, 16, 0.1, [new Uint8Array(16).fill(7)]);
    const { records, dropped } = tap.backlog();
    expect(dropped).toBe(5);
    expect(records.length).toBe(HISTORY_SIZE);
    expect(records[0]!.seq).toBe(5);
    expect(records.at(-1)).toMatchObject({ seq: HISTORY_SIZE + 4, requestLength: fuse_in_header.SIZE + 8, reply: { error: -2, length: 16 } });
    expect(records.at(-1)!.chain).toEqual(traces.at(-1)!.chain);
  });

  it("keeps BYTES_KEPT bytes of a big request and of a big reply, copied", () => {
    const tap = new Tap(0, () => {}, () => [], () => false, () => {});
    const t = trace(1, new Uint8Array(64 * 1024).fill(1));
    tap.request(t);
    const payload = new Uint8Array(4096).fill(9);
    tap.reply(t, 0, 16 + 4096, 0.1, [new Uint8Array(16), payload]);
    payload.fill(0);
    const [r] = tap.backlog().records;
    expect(r!.request.length).toBe(BYTES_KEPT);
    expect(r!.requestLength).toBe(fuse_in_header.SIZE + 64 * 1024);
    expect(r!.reply!.bytes.length).toBe(BYTES_KEPT);
    expect(r!.reply!.bytes[16]).toBe(9);
  });

  it("streams what comes after the backlog once the page looks, a reply with its request", () => {
    vi.useFakeTimers();
    const sent: InspectBatch[] = [];
    const tap = new Tap(0, (b) => sent.push(b), () => [], () => false, () => {});
    tap.request(trace(1));
    tap.setInspecting(true);
    vi.advanceTimersByTime(20);
    sent.length = 0;
    const t = trace(2);
    tap.request(t);
    tap.reply(t, 0, 16, 0.1, [new Uint8Array(16)]);
    vi.advanceTimersByTime(20);
    expect(sent.flatMap((b) => b.records).map((r) => [r.seq, r.reply?.error])).toEqual([[1, 0]]);
    tap.setInspecting(false);
  });
});
