// The lazy image format: a directory tree described by one index, each regular file's bytes in a blob
// named by its sha256, so that a backend can list and stat the whole tree at once and fetch a file's bytes
// only when it is first read (over HTTP in the page, from files in Node). Identical files share one blob.
//
//   <image>/index.json                    ImageIndex (below)
//   <image>/blobs/<ab>/<sha256>[.gz]      the file's bytes, gzipped when that saved space ("gz": true)
//
// Written by `npm run guest:rootfs` (guest/rootfs) from a Debian tree, and by `writeImage` from any
// directory; read by ImageFs (src/fs/image/image.ts).

export const IMAGE_FORMAT = "virtiofs-web-image";
export const IMAGE_VERSION = 1;
export const INDEX_NAME = "index.json";

/** Seconds and nanoseconds, as a pair (the index stays compact). */
export type ImageTime = [sec: number, nsec: number];

export interface ImageEntry {
  /** Components joined by "/", no leading "/", "" for the root; a directory comes before what it holds. */
  path: string;
  /**
   * A hard link: the path of an earlier entry (a regular file, symlink or special file) naming the same
   * inode. Every field but `path` is then absent.
   */
  link?: string;
  /** st_mode: file type (S_IF*) and permission bits. */
  mode?: number;
  uid?: number;
  gid?: number;
  atime?: ImageTime;
  mtime?: ImageTime;
  ctime?: ImageTime;
  /** Regular files: bytes. */
  size?: number;
  /** Regular files with size > 0: the sha256 of their bytes (lower-case hex), which names the blob. */
  sha256?: string;
  /** The blob is stored gzip-compressed. */
  gz?: boolean;
  /** Symlinks: the target. */
  target?: string;
  /** Character and block devices: st_rdev. */
  rdev?: number;
  /** Extended attributes: name → value in base64. */
  xattrs?: Record<string, string>;
}

export interface ImageIndex {
  format: typeof IMAGE_FORMAT;
  version: typeof IMAGE_VERSION;
  entries: ImageEntry[];
}

/** Where a blob lives, relative to the image directory. */
export function blobPath(sha256: string, gz: boolean): string {
  return `blobs/${sha256.slice(0, 2)}/${sha256}${gz ? ".gz" : ""}`;
}

/** An index that is not a valid image (it is untrusted input): names the entry at fault. */
export class ImageFormatError extends Error {
  override readonly name = "ImageFormatError";
}
