// What the overlay tests share, in Node and in Chromium: mounting an OverlayFs over a built image, paths
// to inode numbers, and the conformance suite's "behind the back" changes made through the overlay
// itself (changing the layers under a mounted overlay is undefined, as in Linux; this still tests the
// readdir snapshot the suite looks at).
import { ImageFs } from "../../src/fs/image/image.ts";
import { parseImageIndex } from "../../src/fs/image/index.ts";
import { OverlayFs } from "../../src/fs/image/overlay.ts";
import { O_CREAT, O_RDWR } from "../../src/vfs/linux.ts";
import type { FileSystem, Ino } from "../../src/vfs/filesystem.ts";
import type { BuiltImage } from "./image-builder.ts";
import type { Fixture } from "../unit/fs-conformance.ts";

/** An overlay of `upper` over the image; called again on the same storage, it is a remount (a reload). */
export async function mountOverlay(image: BuiltImage, upper: FileSystem): Promise<OverlayFs> {
  return OverlayFs.mount(new ImageFs(parseImageIndex(image.text), image.source), upper);
}

export async function inoOf(fs: FileSystem, path: string): Promise<Ino> {
  let ino = fs.rootIno;
  for (const name of path.split("/")) ino = (await fs.lookup(ino, name)).ino;
  return ino;
}

/** The suite's addFile and remove, through the overlay. */
export function throughOverlay(fs: FileSystem): Pick<Fixture, "addFile" | "remove"> {
  const split = async (path: string): Promise<[Ino, string]> => {
    const at = path.lastIndexOf("/");
    return [at < 0 ? fs.rootIno : await inoOf(fs, path.slice(0, at)), path.slice(at + 1)];
  };
  return {
    addFile: async (path) => {
      const [parent, name] = await split(path);
      await fs.release((await fs.create(parent, name, 0o644, O_CREAT | O_RDWR, { uid: 0, gid: 0 })).fh);
    },
    remove: async (path) => {
      const [parent, name] = await split(path);
      await fs.unlink(parent, name);
    },
  };
}
