// parseImageIndex: index.json, which may come over the network, checked entry by entry before ImageFs
// trusts any of it, so that a hostile index fails here, naming the entry, and not later in a guest request.

import { FsError } from "../../vfs/filesystem.ts";
import { S_IALLUGO, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK, XATTR_SIZE_MAX } from "../../vfs/linux.ts";
import { checkName, checkSymlinkTarget, checkXattrName } from "../posix.ts";
import { IMAGE_FORMAT, IMAGE_VERSION, ImageFormatError, type ImageEntry, type ImageIndex, type ImageTime } from "./format.ts";

const TYPES = new Set([S_IFSOCK, S_IFLNK, S_IFREG, S_IFBLK, S_IFDIR, S_IFCHR, S_IFIFO]);
const SHA256 = /^[0-9a-f]{64}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const MAX_ID = 0xfffffffe; // (uid_t)-1 means "unchanged" to chown

/** The index in `text`, every field checked; ImageFormatError otherwise. */
export function parseImageIndex(text: string): ImageIndex {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ImageFormatError(`index is not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!isRecord(raw)) throw new ImageFormatError("index is not an object");
  if (raw.format !== IMAGE_FORMAT) throw new ImageFormatError(`index format ${JSON.stringify(raw.format)}, not ${IMAGE_FORMAT}`);
  if (raw.version !== IMAGE_VERSION) throw new ImageFormatError(`index version ${JSON.stringify(raw.version)}, not ${IMAGE_VERSION}`);
  if (!Array.isArray(raw.entries) || raw.entries.length === 0) throw new ImageFormatError("index has no entries");
  const types = new Map<string, number>(); // path → file type, of the entries so far
  const entries = raw.entries.map((item: unknown, i: number) => {
    const entry = parseEntry(item, i, types);
    types.set(entry.path, entry.link === undefined ? entry.mode! & S_IFMT : types.get(entry.link)!);
    return entry;
  });
  return { format: IMAGE_FORMAT, version: IMAGE_VERSION, entries };
}

function parseEntry(item: unknown, i: number, seen: ReadonlyMap<string, number>): ImageEntry {
  const where = `entry ${i}`;
  const fail = (what: string): never => {
    throw new ImageFormatError(`${where}${isRecord(item) && typeof item.path === "string" ? ` (${JSON.stringify(item.path)})` : ""}: ${what}`);
  };
  if (!isRecord(item)) return fail("not an object");
  const path = item.path;
  if (typeof path !== "string") return fail("no path");
  if ((path === "") !== (i === 0)) return fail(i === 0 ? "the first entry is not the root" : "a second root");
  if (seen.has(path)) return fail("a second entry for this path");
  if (path !== "") {
    const parts = path.split("/");
    for (const part of parts) guard(() => checkName(part), fail);
    const parent = parts.slice(0, -1).join("/");
    const parentType = seen.get(parent);
    if (parentType === undefined) return fail("its directory comes later or not at all");
    if (parentType !== S_IFDIR) return fail("its parent is not a directory");
  }

  if (item.link !== undefined) {
    if (typeof item.link !== "string") return fail("link is not a string");
    const type = seen.get(item.link);
    if (type === undefined) return fail(`link to ${JSON.stringify(item.link)}, which is no earlier entry`);
    if (type === S_IFDIR) return fail("link to a directory");
    const extra = Object.keys(item).filter((k) => k !== "path" && k !== "link" && item[k] !== undefined);
    if (extra.length > 0) return fail(`a link with ${extra.join(", ")}`);
    return { path, link: item.link };
  }

  const mode = int(item.mode, 0, S_IFMT | S_IALLUGO, "mode", fail);
  const type = mode & S_IFMT;
  if (!TYPES.has(type)) return fail(`mode 0o${mode.toString(8)} has no file type`);
  if (i === 0 && type !== S_IFDIR) return fail("the root is not a directory");
  const entry: ImageEntry = {
    path,
    mode,
    uid: item.uid === undefined ? 0 : int(item.uid, 0, MAX_ID, "uid", fail),
    gid: item.gid === undefined ? 0 : int(item.gid, 0, MAX_ID, "gid", fail),
    atime: time(item.atime, "atime", fail),
    mtime: time(item.mtime, "mtime", fail),
    ctime: time(item.ctime, "ctime", fail),
  };
  const only = (field: string, allowed: boolean): void => {
    if (!allowed && item[field] !== undefined) fail(`${field} on a file of type 0o${type.toString(8)}`);
  };
  only("size", type === S_IFREG);
  only("sha256", type === S_IFREG);
  only("gz", type === S_IFREG);
  only("target", type === S_IFLNK);
  only("rdev", type === S_IFCHR || type === S_IFBLK);
  if (type === S_IFREG) {
    entry.size = int(item.size, 0, Number.MAX_SAFE_INTEGER, "size", fail);
    if (item.gz !== undefined && typeof item.gz !== "boolean") return fail("gz is not a boolean");
    if (entry.size > 0) {
      if (typeof item.sha256 !== "string" || !SHA256.test(item.sha256)) return fail("sha256 is not 64 lower-case hex digits");
      entry.sha256 = item.sha256;
      entry.gz = item.gz === true;
    } else if (item.sha256 !== undefined || item.gz === true) return fail("an empty file with a blob");
  } else if (type === S_IFLNK) {
    if (typeof item.target !== "string") return fail("a symlink without a target");
    const target = item.target;
    guard(() => checkSymlinkTarget(target), fail);
    entry.target = target;
  } else if (type === S_IFCHR || type === S_IFBLK) {
    entry.rdev = item.rdev === undefined ? 0 : int(item.rdev, 0, 0xffffffff, "rdev", fail);
  }
  if (item.xattrs !== undefined) entry.xattrs = xattrs(item.xattrs, fail);
  return entry;
}

function xattrs(v: unknown, fail: (what: string) => never): Record<string, string> {
  if (!isRecord(v)) return fail("xattrs is not an object");
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(v)) {
    guard(() => checkXattrName(name), (what) => fail(`xattr ${JSON.stringify(name)}: ${what}`));
    if (typeof value !== "string" || !BASE64.test(value)) return fail(`xattr ${JSON.stringify(name)} is not base64`);
    if ((value.length / 4) * 3 - (value.endsWith("==") ? 2 : value.endsWith("=") ? 1 : 0) > XATTR_SIZE_MAX) {
      return fail(`xattr ${JSON.stringify(name)} is over ${XATTR_SIZE_MAX} bytes`);
    }
    out[name] = value;
  }
  return out;
}

function time(v: unknown, what: string, fail: (what: string) => never): ImageTime {
  if (v === undefined) return [0, 0];
  if (!Array.isArray(v) || v.length !== 2) return fail(`${what} is not [sec, nsec]`);
  const [sec, nsec] = v as unknown[];
  if (typeof sec !== "number" || !Number.isSafeInteger(sec)) return fail(`${what} seconds are not a safe integer`);
  return [sec, int(nsec, 0, 999_999_999, `${what} nanoseconds`, fail)];
}

function int(v: unknown, min: number, max: number, what: string, fail: (what: string) => never): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) return fail(`${what} is not an integer in [${min}, ${max}]`);
  return v;
}

/** Runs a posix.ts check, turning its FsError into the entry's failure. */
function guard(check: () => void, fail: (what: string) => never): void {
  try {
    check();
  } catch (e) {
    if (e instanceof FsError) fail(e.message);
    throw e;
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}
