// Writes a directory tree as a lazy image (format.ts): one index, one blob per distinct file content.
// Node only. Deterministic: the same tree gives a byte-identical index.json (names in byte order, times
// clamped to SOURCE_DATE_EPOCH when asked, so the build's own atime/ctime do not leak in).
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import type { BigIntStats } from "node:fs";
import { access, lstat, mkdir, readdir, readFile, readlink, rename, rm, stat, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { gzip } from "node:zlib";
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from "../../vfs/linux.ts";
import { blobPath, IMAGE_FORMAT, IMAGE_VERSION, INDEX_NAME, type ImageEntry, type ImageIndex, type ImageTime } from "./format.ts";

const gzipAsync = promisify(gzip);

export interface WriteImageOptions {
  /** Times later than this (seconds since the epoch) are written as this: pass SOURCE_DATE_EPOCH. */
  sourceDateEpoch?: number;
  /** Where warnings go (no getfattr: no xattrs); console.warn by default. */
  warn?: (message: string) => void;
  /** Files read and compressed at once; zlib runs them on libuv's thread pool. */
  concurrency?: number;
}

export interface WriteImageResult {
  /** Index entries: every path, hard links included. */
  entries: number;
  /** Regular files (one per inode: hard links are not counted again). */
  files: number;
  /** Their bytes. */
  bytes: number;
  /** Distinct blobs the index names. */
  blobs: number;
  /** Those blobs' bytes as stored (gzipped or not). */
  blobBytes: number;
}

/** A blob is stored gzipped only when that saves more than a tenth of it. */
const GZ_WORTH = 0.9;

export async function writeImage(treeDir: string, outDir: string, options: WriteImageOptions = {}): Promise<WriteImageResult> {
  const warn = options.warn ?? ((m: string) => console.warn(m));
  const clamp = options.sourceDateEpoch;
  const time = (ns: bigint): ImageTime => {
    let sec = ns / 1_000_000_000n;
    let nsec = ns % 1_000_000_000n;
    if (nsec < 0n) (sec -= 1n), (nsec += 1_000_000_000n);
    if (clamp !== undefined && sec >= BigInt(clamp)) return [clamp, 0];
    return [Number(sec), Number(nsec)];
  };

  const xattrs = await readXattrs(treeDir, warn);
  const entries: ImageEntry[] = [];
  const files: { entry: ImageEntry; abs: string }[] = [];
  const inodes = new Map<string, string>(); // dev:ino → first path, for hard links

  const visit = async (abs: string, path: string, st: BigIntStats): Promise<void> => {
    const mode = Number(st.mode);
    const type = mode & S_IFMT;
    if (type !== S_IFDIR && st.nlink > 1n) {
      const key = `${st.dev}:${st.ino}`;
      const first = inodes.get(key);
      if (first !== undefined) {
        entries.push({ path, link: first });
        return;
      }
      inodes.set(key, path);
    }
    const entry: ImageEntry = {
      path,
      mode,
      uid: Number(st.uid),
      gid: Number(st.gid),
      atime: time(st.atimeNs),
      mtime: time(st.mtimeNs),
      ctime: time(st.ctimeNs),
    };
    if (type === S_IFREG) {
      entry.size = Number(st.size);
      if (entry.size > 0) files.push({ entry, abs });
    } else if (type === S_IFLNK) {
      entry.target = await readlink(abs);
    } else if (type === S_IFCHR || type === S_IFBLK) {
      entry.rdev = Number(st.rdev);
    }
    const x = xattrs.get(path);
    if (x) entry.xattrs = x;
    entries.push(entry);
    if (type !== S_IFDIR) return;
    const names = (await readdir(abs)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const name of names) {
      const childAbs = join(abs, name);
      await visit(childAbs, path === "" ? name : `${path}/${name}`, await lstat(childAbs, { bigint: true }));
    }
  };
  await visit(treeDir, "", await lstat(treeDir, { bigint: true }));

  // Blob contents, several files at a time; the index order was fixed by the walk above.
  await mkdir(join(outDir, "blobs"), { recursive: true });
  const blobs = new Map<string, Promise<{ gz: boolean; bytes: number }>>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < files.length) {
      const { entry, abs } = files[next++]!;
      const data = await readFile(abs);
      const sha256 = createHash("sha256").update(data).digest("hex");
      let blob = blobs.get(sha256);
      if (!blob) {
        blob = storeBlob(outDir, sha256, data);
        blobs.set(sha256, blob);
      }
      entry.sha256 = sha256;
      if ((await blob).gz) entry.gz = true;
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 4 }, worker));

  const index: ImageIndex = { format: IMAGE_FORMAT, version: IMAGE_VERSION, entries };
  await writeAtomic(join(outDir, INDEX_NAME), serializeIndex(index));

  let bytes = 0;
  for (const { entry } of files) bytes += entry.size ?? 0;
  let blobBytes = 0;
  for (const blob of blobs.values()) blobBytes += (await blob).bytes;
  const regular = entries.filter((e) => e.mode !== undefined && (e.mode & S_IFMT) === S_IFREG).length;
  return { entries: entries.length, files: regular, bytes, blobs: blobs.size, blobBytes };
}

