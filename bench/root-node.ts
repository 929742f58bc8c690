// The Debian root's files where `npm run guest:rootfs` keeps them, for bench/root.ts in Node.
import { existsSync } from "node:fs";
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { bootGuest, debianRootDir, fileBlobSource, INDEX_NAME } from "../src/node.ts";
import type { RootSource } from "./root.ts";

/** The tree as files, or why it is missing. */
export function debianRootSource(): RootSource | string {
  const dir = debianRootDir();
  const imageDir = join(dir, "image");
  const v86Dir = join(dir, "v86");
  if (!existsSync(join(imageDir, INDEX_NAME)) || !existsSync(join(v86Dir, "fs.json"))) return `no Debian root at ${dir} (npm run guest:rootfs builds it)`;
  return {
    index: () => readFile(join(imageDir, INDEX_NAME), "utf8"),
    blobs: fileBlobSource(imageDir),
    ninep: { basefs: join(v86Dir, "fs.json"), baseurl: `${v86Dir}/` },
    boot: (opts) => bootGuest(opts),
  };
}

/** Bytes the lazy image takes where it is stored: its index and every blob. */
export async function storedImageBytes(): Promise<number> {
  const dir = join(debianRootDir(), "image");
  const files = (await readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile());
  const sizes = await Promise.all(files.map(async (e) => (await stat(join(e.parentPath, e.name))).size));
  return sizes.reduce((a, b) => a + b, 0);
}
