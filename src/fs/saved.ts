// Readers for the parts of a backend's saved state that backends share (names, file types, open modes):
// state.ts's readers, plus the checks the backends apply to the guest's arguments, so that a hostile state
// fails with StateError where a hostile request would fail with an errno.

import { FsError } from "../vfs/filesystem.ts";
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG, S_IFSOCK } from "../vfs/linux.ts";
import { bool, int, record, str, StateError, type Saved } from "../vfs/state.ts";
import { checkName, type OpenMode } from "./posix.ts";

const TYPES = new Set([S_IFSOCK, S_IFLNK, S_IFREG, S_IFBLK, S_IFDIR, S_IFCHR, S_IFIFO]);

/** A string that passes one of posix.ts's checks (`checkName`, `checkSymlinkTarget`, …). */
export function checked(v: Saved | undefined, what: string, check: (value: string) => void): string {
  const s = str(v, what);
  try {
    check(s);
  } catch (e) {
    if (e instanceof FsError) throw new StateError(`${what}: ${e.message}`);
    throw e;
  }
  return s;
}

/** A single name component as `checkName` accepts it: never "", ".", "..", nor anything with "/" or NUL. */
export function name(v: Saved | undefined, what: string): string {
  return checked(v, what, checkName);
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
