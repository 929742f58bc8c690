// Downloads and verifies the guest images over HTTP (browser, Worker), reporting progress.
import { IMAGE_NAMES, parseManifest, verifyImage, ImageError, type GuestImages } from "./images.ts";

export interface Progress {
  loaded: number;
  total: number;
}

async function fetchBytes(url: string, onChunk: (n: number) => void): Promise<ArrayBuffer> {
  const res = await fetch(url);
  if (!res.ok || !res.body) throw new ImageError(`cannot load ${url}: HTTP ${res.status}`);
  const parts: Uint8Array[] = [];
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    onChunk(value.length);
  }
  return new Blob(parts as BlobPart[]).arrayBuffer();
}

export async function fetchImages(baseUrl: string, onProgress: (p: Progress) => void): Promise<GuestImages> {
  const base = baseUrl.endsWith("/") ? baseUrl : baseUrl + "/";
  const manifestRes = await fetch(base + "manifest.json");
  if (!manifestRes.ok) throw new ImageError(`cannot load ${base}manifest.json: HTTP ${manifestRes.status}`);
  const manifest = parseManifest(await manifestRes.text());
  const total = manifest.files.reduce((n, f) => n + f.size, 0);
  let loaded = 0;
  const entries = await Promise.all(
    IMAGE_NAMES.map(async (name) => {
      const bytes = await fetchBytes(base + name, (n) => onProgress({ loaded: (loaded += n), total }));
      await verifyImage(manifest, name, bytes);
      return [name, bytes] as const;
    }),
  );
  return Object.fromEntries(entries) as GuestImages;
}
