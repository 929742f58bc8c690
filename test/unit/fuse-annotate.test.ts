// The inspector's byte view: what the observer is handed (the chain's descriptors from the device, the
// request's bytes, the reply's bytes as written) and the field-by-field reading of both.
import { Volume } from "memfs";
import { describe, expect, it } from "vitest";
import { VirtioFsDevice } from "../../device/virtio-fs.ts";
import { VIRTQ_DESC_F_WRITE } from "../../device/virtqueue.ts";
import { annotateReply, annotateRequest, formatInitFlags, type ByteField } from "../../src/fuse/annotate.ts";
import { FUSE_ASYNC_READ, FUSE_DO_READDIRPLUS, FUSE_INIT_EXT, FUSE_HAS_INODE_DAX, FUSE_ROOT_ID, FuseOpcode as Op, fuse_entry_out, fuse_in_header, fuse_open_in, fuse_open_out, fuse_out_header, fuse_read_in } from "../../src/fuse/abi.ts";
import { FuseServer, type FuseObserver, type RequestTrace } from "../../src/fuse/server.ts";
import { MemFs } from "../../src/fs/memfs/memfs.ts";
import { FakeBus } from "../support/fake-bus.ts";
import { ReferenceDriver, args, cstr } from "../support/reference-driver.ts";

interface Seen {
  trace: RequestTrace;
  request: Uint8Array;
  reply?: Uint8Array;
}

/** A device and server over memfs whose observer keeps copies of every request and reply. */
function setup() {
  const vol = new Volume();
  vol.fromJSON({ "/hello": "hello, world\n" });
  const seen: Seen[] = [];
  const observer: FuseObserver = {
    request: (trace) => seen.push({ trace, request: new Uint8Array([...trace.header, ...trace.args]) }),
    reply: (trace, _error, bytes, _ms, written) => {
      const s = seen.find((x) => x.trace === trace)!;
      s.reply = new Uint8Array(written.flatMap((p) => [...p]));
      expect(s.reply.length).toBe(bytes);
    },
  };
  const bus = new FakeBus(32 * 1024 * 1024);
  const server = new FuseServer({ fs: new MemFs(vol), observer });
  new VirtioFsDevice(bus, { tag: "t", handler: server.handle });
  const d = new ReferenceDriver(bus);
  d.probe({ indirect: true, eventIdx: true });
  return { d, seen };
}

const field = (fields: ByteField[], struct: string, name: string) => fields.find((f) => f.struct === struct && f.field === name);

describe("the byte view", () => {
  it("hands the observer the chain's descriptors, the request's bytes and what was written into the chain", async () => {
    const { d, seen } = setup();
    expect((await d.init(Number(FUSE_ASYNC_READ | FUSE_DO_READDIRPLUS | FUSE_INIT_EXT), 0)).error).toBe(0);
    const lookup = await d.fuse(Op.FUSE_LOOKUP, FUSE_ROOT_ID, cstr("hello"));
    const nodeid = lookup.view.getBigUint64(fuse_entry_out.nodeid, true);
    const open = await d.fuse(Op.FUSE_OPEN, nodeid, new Uint8Array(fuse_open_in.SIZE));
    expect(open.error).toBe(0);
    const read = args(fuse_read_in.SIZE, (v) => {
      v.setBigUint64(fuse_read_in.fh, open.view.getBigUint64(fuse_open_out.fh, true), true);
      v.setUint32(fuse_read_in.size, 4096, true);
    });
    await d.fuse(Op.FUSE_READ, nodeid, read);

    const [init, , , r] = seen;
    // The reference driver posts one readable and one writable descriptor per request.
    expect(r!.trace.chain.map((c) => [c.len, (c.flags & VIRTQ_DESC_F_WRITE) !== 0])).toEqual([
      [fuse_in_header.SIZE + fuse_read_in.SIZE, false],
      [fuse_out_header.SIZE + 4096, true],
    ]);
    expect(r!.request.length).toBe(fuse_in_header.SIZE + fuse_read_in.SIZE);
    expect(new TextDecoder().decode(r!.reply!.subarray(fuse_out_header.SIZE))).toBe("hello, world\n");

    const inFields = annotateRequest(init!.request);
    expect(field(inFields, "fuse_in_header", "opcode")?.value).toBe("26 FUSE_INIT");
    expect(field(inFields, "fuse_init_in", "major")).toMatchObject({ offset: 40, size: 4, value: "7" });
    expect(field(inFields, "fuse_init_in", "minor")?.value).toBe("38");
    expect(field(inFields, "fuse_init_in", "max_readahead")?.value).toBe("131072");
    expect(field(inFields, "fuse_init_in", "flags")?.value).toBe("FUSE_ASYNC_READ|FUSE_DO_READDIRPLUS|FUSE_INIT_EXT");
    const initReply = annotateReply(init!.request, init!.reply!);
    expect(field(initReply, "fuse_out_header", "error")?.value).toBe("0");
    expect(field(initReply, "fuse_init_out", "max_write")?.value).toBe("1048576");

    const readFields = annotateRequest(r!.request);
    expect(field(readFields, "fuse_read_in", "size")).toMatchObject({ offset: 40 + fuse_read_in.size, value: "4096" });
    const readReply = annotateReply(r!.request, r!.reply!);
    expect(readReply.at(-1)).toEqual({ offset: 16, size: 13, struct: "payload", field: "", value: "13 bytes" });
    expect(field(annotateReply(seen[1]!.request, seen[1]!.reply!), "fuse_entry_out", "attr.mode")?.value).toBe("S_IFREG|0666");
  });

  it("reads names, failed replies, nested structs and what was not kept", () => {
    const req = new Uint8Array(fuse_in_header.SIZE + 6);
    const v = new DataView(req.buffer);
    v.setUint32(fuse_in_header.len, req.length, true);
    v.setUint32(fuse_in_header.opcode, Op.FUSE_LOOKUP, true);
    req.set(cstr("hello"), fuse_in_header.SIZE);
    expect(annotateRequest(req).at(-1)).toEqual({ offset: 40, size: 6, struct: "name", field: "name", value: '"hello"' });

    const failed = new Uint8Array(fuse_out_header.SIZE);
    new DataView(failed.buffer).setInt32(fuse_out_header.error, -2, true);
    expect(annotateReply(req, failed).map((f) => f.field)).toEqual(["len", "error", "unique"]);
    expect(field(annotateReply(req, failed), "fuse_out_header", "error")?.value).toBe("-2 ENOENT");

    // A READ reply of 64 KiB of which 512 bytes were kept: the payload says so.
    const readReq = new Uint8Array(fuse_in_header.SIZE + fuse_read_in.SIZE);
    new DataView(readReq.buffer).setUint32(fuse_in_header.opcode, Op.FUSE_READ, true);
    expect(annotateReply(readReq, new Uint8Array(512), 16 + 65536).at(-1)?.value).toBe("65536 bytes (the first 496 kept)");
    // A request cut short: the header's fields that are there, nothing past the end.
    expect(annotateRequest(req.subarray(0, 10)).map((f) => f.field)).toEqual(["len", "opcode"]);
    expect(formatInitFlags(Number(FUSE_HAS_INODE_DAX >> 32n) | 0x80000000, true)).toBe("FUSE_HAS_INODE_DAX|0x80000000");
  });
});
