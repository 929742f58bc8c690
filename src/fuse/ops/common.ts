// What every opcode handler shares: argument decoding with the checks a hostile guest makes necessary,
// and the encoding of attributes and entries.
import { S_IFMT, S_IFREG, S_ISGID, S_ISUID } from "../../vfs/linux.ts";
import { FsError, type Cred, type FileAttr, type Handle, type Ino } from "../../vfs/filesystem.ts";
import { FOPEN_NOFLUSH, FUSE_ATTR_DAX, decodeName, encode, fuse_attr, fuse_attr_out, fuse_entry_out, fuse_open_out } from "../abi.ts";
import { ENODATA, EOPNOTSUPP, Errno } from "../../vfs/errno.ts";
import { wait, type Awaitable, type Op } from "../../vfs/awaitable.ts";
import type { FuseRequest, Reply, Session } from "../session.ts";

export interface Handler {
  /** Bytes of arguments the opcode needs at least; fewer is EINVAL. */
  minArgs: number;
  /** Bytes its successful reply takes (after fuse_out_header): with less room it does not run (EINVAL). */
  replySize: number;
  /** A generator (src/vfs/awaitable.ts): it answers at once over a backend that does. */
  run(s: Session, r: FuseRequest): Op<Reply>;
}

/** An errno for the guest, thrown from deep in a handler. */
export class RequestError extends Error {
  constructor(readonly errno: number) {
    super(`errno ${errno}`);
  }
}

/**
 * A handler's entry. `replySize` is set for the opcodes whose reply hands the guest a node reference or a
 * handle, which must not be taken for a reply that cannot arrive.
 */
export function op(minArgs: number, run: Handler["run"], replySize = 0): Handler {
  return { minArgs, replySize, run };
}

export const u64 = (r: FuseRequest, at: number): bigint => r.argsView.getBigUint64(at, true);
export const u32 = (r: FuseRequest, at: number): number => r.argsView.getUint32(at, true);
export const cred = (r: FuseRequest): Cred => ({ uid: r.uid, gid: r.gid });

/** The inode behind a node id from the guest; ENOENT for a node id this session never handed out. */
export function inoOf(s: Session, nodeid: bigint): Ino {
  const ino = s.nodes.ino(nodeid);
  if (ino === undefined) throw new RequestError(Errno.ENOENT);
  return ino;
}

/** The inode of the request's own node id. */
export const nodeIno = (s: Session, r: FuseRequest): Ino => inoOf(s, r.nodeid);

/** A handle the guest passed back; EBADF unless this session opened it and has not released it. */
export function handleOf(set: ReadonlySet<Handle>, fh: bigint): Handle {
  const n = fh <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(fh) : -1;
  if (!set.has(n)) throw new RequestError(Errno.EBADF);
  return n;
}

/** With zero-message open, fh 0 stands for the node's own handle (src/fuse/inode-files.ts). */
export const isNodeFh = (s: Session, fh: bigint): boolean => fh === 0n && s.zeroOpen;

/**
 * The backend handle behind a file handle from the guest: for the node's own (isNodeFh), opened for
 * writing when `write`; `nodeid` is the node it belongs to.
 */
export function fileOf(s: Session, fh: bigint, nodeid: bigint, write = false): Awaitable<Handle> {
  if (isNodeFh(s, fh)) return s.inodeFiles.get(inoOf(s, nodeid), write);
  return handleOf(s.openFiles, fh);
}

/** A guest file offset or length as a safe number, or EINVAL (files end far below 2^53). */
export function sizeArg(v: bigint): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new RequestError(Errno.EINVAL);
  return Number(v);
}

/** The NUL-terminated name at `at`; returns it and where the next argument starts. */
export function nameAt(r: FuseRequest, at: number, max?: number): { name: string; next: number } {
  const n = decodeName(r.args, at, r.args.length, max);
  if (typeof n === "number") throw new RequestError(-n);
  return n;
}

export const nameArg = (r: FuseRequest, at: number): string => nameAt(r, at).name;

export function struct(size: number): { bytes: Uint8Array; view: DataView } {
  const bytes = new Uint8Array(size);
  return { bytes, view: new DataView(bytes.buffer) };
}

export function splitTime(seconds: number): [bigint, number] {
  const whole = Math.floor(seconds);
  return [BigInt(whole), Math.round((seconds - whole) * 1e9)];
}

/**
 * fuse_attr.flags: with dax=inode, FUSE_ATTR_DAX puts a regular file of at least daxInodeMinSize bytes in
 * the DAX window, programs included (the guest runs them from it). The backends keep no per-file DAX flag
 * to choose by. Linux decides when it instantiates an inode; a cached inode whose flag changes is dropped
 * once unused (fuse_dax_dontcache), so a file that grew past the line maps on its next use.
 */
function attrFlags(s: Session, a: FileAttr): number {
  return s.inodeDax && (a.mode & S_IFMT) === S_IFREG && a.size >= s.daxInodeMinSize ? FUSE_ATTR_DAX : 0;
}

/**
 * FOPEN_NOFLUSH for a file the guest has no inode of yet (it holds no node id for it) and will read and
 * write through FUSE under dax=inode: its close(2) has nothing to make durable when FLUSH is there only
 * for the window's stores (and locks stay the guest's). The guest keeps an inode out of the window for as
 * long as it is open, whatever its size becomes. Call it before the reply makes the node id known.
 */
