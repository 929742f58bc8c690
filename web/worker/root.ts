// The root the guest boots from with ?root=NAME: the lazy image the server has under rootfs/NAME/ (each
// file fetched on first read), under an overlay whose upper layer takes the guest's changes: a directory
// of its own in OPFS (kept across reloads, apart from the OPFS share's tree) or memory. Runs in the emulator
// Worker.
import { httpBlobSource, ImageFs, INDEX_NAME, MemFs, OpfsFs, OverlayFs, parseImageIndex, type FileSystem } from "../../src/index.ts";
import type { RootSettings } from "../protocol.ts";

export type OpenedRoot = { fs: FileSystem; label: string } | { missing: string };

/** The root, or why there is none: the server has no image of that name (not built). */
export async function openRoot({ name, overlay }: RootSettings, base: URL): Promise<OpenedRoot> {
  const dir = new URL(`rootfs/${name}/`, base);
  const response = await fetch(new URL(INDEX_NAME, dir));
  if (response.status === 404) {
    const how = name === "debian" ? "run `npm run guest:rootfs` (as root on Debian 12) and reload" : `there is no rootfs/${name}/${INDEX_NAME} on the server`;
    return { missing: `the ${name === "debian" ? "Debian" : name} root is not built: ${how}. The normal guest booted instead.` };
  }
  if (!response.ok) throw new Error(`${dir.href}${INDEX_NAME}: HTTP ${response.status}`);
  const image = new ImageFs(parseImageIndex(await response.text()), httpBlobSource(dir));
  if (overlay === "memfs") return { fs: await OverlayFs.mount(image, new MemFs()), label: `${name} image (fetched file by file), changes in memory: a reload starts afresh` };
  const opfs = await navigator.storage.getDirectory();
  const tree = `${name}-root-overlay`;
  const upper = await OpfsFs.open(await opfs.getDirectoryHandle(tree, { create: true }), { meta: await opfs.getDirectoryHandle(`${tree}.meta`, { create: true }) });
  return { fs: await OverlayFs.mount(image, upper), label: `${name} image (fetched file by file), changes in OPFS ${tree}/: kept across reloads (run sync before leaving)` };
}
