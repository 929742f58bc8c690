// Host access for the hostdir backend, confined to the shared directory.
//
// Node has no openat(), so every path is resolved as a chain of directory file descriptors. The root is
// held open; each step opens "/proc/self/fd/<dir fd>/<name>" with O_DIRECTORY|O_NOFOLLOW, which Linux
// resolves relative to exactly the directory that fd holds, whatever was renamed meanwhile, and fails on a
// symlink instead of following it. The last component is then reached the same way, by calls that never
// follow it (lstat, readlink, open with O_NOFOLLOW, mkdir, symlink, link, unlink, rmdir, rename), and the
// backend checks that the object found is still the one it looked up. Calls that would follow a last
// component (chmod, chown, utimes, truncate) go through an O_PATH descriptor of the checked object instead:
// "/proc/self/fd/<fd>" names exactly that object, a symlink included. A host symlink is only ever read with
// readlink; the guest sees it as a symlink and resolves it in its own namespace. Names are single
// components (`checkName`): never "..", never "/". This needs Linux's /proc. The price is one open per path
// component per call; caching directory descriptors is the next step if measurements ask for it.

import { constants, type BigIntStats } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { EOPNOTSUPP, ESTALE, errnoFromCode } from "../../vfs/errno.ts";
import { S_IFMT } from "../../vfs/linux.ts";
import { FsError } from "../../vfs/filesystem.ts";

export const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
/**
 * Linux's O_PATH (its value on x86 and Arm; Node's fs.constants leave it out): a descriptor that names an
 * object without opening it, whatever its type and permissions.
 */
const O_PATH = 0o10000000;
export const PATH_FLAGS = O_PATH | constants.O_NOFOLLOW;
// O_NONBLOCK: a FIFO swapped in for a regular file must not hang the open (the identity check then rejects it).
export const FILE_FLAGS = constants.O_NOFOLLOW | constants.O_NONBLOCK;

/**
 * Walks `path` from `root` one directory fd at a time (see the top of this file) and runs `use` on the last
 * one, closing the walk's descriptors afterwards. A component that is missing, not a directory or a symlink
 * means the path no longer leads where it did: ESTALE.
 */
export async function walk<R>(root: FileHandle, path: readonly string[], use: (dir: FileHandle) => Promise<R>): Promise<R> {
  let dir: FileHandle | undefined; // undefined while still at the root, which stays open
  try {
    for (const name of path) {
      const next = await open(at((dir ?? root).fd, name), DIR_FLAGS).catch(rethrowGone);
      await dir?.close();
      dir = next;
    }
    return await use(dir ?? root);
  } finally {
    await dir?.close();
  }
}

/** `name` inside the directory open as `fd`, as a path Linux resolves through that very directory. */
export function at(fd: number, name: string): string {
  return `/proc/self/fd/${fd}/${name}`;
}

/** The object a descriptor holds, as a path (following it leads to exactly that object, named or not). */
export function fdPath(file: FileHandle): string {
  return `/proc/self/fd/${file.fd}`;
}

export async function writeAll(file: FileHandle, data: Uint8Array, position: number | null): Promise<void> {
  for (let done = 0; done < data.length; ) {
    const { bytesWritten } = await file.write(data, done, data.length - done, position === null ? null : position + done).catch(rethrowHost);
    done += bytesWritten;
  }
}

export function hostType(st: BigIntStats): number {
  return Number(st.mode) & S_IFMT;
}

/** Node's names for errnos errno.ts spells otherwise. */
const CODE_ALIASES: Record<string, number> = { ENOTSUP: EOPNOTSUPP };

/** A host error with a Linux errno becomes an FsError; anything else stays a backend failure (EIO). */
export function rethrowHost(e: unknown): never {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  const errno = typeof code === "string" ? (errnoFromCode(code) ?? CODE_ALIASES[code]) : undefined;
  if (errno === undefined) throw e;
  throw new FsError(errno, (e as Error).message);
}

/** For a recorded path: if it no longer resolves, the inode behind it is stale, not absent. */
export function rethrowGone(e: unknown): never {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (code === "ENOENT" || code === "ENOTDIR" || code === "ELOOP") throw new FsError(ESTALE, (e as Error).message);
  return rethrowHost(e);
}

export function absentIfENOENT(e: unknown): undefined {
  if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
  return rethrowHost(e);
}
