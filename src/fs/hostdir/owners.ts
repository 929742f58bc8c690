// What the guest sees of a host object's owners, mode, device number and xattrs in the hostdir backend:
// the host's stat overlaid with the metadata store's record (metadata.ts).
//
// As root (the default when running as root), the guest's uid and gid are given to host objects with
// chown, and modes are applied with chmod. Otherwise owners are kept in the store and reported from there
// (host objects stay owned by this process), and host permission bits always keep the owner's read and
// write (and search, for directories) so that this process can still serve what the guest's own
// permission checks allow; the guest's mode is kept in the store when it differs. Set-id and sticky bits
// never reach the host (a guest's set-uid file must not become one there). The store is keyed by the host
// inode (st_ino, with st_dev only for objects on another filesystem than the root's, since a device number
// may change across reboots) and guarded by the birth time against reused numbers.

import type { BigIntStats } from "node:fs";
import { chmod, chown, type FileHandle } from "node:fs/promises";
import { S_IALLUGO, S_IFDIR, S_IFLNK, S_IFMT } from "../../vfs/linux.ts";
import type { XattrMap } from "../posix.ts";
import { fdPath, hostType, rethrowHost } from "./host.ts";
import type { InodeMeta, MetadataStore } from "./metadata.ts";

/** What the guest asks an object to look like. */
export interface Wanted {
  mode?: number;
  uid?: number;
  gid?: number;
  rdev?: number;
}

/** What names a host object for the store: its device, inode number and birth time. */
export type HostIdentity = Pick<BigIntStats, "dev" | "ino" | "birthtimeNs">;

/** The guest's view of host objects (see the top of this file), over the store that completes it. */
export class Owners {
  constructor(
    private readonly store: MetadataStore,
    private readonly rootDev: bigint,
    /** Whether guest owners go to the host with chown (see the top of this file). */
    private readonly chownHost: boolean,
  ) {}

  /** What a new entry in the directory with this stat inherits (see `newOwner`). */
  dirView(st: BigIntStats): { mode: number; gid: number } {
    const meta = this.get(st);
    return { mode: meta?.mode ?? Number(st.mode), gid: meta?.gid ?? Number(st.gid) };
  }

  /** The file type the guest sees. */
  typeOf(st: BigIntStats): number {
    return (this.get(st)?.mode ?? Number(st.mode)) & S_IFMT;
  }

  /** The store's record for the object, if it has one. */
  get(st: HostIdentity): InodeMeta | undefined {
    return this.store.get(this.key(st), generation(st));
  }

  /** The store's key for the object. */
  key(st: HostIdentity): string {
    return st.dev === this.rootDev ? String(st.ino) : `${st.dev}:${st.ino}`;
  }

  /**
   * Makes the object open as `fd` (O_PATH or not) look as `want` says to the guest: permission bits and
   * owners on the host where this process can set them (see the top of this file), the rest in the store.
   * Returns its new stat. A change only the store sees still moves the host's ctime, as any change must.
   */
  async settle(fd: FileHandle, st: BigIntStats, want: Wanted): Promise<BigIntStats> {
    const path = fdPath(fd);
    const old = this.get(st) ?? {};
    const next: InodeMeta = { ...old };
    let hostChanged = false;
    if (want.mode !== undefined) {
      let hostMode = Number(st.mode);
      const perm = this.hostPerm(want.mode);
      if ((hostMode & S_IALLUGO) !== perm && (await chmod(path, perm).then(() => true, unlessRefused))) {
        hostMode = (hostMode & S_IFMT) | perm;
        hostChanged = true;
      }
      next.mode = want.mode === hostMode ? undefined : want.mode;
    }
    if (want.uid !== undefined || want.gid !== undefined) {
      let uid = Number(st.uid);
      let gid = Number(st.gid);
      const [u, g] = [want.uid ?? uid, want.gid ?? gid];
      if (this.chownHost && (u !== uid || g !== gid) && (await chown(path, u, g).then(() => true, unlessRefused))) {
        [uid, gid] = [u, g];
        hostChanged = true;
      }
      if (want.uid !== undefined) next.uid = want.uid === uid ? undefined : want.uid;
      if (want.gid !== undefined) next.gid = want.gid === gid ? undefined : want.gid;
    }
    if (want.rdev !== undefined) next.rdev = want.rdev === 0 ? undefined : want.rdev;
    if (!sameMeta(old, next)) {
      await this.store.set(this.key(st), generation(st), next);
      if (!hostChanged) await touchCtime(fd, st);
    }
    return fd.stat({ bigint: true }).catch(rethrowHost);
  }

  /**
   * The permission bits a host object gets for the guest's `mode`: never set-id or sticky bits, and without
   * chown rights always the owner's read and write (and search, for a directory).
   */
  private hostPerm(mode: number): number {
    const perm = mode & 0o777;
    if (this.chownHost) return perm;
    return perm | ((mode & S_IFMT) === S_IFDIR ? 0o700 : 0o600);
  }

  /** Changes the object's xattrs in the store, moving its ctime. */
  async changeXattrs(fd: FileHandle, st: BigIntStats, change: (xattrs: XattrMap) => void): Promise<void> {
    const meta = this.get(st) ?? {};
    const xattrs = new Map(meta.xattrs);
    change(xattrs);
    await this.store.set(this.key(st), generation(st), { ...meta, xattrs });
    await touchCtime(fd, st);
  }
}

/** Moves the object's ctime to now without changing it: a chmod to its own mode (chown would drop set-id bits). */
async function touchCtime(fd: FileHandle, st: BigIntStats): Promise<void> {
  if (hostType(st) === S_IFLNK) return; // symlinks take no chmod
  await chmod(fdPath(fd), Number(st.mode) & S_IALLUGO).catch(unlessRefused);
}

/** Tells a reused host inode number apart: its birth time, where the host filesystem records one. */
function generation(st: HostIdentity): string | undefined {
  return st.birthtimeNs > 0n ? String(st.birthtimeNs) : undefined;
}

function sameMeta(a: InodeMeta, b: InodeMeta): boolean {
  return a.mode === b.mode && a.uid === b.uid && a.gid === b.gid && a.rdev === b.rdev && a.xattrs === b.xattrs;
}

/** For chmod and chown the host may refuse (EPERM; EINVAL for ids outside a user namespace): false, the store keeps the value. */
function unlessRefused(e: unknown): false {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === "EPERM" || code === "EINVAL") return false;
  return rethrowHost(e);
}
