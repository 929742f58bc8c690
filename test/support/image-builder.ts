// An image (src/fs/image/format.ts) built in memory from a list of items, for ImageFs and OverlayFs tests:
// the index, its JSON, and the blobs (some gzipped) behind an in-memory BlobSource. Independent of the
// image writer on purpose, so that the reader is tested against the format, not against its writer. Web
// APIs only (Web Crypto, CompressionStream), so that the browser tests build images too.

import { IMAGE_FORMAT, IMAGE_VERSION, blobPath, type ImageEntry, type ImageIndex, type ImageTime } from "../../src/fs/image/format.ts";
import type { BlobSource } from "../../src/fs/image/blobs.ts";
import { S_IFDIR, S_IFLNK, S_IFREG } from "../../src/vfs/linux.ts";
import type { FixtureItem } from "../unit/fs-conformance.ts";

/** A fixture item, or a special file, with what the fixture's items leave at defaults. */
export type ImageItem = (FixtureItem | { kind: "special"; path: string; mode: number; rdev: number }) & {
  uid?: number;
  gid?: number;
  mtime?: ImageTime;
  xattrs?: Record<string, Uint8Array>;
};

export interface BuiltImage {
  index: ImageIndex;
  text: string;
  /** Blob path → stored bytes; tests may damage them. */
  blobs: Map<string, Uint8Array>;
  source: BlobSource;
  /** Paths fetched, in order. */
  fetched: string[];
}

export const IMAGE_TIME: ImageTime = [1_700_000_000, 123_456_789];

/** Files of an odd size are stored gzipped, the others plain, so both paths are exercised. */
export async function buildImage(items: readonly ImageItem[]): Promise<BuiltImage> {
  const blobs = new Map<string, Uint8Array>();
  const entries: ImageEntry[] = [{ path: "", mode: S_IFDIR | 0o755, uid: 0, gid: 0, atime: IMAGE_TIME, mtime: IMAGE_TIME, ctime: IMAGE_TIME }];
  for (const item of items) {
    if (item.kind === "hardlink") {
      entries.push({ path: item.path, link: item.existing });
      continue;
    }
    const mtime = item.mtime ?? IMAGE_TIME;
    const entry: ImageEntry = { path: item.path, mode: 0, uid: item.uid ?? 0, gid: item.gid ?? 0, atime: IMAGE_TIME, mtime, ctime: IMAGE_TIME };
    if (item.kind === "dir") entry.mode = S_IFDIR | item.mode;
    else if (item.kind === "symlink") Object.assign(entry, { mode: S_IFLNK | 0o777, target: item.target });
    else if (item.kind === "special") Object.assign(entry, { mode: item.mode }, item.rdev === 0 ? {} : { rdev: item.rdev });
    else {
      entry.mode = S_IFREG | item.mode;
      entry.size = item.data.length;
      if (item.data.length > 0) {
        const sha256 = hex(await crypto.subtle.digest("SHA-256", item.data.slice()));
        const gz = item.data.length % 2 === 1;
        Object.assign(entry, { sha256, gz });
        blobs.set(blobPath(sha256, gz), gz ? await gzip(item.data) : item.data.slice());
      }
    }
    if (item.xattrs !== undefined) {
      entry.xattrs = Object.fromEntries(Object.entries(item.xattrs).map(([name, value]) => [name, btoa(String.fromCharCode(...value))]));
    }
    entries.push(entry);
  }
  const index: ImageIndex = { format: IMAGE_FORMAT, version: IMAGE_VERSION, entries };
  const fetched: string[] = [];
  const source: BlobSource = {
    async fetch(path) {
      fetched.push(path);
      const blob = blobs.get(path);
      if (blob === undefined) throw new Error(`no blob ${path}`);
      return blob.slice();
    },
  };
  return { index, text: JSON.stringify(index), blobs, source, fetched };
}

function hex(digest: ArrayBuffer): string {
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function gzip(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data.slice()]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}
