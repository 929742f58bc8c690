// Loads and verifies the guest images from a directory (Node).
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { IMAGE_NAMES, ImageError, parseManifest, verifyImage, type GuestImages } from "./images.ts";

export const DEFAULT_IMAGES_DIR = fileURLToPath(new URL("../../public/guest/", import.meta.url));
export const V86_WASM_PATH = createRequire(import.meta.url).resolve("v86/build/v86.wasm");

async function readOrExplain(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch {
    throw new ImageError(`${what} missing at ${path} (npm run guest:build makes it)`);
  }
}

export async function loadImages(dir = DEFAULT_IMAGES_DIR): Promise<GuestImages> {
  const manifest = parseManifest((await readOrExplain(join(dir, "manifest.json"), "guest manifest")).toString("utf8"));
  const entries = await Promise.all(
    IMAGE_NAMES.map(async (name) => {
      const buf = await readOrExplain(join(dir, name), `guest image ${name}`);
      const bytes = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
      await verifyImage(manifest, name, bytes);
      return [name, bytes] as const;
    }),
  );
  return Object.fromEntries(entries) as GuestImages;
}
