// The Node BlobSource: an image directory on disk. Apart from sources.ts so that the browser bundle never
// imports node:fs.

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { BlobSource } from "./blobs.ts";

/** Blobs under the image directory `dir`. */
export function fileBlobSource(dir: string): BlobSource {
  return {
    async fetch(path: string): Promise<Uint8Array> {
      const buffer = await readFile(join(dir, ...path.split("/")));
      return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    },
  };
}
