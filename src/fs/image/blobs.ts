// The blobs of an image as ImageFs reads them: fetched from a BlobSource on first use, gunzipped, checked
// against the sha256 that names them (a blob that does not match is EIO, never wrong data), and kept in a
// cache bounded by bytes, least recently used first out. Concurrent reads of one blob share one fetch.

import { EIO } from "../../vfs/errno.ts";
import { FsError } from "../../vfs/filesystem.ts";
import { blobPath } from "./format.ts";

/** Where an image's blobs come from: `path` is relative to the image directory (see `blobPath`). */
export interface BlobSource {
  /** The blob's bytes as stored (still gzipped for a ".gz" path). */
  fetch(path: string): Promise<Uint8Array>;
}

/** A regular file's blob, as the index names it. */
export interface BlobRef {
  sha256: string;
  gz: boolean;
  size: number;
}

export const DEFAULT_CACHE_BYTES = 64 << 20;

export class BlobCache {
  // A Map iterates in insertion order: re-inserting on use keeps the least recently used first.
  private readonly cached = new Map<string, Uint8Array>();
  private readonly pending = new Map<string, Promise<Uint8Array>>();
  private bytes = 0;

  constructor(
    private readonly source: BlobSource,
    private readonly capacity = DEFAULT_CACHE_BYTES,
  ) {}

  /** The blob's verified bytes. */
  async get(ref: BlobRef): Promise<Uint8Array> {
    const hit = this.cached.get(ref.sha256);
    if (hit !== undefined) {
      this.cached.delete(ref.sha256);
      this.cached.set(ref.sha256, hit);
      return hit;
    }
    let loading = this.pending.get(ref.sha256);
    if (loading === undefined) {
      loading = this.load(ref).finally(() => this.pending.delete(ref.sha256));
      this.pending.set(ref.sha256, loading);
    }
    return loading;
  }

  private async load(ref: BlobRef): Promise<Uint8Array> {
    const path = blobPath(ref.sha256, ref.gz);
    let data: Uint8Array;
    try {
      const stored = await this.source.fetch(path);
      data = ref.gz ? await gunzip(stored) : stored;
    } catch (e) {
      throw new FsError(EIO, `blob ${path}: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (data.length !== ref.size) throw new FsError(EIO, `blob ${path} has ${data.length} bytes, not ${ref.size}`);
    if ((await sha256Hex(data)) !== ref.sha256) throw new FsError(EIO, `blob ${path} does not match its sha256`);
    this.keep(ref.sha256, data);
    return data;
  }

  private keep(sha256: string, data: Uint8Array): void {
    if (data.length > this.capacity) return; // the reader's handle keeps it; the cache never holds more than asked
    this.cached.set(sha256, data);
    this.bytes += data.length;
    for (const [key, old] of this.cached) {
      if (this.bytes <= this.capacity) break;
      this.cached.delete(key);
      this.bytes -= old.length;
    }
  }
}

async function gunzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}
