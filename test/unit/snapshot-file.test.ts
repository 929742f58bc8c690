// The snapshot file's wrapper (src/machine/snapshot.ts): what comes back of a packed snapshot, and the one
// message a file that is not one gets, from checkSnapshot (no decompression) and unpackSnapshot alike.
import { describe, expect, it } from "vitest";
import { checkSnapshot, packSnapshot, SNAPSHOT_VERSION, unpackSnapshot, type SnapshotContents } from "../../src/machine/snapshot.ts";

const contents: SnapshotContents = {
  created: "2026-01-02T03:04:05.000Z",
  images: { "bios.bin": "a".repeat(64), bzImage: "b".repeat(64), "initramfs.cpio": "c".repeat(64) },
  memoryBytes: 256 << 20,
  cmdline: "console=ttyS0",
  nonce: "n0nce",
  mode: "shell",
  ninep: false,
  uptimeAtReady: 1.5,
  v86: new Uint8Array(100_000).fill(7),
  shares: [{ tag: "share", mountPoint: "/mnt", cache: "auto", writeback: false, numRequestQueues: 1, locks: "auto", daxMiB: null, daxInodeMinSize: null }],
  virtiofs: new Uint8Array([1, 2, 3]),
};

describe("snapshot file", () => {
  it("unpacks what was packed", async () => {
    const file = await packSnapshot(contents);
    await expect(checkSnapshot(file)).resolves.toBeInstanceOf(Uint8Array);
    expect(await unpackSnapshot(file)).toEqual(contents);
    expect(file.length).toBeLessThan(2000); // gzip takes the runs of bytes down
  });

  it("keeps a window's dax=inode size line, and reads a file from before it as dax=always", async () => {
    const share = { ...contents.shares[0]!, daxMiB: 64 };
    const inode: SnapshotContents = { ...contents, shares: [{ ...share, daxInodeMinSize: 1 << 20 }] };
    expect(await unpackSnapshot(await packSnapshot(inode))).toEqual(inode);
    const { daxInodeMinSize: _, ...older } = share;
    const unpacked = await unpackSnapshot(await packSnapshot({ ...contents, shares: [older as typeof share] }));
    expect(unpacked.shares[0]).toEqual({ ...share, daxInodeMinSize: null });
  });

  it("refuses a truncated, damaged, foreign or newer file with one message", async () => {
    const file = await packSnapshot(contents);
    const damaged = file.slice();
    damaged[damaged.length - 10]! ^= 1;
    const newer = file.slice();
    new DataView(newer.buffer).setUint32(8, SNAPSHOT_VERSION + 1, true);
    const cases: [Uint8Array, RegExp][] = [
      [file.subarray(0, file.length >> 1), /truncated or damaged/],
      [damaged, /truncated or damaged/],
      [new TextEncoder().encode("not a snapshot at all, but long enough for a header"), /not a virtiofs-web snapshot/],
      [new Uint8Array(3), /not a virtiofs-web snapshot/],
      [newer, new RegExp(`snapshot format ${SNAPSHOT_VERSION + 1}; this virtiofs-web reads format ${SNAPSHOT_VERSION}`)],
    ];
    for (const [bytes, message] of cases) {
      await expect(checkSnapshot(bytes)).rejects.toThrow(message);
      await expect(unpackSnapshot(bytes)).rejects.toThrow(message);
    }
  });
});
