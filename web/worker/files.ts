// The file panel's operations on the share, from the host side, through the same FileSystem interface
// the FUSE server uses: lookup/create/write/release to upload, open/read to download, unlink/rmdir to
// delete. Every lookup here is paired with a forget, so the backend's reference counts stay the guest's.
import { EISDIR, ENOENT, FsError, O_TRUNC, O_WRONLY, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, type FileAttr, type FileSystem, type Ino } from "../../src/index.ts";
import type { TreeEntry } from "../protocol.ts";

const CHUNK = 1 << 20;
const ROOT_CRED = { uid: 0, gid: 0 };

/** Runs `fn` on the attributes of `name` in `parent`, holding its reference only meanwhile. */
async function withLookup<T>(fs: FileSystem, parent: Ino, name: string, fn: (attr: FileAttr) => Promise<T>): Promise<T> {
  const attr = await fs.lookup(parent, name);
  try {
    return await fn(attr);
  } finally {
    await fs.forget(attr.ino, 1);
  }
}

/** Runs `fn` on the inode at `path` ("" is the root). */
async function withPath<T>(fs: FileSystem, path: string, fn: (attr: FileAttr) => Promise<T>): Promise<T> {
  const parts = path.split("/").filter((p) => p !== "");
  const walk = async (ino: Ino, i: number): Promise<T> =>
    i === parts.length ? fn(await fs.getattr(ino)) : withLookup(fs, ino, parts[i]!, (a) => walk(a.ino, i + 1));
  return walk(fs.rootIno, 0);
}

function kindOf(mode: number): TreeEntry["kind"] {
  switch (mode & S_IFMT) {
    case S_IFDIR:
      return "dir";
    case S_IFREG:
      return "file";
    case S_IFLNK:
      return "symlink";
    default:
      return "special";
  }
}

/**
 * The tree, depth first, directories before files, at most `limit` entries and `maxDepth` levels; and the
 * path of each inode listed (the inspector names DAX mappings with it).
 */
export async function listTree(
  fs: FileSystem,
  limit = 400,
  maxDepth = 6,
): Promise<{ entries: TreeEntry[]; truncated: boolean; paths: Map<Ino, string> }> {
  const entries: TreeEntry[] = [];
  const paths = new Map<Ino, string>();
  let truncated = false;
  const visit = async (ino: Ino, prefix: string, depth: number): Promise<void> => {
    const dh = await fs.opendir(ino);
    let names: string[];
    try {
      names = (await fs.readdir(dh, 0)).map((e) => e.name).filter((n) => n !== "." && n !== "..");
    } finally {
      await fs.releasedir(dh);
    }
    const children: { name: string; attr: FileAttr; target?: string }[] = [];
    for (const name of names) {
      try {
        await withLookup(fs, ino, name, async (attr) => {
          children.push({ name, attr, target: (attr.mode & S_IFMT) === S_IFLNK ? await fs.readlink(attr.ino) : undefined });
        });
      } catch (e) {
        if (!(e instanceof FsError)) throw e; // removed since the listing: skip it
      }
    }
    children.sort((a, b) => Number(kindOf(b.attr.mode) === "dir") - Number(kindOf(a.attr.mode) === "dir") || a.name.localeCompare(b.name));
    for (const { name, attr, target } of children) {
      if (entries.length >= limit) {
        truncated = true;
        return;
      }
      const path = prefix + name;
      entries.push({ path, name, depth, kind: kindOf(attr.mode), mode: attr.mode, size: attr.size, ...(target === undefined ? {} : { target }) });
      paths.set(attr.ino, path);
      if (kindOf(attr.mode) === "dir") {
        if (depth + 1 < maxDepth) await withLookup(fs, ino, name, (a) => visit(a.ino, path + "/", depth + 1));
        else truncated = true;
      }
    }
  };
  await visit(fs.rootIno, "", 0);
  return { entries, truncated, paths };
}

/** Creates or replaces `name` in directory `dir` with `data`. */
export async function writeFile(fs: FileSystem, dir: string, name: string, data: Uint8Array): Promise<void> {
  await withPath(fs, dir, async (parent) => {
    let fh: number;
    let ino: Ino;
    try {
      const attr = await fs.lookup(parent.ino, name);
      ino = attr.ino;
      if ((attr.mode & S_IFMT) !== S_IFREG) {
        await fs.forget(ino, 1);
        throw new FsError(EISDIR, `${name} exists and is not a regular file`);
      }
      fh = await fs.open(ino, O_WRONLY | O_TRUNC);
    } catch (e) {
      if (!(e instanceof FsError && e.errno === ENOENT)) throw e;
      const made = await fs.create(parent.ino, name, 0o644, O_WRONLY, ROOT_CRED);
      ino = made.attr.ino;
      fh = made.fh;
    }
    try {
      for (let off = 0; off < data.length; off += CHUNK) await fs.write(fh, off, data.subarray(off, off + CHUNK));
      await fs.flush?.(fh);
    } finally {
      await fs.release(fh);
      await fs.forget(ino, 1);
    }
  });
}

/** The whole file at `path`. */
export async function readFile(fs: FileSystem, path: string): Promise<Uint8Array> {
  return withPath(fs, path, async (attr) => {
    const fh = await fs.open(attr.ino, 0);
    try {
      const parts: Uint8Array[] = [];
      let total = 0;
      for (;;) {
        const part = await fs.read(fh, total, CHUNK);
        if (part.length === 0) break;
        parts.push(part);
        total += part.length;
      }
      const out = new Uint8Array(total);
      let at = 0;
      for (const p of parts) {
        out.set(p, at);
        at += p.length;
      }
      return out;
    } finally {
      await fs.release(fh);
    }
  });
}

/** Removes the file, symlink or empty directory at `path`. */
export async function removePath(fs: FileSystem, path: string): Promise<void> {
  const at = path.lastIndexOf("/");
  const name = path.slice(at + 1);
  await withPath(fs, path.slice(0, Math.max(at, 0)), async (parent) => {
    const isDir = await withLookup(fs, parent.ino, name, async (a) => (a.mode & S_IFMT) === S_IFDIR);
    if (isDir) await fs.rmdir(parent.ino, name);
    else await fs.unlink(parent.ino, name);
  });
}
