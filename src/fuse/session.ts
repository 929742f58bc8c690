// The state one FUSE session shares with every opcode handler (src/fuse/ops/), from INIT to DESTROY or
// device reset, and the request and reply types that pass between the server and the handlers.
import type { FileSystem } from "../vfs/filesystem.ts";
import type { DaxCoherentFs } from "./dax-coherent-fs.ts";
import { FOPEN_CACHE_DIR, FOPEN_DIRECT_IO, FOPEN_KEEP_CACHE } from "./abi.ts";
import type { InodeFiles } from "./inode-files.ts";
import type { LockTable } from "./locks.ts";
import type { NodeTable } from "./nodes.ts";

/** Cache modes as virtiofsd names them. */
export type CacheMode = "never" | "metadata" | "auto" | "always";
export const CACHE_MODES: readonly CacheMode[] = ["never", "metadata", "auto", "always"];

export interface CachePolicy {
  mode: CacheMode;
  /** Seconds the guest may keep names (entry_valid) and attributes (attr_valid). */
  timeout: number;
  /** fuse_open_out.open_flags for files and for directories. */
  openFlags: number;
  dirOpenFlags: number;
}

/** virtiofsd's policies: never caches nothing; metadata caches names and attributes but not data; auto
 * keeps them a second and data until the file changes; always keeps everything. */
export function cachePolicy(mode: CacheMode): CachePolicy {
  switch (mode) {
    case "never":
      return { mode, timeout: 0, openFlags: FOPEN_DIRECT_IO, dirOpenFlags: 0 };
    case "metadata":
      return { mode, timeout: 86400, openFlags: FOPEN_DIRECT_IO, dirOpenFlags: 0 };
    case "auto":
      return { mode, timeout: 1, openFlags: 0, dirOpenFlags: 0 };
    case "always":
      return { mode, timeout: 86400, openFlags: FOPEN_KEEP_CACHE, dirOpenFlags: FOPEN_KEEP_CACHE | FOPEN_CACHE_DIR };
  }
}

/**
 * Who keeps file locks: the guest kernel ("guest": fast, right while the guest is the tree's only client),
 * the device ("device": locks hold across every guest on the backend), or "auto": the device when more
 * than one server shares the backend as the guest starts its session (INIT).
 */
export type LockMode = "guest" | "device" | "auto";
export const LOCK_MODES: readonly LockMode[] = ["guest", "device", "auto"];

/** A decoded request: the header fields handlers use, and the opcode's argument bytes. */
export interface FuseRequest {
  opcode: number;
  unique: bigint;
  nodeid: bigint;
  uid: number;
  gid: number;
  pid: number;
  /** The arguments after fuse_in_header. */
  args: Uint8Array;
  argsView: DataView;
  /** Bytes the reply may take after fuse_out_header (negative: not even the header fits). */
  room: number;
}

/** What a handler answers: an errno (0 = success, no payload), payload bytes, or no reply at all. */
export type Reply = number | Uint8Array | Uint8Array[] | typeof NO_REPLY;
export const NO_REPLY = Symbol("no reply");

/** The state of one FUSE session (from INIT to DESTROY or device reset), shared by the handlers. */
export interface Session {
  readonly fs: FileSystem;
  readonly cache: CachePolicy;
  readonly writeback: boolean;
  readonly maxWrite: number;
  readonly nodes: NodeTable;
  /** Backend handles the guest holds, to give back when the session ends. */
  readonly openFiles: Set<number>;
  readonly openDirs: Set<number>;
  /** Negotiated minor version; 0 before INIT. */
  minor: number;
  /** With a DAX window: the backend kept coherent with it (`fs` is this too), and what it maps. */
  readonly dax?: DaxCoherentFs;
  /** dax=inode was agreed (FUSE_HAS_INODE_DAX): attributes say which files use the window. */
  inodeDax: boolean;
  /** With dax=inode, the regular files that use the window: those of at least this many bytes. */
  readonly daxInodeMinSize: number;
  /** Zero-message open is on: no OPEN or RELEASE, fh 0 is the node's handle in `inodeFiles`. */
  zeroOpen: boolean;
  readonly inodeFiles: InodeFiles;
  /** The backend's lock table, shared with every other session over it. */
  readonly locks: LockTable;
  readonly lockMode: LockMode;
  /** Agreed at INIT: the device serves GETLK/SETLK/SETLKW (FUSE_POSIX_LOCKS, FUSE_FLOCK_LOCKS). */
  deviceLocks: boolean;
}

/** Gives every handle and inode reference of a session back to the backend and forgets the session. */
export async function endSession(s: Session): Promise<void> {
  const files = [...s.openFiles];
  const dirs = [...s.openDirs];
  const held = [...s.nodes.held()];
  s.openFiles.clear();
  s.openDirs.clear();
  s.nodes.clear();
  s.minor = 0;
  s.zeroOpen = false;
  s.deviceLocks = false;
  s.locks.endSession(s); // waiters are answered; their replies go nowhere after a reset
  s.inodeDax = false;
  // Stores in the DAX window reach the backend while the inodes they belong to are still referenced.
  await s.dax?.mappings.end();
  // Best effort: a backend that fails to release has nothing more to lose.
  await Promise.allSettled([
    s.inodeFiles.clear(),
    ...files.map((fh) => s.fs.release(fh)),
    ...dirs.map((dh) => s.fs.releasedir(dh)),
    ...held.map((n) => s.fs.forget(n.ino, n.nlookup)),
  ]);
}