/** One entry a line: the index stays valid JSON and diffs line by line between two builds. */
export function serializeIndex(index: ImageIndex): string {
  const lines = index.entries.map((e) => JSON.stringify(orderedEntry(e)));
  return `{"format":${JSON.stringify(index.format)},"version":${index.version},"entries":[\n${lines.join(",\n")}\n]}\n`;
}

/** Fields in the order format.ts lists them, whatever order they were set in. */
function orderedEntry(e: ImageEntry): ImageEntry {
  const { path, link, mode, uid, gid, atime, mtime, ctime, size, sha256, gz, target, rdev, xattrs } = e;
  return { path, link, mode, uid, gid, atime, mtime, ctime, size, sha256, gz, target, rdev, xattrs };
}

/** Writes the blob unless a previous run did (same content, same gzip decision); returns how it is stored. */
async function storeBlob(outDir: string, sha256: string, data: Buffer): Promise<{ gz: boolean; bytes: number }> {
  for (const gz of [true, false]) {
    const existing = join(outDir, blobPath(sha256, gz));
    if (await exists(existing)) return { gz, bytes: (await stat(existing)).size };
  }
  const packed = await gzipAsync(data, { level: 9 });
  const gz = packed.length < data.length * GZ_WORTH;
  const body = gz ? packed : data;
  const path = join(outDir, blobPath(sha256, gz));
  await mkdir(join(path, ".."), { recursive: true });
  await writeAtomic(path, body);
  return { gz, bytes: body.length };
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** Readers never see a half-written file: write beside it, then rename over. */
export async function writeAtomic(path: string, data: string | Buffer): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/**
 * Every path's extended attributes (security.capability, POSIX ACLs, user.*), read by one `getfattr -R`
 * (Debian's attr package; Node has no xattr API). Keys are paths relative to the tree, as in the index.
 */
async function readXattrs(treeDir: string, warn: (message: string) => void): Promise<Map<string, Record<string, string>>> {
  const result = new Map<string, Record<string, string>>();
  const root = resolve(treeDir);
  const output = await new Promise<Buffer | null>((resolve, reject) => {
    // -h: a symlink's own attributes; -P: do not walk into symlinked directories.
    const child = spawn("getfattr", ["-d", "-m", "-", "-e", "base64", "-h", "-P", "-R", "--absolute-names", root], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const chunks: Buffer[] = [];
    const errors: Buffer[] = [];
    child.stdout.on("data", (c: Buffer) => chunks.push(c));
    child.stderr.on("data", (c: Buffer) => errors.push(c));
    child.on("error", (e: NodeJS.ErrnoException) => (e.code === "ENOENT" ? resolve(null) : reject(e)));
    child.on("close", (code) => {
      // Exit status 1 with nothing on stderr: some files had no attributes to show.
      const stderr = Buffer.concat(errors).toString().trim();
      if (code !== 0 && stderr) reject(new Error(`getfattr: ${stderr}`));
      else resolve(Buffer.concat(chunks));
    });
  });
  if (output === null) {
    warn("writeImage: no getfattr (Debian package attr): the image has no extended attributes");
    return result;
  }
  let current: Record<string, string> | undefined;
  for (const line of output.toString("latin1").split("\n")) {
    if (line.startsWith("# file: ")) {
      const abs = unescapeGetfattr(line.slice(8));
      const rel = abs === root ? "" : abs.startsWith(`${root}/`) ? abs.slice(root.length + 1) : undefined;
      if (rel === undefined) throw new Error(`getfattr: unexpected path ${abs}`);
      current = {};
      result.set(rel, current);
    } else if (line !== "" && current) {
      const eq = line.indexOf("=");
      const name = eq < 0 ? line : line.slice(0, eq);
      const value = eq < 0 ? "" : line.slice(eq + 1);
      // -e base64 prefixes values with "0s"; an empty value is printed as the bare name.
      current[unescapeGetfattr(name)] = value.startsWith("0s") ? value.slice(2) : value;
    }
  }
  return result;
}

/** getfattr writes non-printable bytes, and backslash, as \ooo; the rest is the raw bytes (read as latin1). */
function unescapeGetfattr(s: string): string {
  const bytes = Buffer.from(s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))), "latin1");
  return bytes.toString("utf8");
}
