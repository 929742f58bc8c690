// BlobSources that work in the browser and in Node alike (fileBlobSource, Node only, is in file-source.ts).

import type { BlobSource } from "./blobs.ts";

/** Blobs under `baseUrl` (the image directory's URL), fetched over HTTP. */
export function httpBlobSource(baseUrl: string | URL): BlobSource {
  const base = new URL(baseUrl.toString().endsWith("/") ? baseUrl : `${baseUrl.toString()}/`, globalThis.location?.href);
  return {
    async fetch(path: string): Promise<Uint8Array> {
      const url = new URL(path, base);
      const response = await fetch(url);
      if (!response.ok) throw new Error(`${url.href}: HTTP ${response.status}`);
      return new Uint8Array(await response.arrayBuffer());
    },
  };
}
