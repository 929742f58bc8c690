// The same tree in v86's own 9p root format, so the two file systems can be compared on equal bytes.
// Node only. v86 (lib/filesystem.js, load_from_json) reads a JSON document
//   { "fsroot": [node...], "version": 3, "size": <bytes of all files> }
// where a node is [name, size, mtime (s), mode, uid, gid, x]: x is a directory's children (nodes), a
// symlink's target, or a regular file's name under `baseurl`, fetched whole as baseurl + name on first
// read. Names ending in ".zst" are zstd-decompressed, anything else is used as is; v86 cannot gunzip, so
// the gzipped blobs are written out decompressed. v86's tools name a file by the first 8 hex digits of its
// sha256 + ".bin"; the full sha256 is used here (v86 treats the name as opaque) so no two contents can
// collide. v86 has no hard links (they become copies of the same name), devices, FIFOs or xattrs (dropped).
import { copyFile, link, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from "../../vfs/linux.ts";
import { blobPath, type ImageEntry, type ImageIndex } from "./format.ts";
import { writeAtomic } from "./write.ts";

export const V86_FS_JSON = "fs.json";
export const V86_FS_VERSION = 3;

/** [name, size, mtime, mode, uid, gid, children | symlink target | file name under baseurl] */
export type V86FsNode = [string, number, number, number, number, number, (V86FsNode[] | string)?];

export interface V86BaseFs {
  fsroot: V86FsNode[];
  version: typeof V86_FS_VERSION;
  size: number;
}

export interface V86BaseFsResult {
  /** Files under outDir besides fs.json, one per distinct content. */
  files: number;
  /** Their bytes. */
  bytes: number;
  /** Index entries v86 cannot represent (devices, FIFOs, sockets), left out. */
  dropped: number;
}

const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/** The name a regular file's bytes are fetched by (v86's `baseurl` + this). */
export function v86FileName(sha256: string): string {
  return `${sha256}.bin`;
}

export async function writeV86BaseFs(index: ImageIndex, imageDir: string, outDir: string): Promise<V86BaseFsResult> {
  const byPath = new Map<string, ImageEntry>();
  const children = new Map<string, V86FsNode[]>([["", []]]);
  const contents = new Map<string, boolean>(); // sha256 → gz, for every file written out
  let size = 0;
  let dropped = 0;

  for (const entry of index.entries) {
    byPath.set(entry.path, entry);
    if (entry.path === "") continue;
    const e = entry.link === undefined ? entry : byPath.get(entry.link);
    if (!e || e.mode === undefined) throw new Error(`writeV86BaseFs: ${entry.path}: link to unknown ${entry.link}`);
    const slash = entry.path.lastIndexOf("/");
    const siblings = children.get(entry.path.slice(0, slash < 0 ? 0 : slash));
    if (!siblings) throw new Error(`writeV86BaseFs: ${entry.path} comes before its directory`);
    const name = entry.path.slice(slash + 1);
    const mode = e.mode;
    const node = (n: number, x: V86FsNode[] | string): V86FsNode => [name, n, e.mtime?.[0] ?? 0, mode, e.uid ?? 0, e.gid ?? 0, x];
    const type = mode & S_IFMT;
    if (type === S_IFDIR) {
      const own: V86FsNode[] = [];
      children.set(entry.path, own);
      siblings.push(node(0, own));
    } else if (type === S_IFREG) {
      const sha256 = e.sha256 ?? EMPTY_SHA256;
      contents.set(sha256, e.gz ?? false);
      size += e.size ?? 0;
      siblings.push(node(e.size ?? 0, v86FileName(sha256)));
    } else if (type === S_IFLNK) {
      const target = e.target ?? "";
      siblings.push(node(Buffer.byteLength(target), target));
    } else {
      dropped++;
    }
  }

  await mkdir(outDir, { recursive: true });
  let bytes = 0;
  for (const [sha256, gz] of contents) {
    const out = join(outDir, v86FileName(sha256));
    if (sha256 === EMPTY_SHA256) await writeFile(out, "");
    else if (gz) await writeAtomic(out, gunzipSync(await readFile(join(imageDir, blobPath(sha256, true)))));
    else await linkOrCopy(join(imageDir, blobPath(sha256, false)), out);
    bytes += (await stat(out)).size;
  }

  const fs: V86BaseFs = { fsroot: children.get("")!, version: V86_FS_VERSION, size };
  await writeAtomic(join(outDir, V86_FS_JSON), JSON.stringify(fs));
  return { files: contents.size, bytes, dropped };
}

/** A raw blob is the file's bytes already: share the inode when both are on one file system. */
async function linkOrCopy(from: string, to: string): Promise<void> {
  await rm(to, { force: true });
  try {
    await link(from, to);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EXDEV") throw e;
    await copyFile(from, to);
  }
}
