// OverlayFs with an OPFS upper layer in real Chromium, as the page runs a Debian root: the conformance
// suite, and the guest's changes (whiteouts, opaque directories, copied-up files, a renamed lower
// directory) found again by a new OpfsFs and overlay over the same OPFS directories, as after a reload.
import { describe, expect, it } from "vitest";
import { OpfsFs } from "../../src/fs/opfs/opfs.ts";
import { O_RDWR, S_IFCHR, S_IFREG } from "../../src/vfs/linux.ts";
import type { FileSystem, Ino } from "../../src/vfs/filesystem.ts";
import { buildImage, type ImageItem } from "../support/image-builder.ts";
import { inoOf, mountOverlay, throughOverlay } from "../support/overlay-fixture.ts";
import { errnoOf, fsConformance } from "../unit/fs-conformance.ts";

const enc = new TextEncoder();
const cred = { uid: 0, gid: 0 };
let shares = 0;

/** Fresh OPFS directories for a share's tree and metadata, and an OpfsFs over them. */
async function newUpper(readOnly = false): Promise<{ open(): Promise<OpfsFs>; dispose(): Promise<void> }> {
  const root = await navigator.storage.getDirectory();
  const tree = `overlay-${Date.now()}-${shares++}`;
  const open = async (): Promise<OpfsFs> =>
    OpfsFs.open(await root.getDirectoryHandle(tree, { create: true }), { meta: await root.getDirectoryHandle(`${tree}.meta`, { create: true }), syncAccess: false, readOnly });
  return {
    open,
    dispose: async () => {
      for (const name of [tree, `${tree}.meta`]) await root.removeEntry(name, { recursive: true }).catch(() => {});
    },
  };
}

const mount = mountOverlay;

async function names(fs: FileSystem, ino: Ino): Promise<string[]> {
  const dh = await fs.opendir(ino);
  const entries = await fs.readdir(dh, 0);
  await fs.releasedir(dh);
  return entries.map((e) => e.name).filter((n) => n !== "." && n !== "..").sort();
}

async function read(fs: FileSystem, ino: Ino): Promise<string> {
  const fh = await fs.open(ino, 0);
  const data = await fs.read(fh, 0, 1 << 20);
  await fs.release(fh);
  return new TextDecoder().decode(data);
}

// OPFS stores a gap as zeros: the suite keeps such files small (dense).
fsConformance(
  "overlay (image under opfs)",
  async (items, options) => {
    const upper = await newUpper(options?.readOnly === true);
    const opfs = await upper.open();
    const fs = await mount(await buildImage(items), opfs);
    // Through the overlay, as in the Node tests: changing a mounted overlay's layers is undefined.
    return {
      fs,
      ...throughOverlay(fs),
      cleanup: async () => {
        await opfs.close();
        await upper.dispose();
      },
    };
  },
  { holeGranularity: undefined, dense: true, timePrecisionNs: 1 },
);

const ITEMS: ImageItem[] = [
  { kind: "dir", path: "etc", mode: 0o755 },
  { kind: "file", path: "etc/passwd", mode: 0o644, data: enc.encode("root:x:0:0\n"), uid: 0, gid: 0, mtime: [1_500_000_000, 5] },
  { kind: "file", path: "etc/motd", mode: 0o644, data: enc.encode("hello\n") },
  { kind: "dir", path: "var", mode: 0o755 },
  { kind: "dir", path: "var/lib", mode: 0o700 },
  { kind: "file", path: "var/lib/state", mode: 0o600, data: enc.encode("state\n") },
];

describe("OverlayFs over OPFS", () => {
  it("finds the guest's changes again after a reload", async () => {
    const image = await buildImage(ITEMS);
    const upper = await newUpper();
    try {
      const first = await upper.open();
      const fs = await mount(image, first);
      const etc = await inoOf(fs, "etc");
      const passwd = await fs.lookup(etc, "passwd");
      const fh = await fs.open(passwd.ino, O_RDWR);
      await fs.write(fh, 11, enc.encode("user:x:1000:1000\n"));
      await fs.release(fh);
      await fs.unlink(etc, "motd");
      await fs.unlink(await inoOf(fs, "var/lib"), "state");
      await fs.rmdir(await inoOf(fs, "var"), "lib");
      await fs.mkdir(await inoOf(fs, "var"), "lib", 0o755, cred);
      await fs.rename(fs.rootIno, "etc", fs.rootIno, "etc.old", 0);
      await fs.syncfs();
      await first.close();

      const second = await upper.open();
      const again = await mount(image, second);
      expect(await names(again, again.rootIno)).toEqual(["etc.old", "var"]);
      expect(await errnoOf(() => again.lookup(again.rootIno, "etc"))).toBe("ENOENT");
      const old = await inoOf(again, "etc.old");
      expect(await names(again, old)).toEqual(["passwd"]);
      expect(await read(again, await inoOf(again, "etc.old/passwd"))).toBe("root:x:0:0\nuser:x:1000:1000\n");
      expect(await again.lookup(old, "passwd")).toMatchObject({ mode: S_IFREG | 0o644 });
      expect(await names(again, await inoOf(again, "var/lib"))).toEqual([]);
      expect(await again.listxattr(await inoOf(again, "var/lib"))).toEqual([]);
      // What OPFS itself holds: the whiteout of "etc" as a device 0:0 in its metadata.
      expect(await second.lookup(second.rootIno, "etc")).toMatchObject({ mode: S_IFCHR, rdev: 0 });
      await second.close();
    } finally {
      await upper.dispose();
    }
  });
});