export function outsideWindowNoFlush(s: Session, a: FileAttr): number {
  const fresh = s.nodes.nodeid(a.ino) === undefined;
  return fresh && s.dax?.flushesOnlyWindow && s.inodeDax && !s.deviceLocks && attrFlags(s, a) === 0 ? FOPEN_NOFLUSH : 0;
}

export function putAttr(s: Session, v: DataView, at: number, a: FileAttr): void {
  encode(fuse_attr, v, at, {
    ino: a.ino,
    size: a.size,
    blocks: a.blocks,
    atime: a.atime.sec,
    mtime: a.mtime.sec,
    ctime: a.ctime.sec,
    atimensec: a.atime.nsec,
    mtimensec: a.mtime.nsec,
    ctimensec: a.ctime.nsec,
    mode: a.mode,
    nlink: a.nlink,
    uid: a.uid,
    gid: a.gid,
    rdev: a.rdev,
    blksize: a.blksize,
    flags: attrFlags(s, a),
  });
}

/** fuse_entry_out at `at` (nodeid 0: a name the kernel does not keep, such as "." in READDIRPLUS). */
export function putEntry(s: Session, v: DataView, at: number, a: FileAttr, nodeid: number): void {
  const [sec, nsec] = splitTime(s.cache.timeout);
  const e = fuse_entry_out;
  v.setBigUint64(at + e.nodeid, BigInt(nodeid), true);
  v.setBigUint64(at + e.generation, 0n, true); // node ids are never reused within a server's life
  v.setBigUint64(at + e.entry_valid, sec, true);
  v.setBigUint64(at + e.attr_valid, sec, true);
  v.setUint32(at + e.entry_valid_nsec, nsec, true);
  v.setUint32(at + e.attr_valid_nsec, nsec, true);
  putAttr(s, v, at + e.attr, a);
}

const S_IXGRP = 0o010;

/**
 * FUSE_HANDLE_KILLPRIV_V2: the mode Linux leaves when a file is written, truncated or chowned by a caller
 * without CAP_FSETID. S_ISUID goes; S_ISGID goes when the group may execute (without that it marks
 * mandatory locking, which stays).
 */
export function killSuidSgid(mode: number): number {
  const m = mode & ~S_ISUID;
  return m & S_IXGRP ? m & ~S_ISGID : m;
}

/** Drops the set-id bits of `ino` as killSuidSgid says; changes nothing (not even ctime) when there are none. */
export function* killPriv(s: Session, ino: Ino): Op<void> {
  const { mode } = yield* wait(s.fs.getattr(ino));
  if (killSuidSgid(mode) !== mode) yield* wait(s.fs.setattr(ino, { mode: killSuidSgid(mode) }));
}

/** The file capabilities (cap_inode_killpriv): Linux drops them on every write, truncate and chown. */
const XATTR_NAME_CAPS = "security.capability";

/**
 * Drops `ino`'s file capabilities for a write, truncate, chown, fallocate or copy into it, as Linux does
 * for a local file, whoever the caller: with FUSE_HANDLE_KILLPRIV_V2 the guest asks nothing first (no
 * GETXATTR per write or chown; guest/patches/0004). True when there were some (its ctime moved).
 */
export function* dropCapabilities(s: Session, ino: Ino): Op<boolean> {
  try {
    yield* wait(s.fs.removexattr(ino, XATTR_NAME_CAPS));
    return true;
  } catch (e) {
    if (e instanceof FsError && (e.errno === ENODATA || e.errno === EOPNOTSUPP)) return false;
    throw e;
  }
}

/**
 * Runs `use` on what `name` in `parent` names, if anything, holding the backend's reference meanwhile
 * (not the guest's: no node id is counted). A name that cannot be looked up is left to the operation
 * that follows, which reports what is wrong with it.
 */
export function* withExisting(s: Session, parent: Ino, name: string, use: (a: FileAttr) => Op<void>): Op<void> {
  let attr: FileAttr;
  try {
    attr = yield* wait(s.fs.lookup(parent, name));
  } catch {
    return;
  }
  try {
    yield* use(attr);
  } finally {
    yield* wait(s.fs.forget(attr.ino, 1));
  }
}

/** The entry reply for a name the guest now holds: counts one lookup of the node. */
export function entryReply(s: Session, a: FileAttr): Uint8Array {
  const out = struct(fuse_entry_out.SIZE);
  putEntry(s, out.view, 0, a, s.nodes.ref(a.ino));
  return out.bytes;
}

/** The entry reply for a name that is not there: node id 0, kept by the guest for the entry timeout. */
export function negativeEntryReply(s: Session): Uint8Array {
  const out = struct(fuse_entry_out.SIZE);
  const [sec, nsec] = splitTime(s.cache.timeout);
  out.view.setBigUint64(fuse_entry_out.entry_valid, sec, true);
  out.view.setUint32(fuse_entry_out.entry_valid_nsec, nsec, true);
  return out.bytes;
}

export function attrReply(s: Session, a: FileAttr): Uint8Array {
  const out = struct(fuse_attr_out.SIZE);
  const [sec, nsec] = splitTime(s.cache.timeout);
  out.view.setBigUint64(fuse_attr_out.attr_valid, sec, true);
  out.view.setUint32(fuse_attr_out.attr_valid_nsec, nsec, true);
  putAttr(s, out.view, fuse_attr_out.attr, a);
  return out.bytes;
}

export function openReply(fh: Handle, openFlags: number): Uint8Array {
  const out = struct(fuse_open_out.SIZE);
  encode(fuse_open_out, out.view, 0, { fh, open_flags: openFlags });
  return out.bytes;
}
