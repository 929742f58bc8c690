// The Guest under Node: the images from a directory (the package's own by default) and v86.wasm from the
// v86 package.
import { Guest, type GuestOptions, type GuestRuntime, type RestoreOptions } from "./guest.ts";
import { loadImages, V86_WASM_PATH } from "./node-images.ts";

export interface NodeGuestOptions extends Omit<GuestOptions, "runtime"> {
  /** The guest images and their manifest.json (default: the package's public/guest/). */
  imagesDir?: string;
}

export async function nodeRuntime(imagesDir?: string): Promise<GuestRuntime> {
  return { images: await loadImages(imagesDir), wasmPath: V86_WASM_PATH };
}

/** Boots a guest in this Node process; see Guest.boot. */
export async function bootGuest(opts: NodeGuestOptions = {}): Promise<Guest> {
  const { imagesDir, ...rest } = opts;
  return Guest.boot({ ...rest, runtime: await nodeRuntime(imagesDir) });
}

/** Resumes a snapshot in this Node process; see Guest.restore. */
export async function restoreGuest(opts: Omit<RestoreOptions, "runtime"> & { imagesDir?: string }): Promise<Guest> {
  const { imagesDir, ...rest } = opts;
  return Guest.restore({ ...rest, runtime: await nodeRuntime(imagesDir) });
}
