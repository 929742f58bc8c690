// A FileSystem served over a text transport (src/fs/remote.ts, as `virtiofs-web run --browser --share`
// uses it): memfs behind JSON calls passes the whole conformance suite, and the server answers nothing but
// the contract's methods.
import { describe, expect, it } from "vitest";
import { decodeRemote, encodeRemote, remoteFileSystem, serveFileSystem, type RemoteAnswer, type RemoteCall } from "../../src/fs/remote.ts";
import { MemFs, SparseData } from "../../src/fs/memfs/memfs.ts";
import { ENOENT } from "../../src/vfs/errno.ts";
import { FsError, type FileSystem } from "../../src/vfs/filesystem.ts";
import { buildVolume } from "../support/memfs-fixture.ts";
import { fsConformance } from "./fs-conformance.ts";

/** `fs` as the far side of a JSON transport: every call and answer is encoded to text and back. */
function overJson(fs: FileSystem): FileSystem {
  const server = serveFileSystem(fs);
  const info = decodeRemote(encodeRemote(server.info)) as typeof server.info;
  return remoteFileSystem(info, async (call) => decodeRemote(encodeRemote(await server.answer(decodeRemote(encodeRemote(call)) as RemoteCall))) as RemoteAnswer);
}

fsConformance(
  "memfs over JSON (remote.ts)",
  async (items, options) => {
    const vol = buildVolume(items);
    return {
      fs: overJson(new MemFs(vol, options)),
      addFile: async (path) => vol.writeFileSync(`/${path}`, "new"),
      remove: async (path) => vol.unlinkSync(`/${path}`),
      cleanup: async () => {},
    };
  },
  { holeGranularity: SparseData.CHUNK, timePrecisionNs: 1 },
);

describe("remote FileSystem", () => {
  it("carries bytes of every value through JSON", () => {
    const bytes = Uint8Array.from({ length: 70_000 }, (_, i) => (i * 7) & 0xff);
    const back = decodeRemote(encodeRemote({ args: [1, bytes, "x"] })) as { args: [number, Uint8Array, string] };
    expect(back.args[1]).toEqual(bytes);
    expect(back.args[0]).toBe(1);
  });

  it("answers only the contract's methods (and those named), never another property of the object", async () => {
    const fs = Object.assign(new MemFs(), { secret: () => "leaked" });
    const server = serveFileSystem(fs);
    for (const method of ["secret", "constructor", "toString", "__proto__", "capabilities"]) {
      expect(await server.answer({ method, args: [] })).toMatchObject({ ok: false });
    }
    expect(await server.answer({ method: "lookup", args: "not an array" as unknown as unknown[] })).toMatchObject({ ok: false });
    expect(server.info.methods).not.toContain("flush"); // memfs has none: the far side must not offer one either
    expect(remoteFileSystem(server.info, server.answer).flush).toBeUndefined();
  });

  it("gives an FsError back as an FsError with its errno", async () => {
    const fs = overJson(new MemFs());
    await expect(fs.lookup(fs.rootIno, "missing")).rejects.toSatisfy((e: unknown) => e instanceof FsError && e.errno === ENOENT && e.message === "ENOENT: missing");
  });
});
