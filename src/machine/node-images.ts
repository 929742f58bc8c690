// Loads and verifies the guest images from a directory (Node).
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { IMAGE_NAMES, ImageError, parseManifest, verifyImage, type GuestImages, type ImageName } from "./images.ts";

const require = createRequire(import.meta.url);
// The package finds itself by name, so this holds for the sources and for the built lib/ alike.
const PACKAGE_ROOT = dirname(require.resolve("virtiofs-web/package.json"));
/** The images that ship in the package. */
export const DEFAULT_IMAGES_DIR = join(PACKAGE_ROOT, "public", "guest");
/** The guest on Debian 12's stock kernel, built by guest/build-debian-kernel (not in the package). */
export const DEBIAN_IMAGES_DIR = join(PACKAGE_ROOT, "public", "guest-debian");

/**
 * Where `npm run guest:rootfs` (guest/rootfs) keeps the Debian userland: $ROOTFS_CACHE, else
 * $XDG_CACHE_HOME/virtiofs-web/rootfs/debian, else ~/.cache/virtiofs-web/rootfs/debian; its lazy image is
 * in image/, v86's basefs of the same tree in v86/.
 */
export function debianRootDir(env: Record<string, string | undefined> = process.env): string {
  return env.ROOTFS_CACHE || join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "virtiofs-web", "rootfs", "debian");
}
export const V86_WASM_PATH = require.resolve("v86/build/v86.wasm");

/** Where the package's guest images and their manifest are. */
export function guestImagePaths(dir = DEFAULT_IMAGES_DIR): Record<ImageName | "manifest.json", string> {
  return Object.fromEntries([...IMAGE_NAMES, "manifest.json"].map((name) => [name, join(dir, name)])) as Record<ImageName | "manifest.json", string>;
}

async function readOrExplain(dir: string, name: string, what: string): Promise<Buffer> {
  const path = join(dir, name);
  try {
    return await readFile(path);
  } catch {
    throw new ImageError(`${what} missing at ${path} (npm run ${dir === DEBIAN_IMAGES_DIR ? "guest:debian-kernel" : "guest:build"} makes it)`);
  }
}

export async function loadImages(dir = DEFAULT_IMAGES_DIR): Promise<GuestImages> {
  const manifest = parseManifest((await readOrExplain(dir, "manifest.json", "guest manifest")).toString("utf8"));
  const entries = await Promise.all(
    IMAGE_NAMES.map(async (name) => {
      const buf = await readOrExplain(dir, name, `guest image ${name}`);
      const bytes = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
      await verifyImage(manifest, name, bytes);
      return [name, bytes] as const;
    }),
  );
  return Object.fromEntries(entries) as GuestImages;
}
