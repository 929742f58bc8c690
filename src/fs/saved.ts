// Readers for the parts of a backend's saved state that every backend has (names, file types, open modes,
// directory listings): state.ts's readers, plus the checks the backends apply to the guest's arguments,
// so that a hostile state fails with StateError where a hostile request would fail with an errno.

import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG, S_IFSOCK } from "../vfs/linux.ts";
import type { Ino } from "../vfs/filesystem.ts";
import { bool, int, list, record, str, StateError, type Saved } from "../vfs/state.ts";
import { checkName, type OpenMode } from "./posix.ts";
import type { DirListing } from "./tables.ts";

const TYPES = new Set([S_IFSOCK, S_IFLNK, S_IFREG, S_IFBLK, S_IFDIR, S_IFCHR, S_IFIFO]);

/** A single name component as `checkName` accepts it: never "", ".", "..", nor anything with "/" or NUL. */
export function name(v: Saved | undefined, what: string): string {
  const s = str(v, what);
  try {
    checkName(s);
  } catch {
    throw new StateError(`${what}: not a valid name`);
  }
  return s;
}

/** File type bits (S_IF*), alone. */
export function fileType(v: Saved | undefined, what: string): number {
  const t = int(v, what);
  if (!TYPES.has(t)) throw new StateError(`${what}: not a file type`);
  return t;
}

export function saveOpenMode(how: OpenMode): Saved {
  return { read: how.read, write: how.write, append: how.append };
}

export function openModeOf(v: Saved | undefined, what: string): OpenMode {
  const r = record(v, what);
  return { read: bool(r.read, `${what}.read`), write: bool(r.write, `${what}.write`), append: bool(r.append, `${what}.append`) };
}

export function saveListing(listing: DirListing | undefined): Saved {
  return listing === undefined ? null : listing.map((e) => ({ name: e.name, ino: e.ino, type: e.type }));
}

/** A DirStream's listing: "." and ".." first, then names; inode numbers below `nextIno`. */
export function listingOf(v: Saved | undefined, what: string, nextIno: Ino): DirListing | undefined {
  if (v === null) return undefined;
  const items = list(v, what);
  if (items.length < 2) throw new StateError(`${what}: no "." and ".."`);
  return items.map((item, i) => {
    const where = `${what}[${i}]`;
    const e = record(item, where);
    const dots = [".", ".."][i];
    const entryName = dots === undefined ? name(e.name, `${where}.name`) : str(e.name, `${where}.name`);
    if (dots !== undefined && entryName !== dots) throw new StateError(`${where}: not "${dots}"`);
    return { name: entryName, ino: int(e.ino, `${where}.ino`, 1, nextIno - 1), type: fileType(e.type, `${where}.type`) };
  });
}
