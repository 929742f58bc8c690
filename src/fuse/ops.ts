// One handler per FUSE opcode. Each gets the session and a request whose argument bytes are at least
// `minArgs` long, and answers a Reply (see server.ts). Node ids and handles from the guest are checked
// against what this session handed out before they reach the backend.
import type { DirEntry, FileAttr, Ino } from "../fs/filesystem.ts";
import {
  Errno,
  FUSE_ASYNC_READ,
  FUSE_BIG_WRITES,
  FUSE_CACHE_SYMLINKS,
  FUSE_DO_READDIRPLUS,
  FUSE_INIT_EXT,
  FUSE_KERNEL_MINOR_VERSION,
  FUSE_KERNEL_VERSION,
  FUSE_MAX_PAGES,
  FUSE_PARALLEL_DIROPS,
  FUSE_READDIRPLUS_AUTO,
  FUSE_COMPAT_22_INIT_OUT_SIZE,
  FUSE_COMPAT_INIT_OUT_SIZE,
  FuseOpcode,
  decodeName,
  direntSize,
  direntplusSize,
  encode,
  fuse_access_in,
  fuse_attr,
  fuse_attr_out,
  fuse_batch_forget_in,
  fuse_dirent,
  fuse_direntplus,
  fuse_entry_out,
  fuse_forget_in,
  fuse_forget_one,
  fuse_getattr_in,
  fuse_init_in,
  fuse_init_out,
  fuse_kstatfs,
  fuse_open_in,
  fuse_open_out,
  fuse_read_in,
  fuse_release_in,
  fuse_flush_in,
  fuse_interrupt_in,
  initFlags,
  splitInitFlags,
} from "./abi.ts";
import { NO_REPLY, endSession, type FuseRequest, type Reply, type Session } from "./server.ts";

export interface Handler {
  /** Bytes of arguments the opcode needs at least; fewer is EINVAL. */
  minArgs: number;
  run(s: Session, r: FuseRequest): Promise<Reply>;
}

const PAGE_SIZE = 4096;
/** The INIT flags this server can honour for a read-only tree. */
const WANT_FLAGS =
  FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO | FUSE_PARALLEL_DIROPS | FUSE_MAX_PAGES | FUSE_CACHE_SYMLINKS | FUSE_INIT_EXT;
const MAX_BACKGROUND = 64;
const encoder = new TextEncoder();

// Helpers -------------------------------------------------------------------------------------------

/** The inode behind the request's node id; ENOENT for a node id this session never handed out. */
function nodeIno(s: Session, r: FuseRequest): Ino {
  const ino = s.nodes.ino(r.nodeid);
  if (ino === undefined) throw new RequestError(Errno.ENOENT);
  return ino;
}

/** A handle the guest passed back; EBADF unless this session opened it and has not released it. */
function handle(set: Set<number>, fh: bigint): number {
  const n = fh <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(fh) : -1;
  if (!set.has(n)) throw new RequestError(Errno.EBADF);
  return n;
}

/** An errno for the guest, thrown from deep in a handler. */
class RequestError extends Error {
  constructor(readonly errno: number) {
    super(`errno ${errno}`);
  }
}

/** The NUL-terminated name argument at `at`, as a single path component. */
function nameArg(r: FuseRequest, at: number): string {
  const n = decodeName(r.args, at, r.args.length);
  if (typeof n === "number") throw new RequestError(-n);
  return n.name;
}

const splitTime = (seconds: number): [bigint, number] => {
  const whole = Math.floor(seconds);
  return [BigInt(whole), Math.round((seconds - whole) * 1e9)];
};

function putAttr(v: DataView, at: number, a: FileAttr): void {
  encode(fuse_attr, v, at, {
    ino: a.ino,
    size: a.size,
    blocks: a.blocks,
    atime: BigInt.asUintN(64, BigInt(a.atime.sec)),
    mtime: BigInt.asUintN(64, BigInt(a.mtime.sec)),
    ctime: BigInt.asUintN(64, BigInt(a.ctime.sec)),
    atimensec: a.atime.nsec,
    mtimensec: a.mtime.nsec,
    ctimensec: a.ctime.nsec,
    mode: a.mode,
    nlink: a.nlink,
    uid: a.uid,
    gid: a.gid,
    rdev: a.rdev,
    blksize: a.blksize,
    flags: 0,
  });
}

/** fuse_entry_out for an inode the guest now holds one more lookup of (nodeid 0: not counted). */
function putEntry(s: Session, v: DataView, at: number, a: FileAttr, nodeid: number): void {
  const [entrySec, entryNsec] = splitTime(s.cache.entryTimeout);
  const [attrSec, attrNsec] = splitTime(s.cache.attrTimeout);
  encode(fuse_entry_out, v, at, {
    nodeid,
    generation: 0, // node ids are never reused within a server's life
    entry_valid: entrySec,
    attr_valid: attrSec,
    entry_valid_nsec: entryNsec,
    attr_valid_nsec: attrNsec,
    attr: { ino: 0, size: 0, blocks: 0, atime: 0, mtime: 0, ctime: 0, atimensec: 0, mtimensec: 0, ctimensec: 0, mode: 0, nlink: 0, uid: 0, gid: 0, rdev: 0, blksize: 0, flags: 0 },
  });
  putAttr(v, at + fuse_entry_out.attr, a);
}

function struct(size: number): { bytes: Uint8Array; view: DataView } {
  const bytes = new Uint8Array(size);
  return { bytes, view: new DataView(bytes.buffer) };
}

function entryReply(s: Session, a: FileAttr): Uint8Array {
  const out = struct(fuse_entry_out.SIZE);
  putEntry(s, out.view, 0, a, s.nodes.ref(a.ino));
  return out.bytes;
}

function attrReply(s: Session, a: FileAttr): Uint8Array {
  const out = struct(fuse_attr_out.SIZE);
  const [sec, nsec] = splitTime(s.cache.attrTimeout);
  out.view.setBigUint64(fuse_attr_out.attr_valid, sec, true);
  out.view.setUint32(fuse_attr_out.attr_valid_nsec, nsec, true);
  putAttr(out.view, fuse_attr_out.attr, a);
  return out.bytes;
}

const u64 = (r: FuseRequest, at: number): bigint => r.argsView.getBigUint64(at, true);
const u32 = (r: FuseRequest, at: number): number => r.argsView.getUint32(at, true);

/** A guest file offset as a safe number, or EINVAL. */
function offsetArg(v: bigint): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new RequestError(Errno.EINVAL);
  return Number(v);
}

function op(minArgs: number, run: Handler["run"]): Handler {
  return {
    minArgs,
    run: async (s, r) => {
      try {
        return await run(s, r);
      } catch (e) {
        if (e instanceof RequestError) return e.errno;
        throw e;
      }
    },
  };
}

// Session -------------------------------------------------------------------------------------------

async function init(s: Session, r: FuseRequest): Promise<Reply> {
  const major = u32(r, fuse_init_in.major);
  const minor = u32(r, fuse_init_in.minor);
  const out = struct(fuse_init_out.SIZE);
  if (major < FUSE_KERNEL_VERSION) return Errno.EPROTO;
  if (major > FUSE_KERNEL_VERSION) {
    // Tell a newer kernel our major version; it retries INIT with it.
    out.view.setUint32(fuse_init_out.major, FUSE_KERNEL_VERSION, true);
    out.view.setUint32(fuse_init_out.minor, FUSE_KERNEL_MINOR_VERSION, true);
    return out.bytes.subarray(0, FUSE_COMPAT_INIT_OUT_SIZE);
  }
  if (s.minor !== 0) await endSession(s); // a second INIT starts a new session
  // fuse_init_in grew flags2 in 7.36; an older kernel sends 16 bytes.
  const theirs = initFlags(u32(r, fuse_init_in.flags), r.args.length >= fuse_init_in.SIZE ? u32(r, fuse_init_in.flags2) : 0);
  const { flags, flags2 } = splitInitFlags(theirs & WANT_FLAGS);
  s.minor = Math.min(minor, FUSE_KERNEL_MINOR_VERSION);
  encode(fuse_init_out, out.view, 0, {
    major: FUSE_KERNEL_VERSION,
    minor: s.minor,
    max_readahead: u32(r, fuse_init_in.max_readahead),
    flags,
    max_background: MAX_BACKGROUND,
    congestion_threshold: (MAX_BACKGROUND * 3) / 4,
    max_write: s.maxWrite,
    time_gran: 1,
    max_pages: s.maxWrite / PAGE_SIZE,
    map_alignment: 0,
    flags2,
  });
  // Older minors expect a shorter fuse_init_out.
  if (s.minor < 5) return out.bytes.subarray(0, FUSE_COMPAT_INIT_OUT_SIZE);
  if (s.minor < 23) return out.bytes.subarray(0, FUSE_COMPAT_22_INIT_OUT_SIZE);
  return out.bytes;
}

async function destroy(s: Session): Promise<Reply> {
  await endSession(s);
  return 0;
}

// Inodes --------------------------------------------------------------------------------------------

async function lookup(s: Session, r: FuseRequest): Promise<Reply> {
  const parent = nodeIno(s, r);
  return entryReply(s, await s.fs.lookup(parent, nameArg(r, 0)));
}

async function forgetOne(s: Session, nodeid: bigint, nlookup: bigint): Promise<void> {
  const gone = s.nodes.forget(nodeid, nlookup);
  if (gone && gone.dropped > 0) await s.fs.forget(gone.ino, gone.dropped);
}

async function forget(s: Session, r: FuseRequest): Promise<Reply> {
  await forgetOne(s, r.nodeid, u64(r, fuse_forget_in.nlookup));
  return NO_REPLY;
}

async function batchForget(s: Session, r: FuseRequest): Promise<Reply> {
  const count = u32(r, fuse_batch_forget_in.count);
  // Take only the entries actually present: count is the guest's claim.
  const n = Math.min(count, Math.floor((r.args.length - fuse_batch_forget_in.SIZE) / fuse_forget_one.SIZE));
  for (let i = 0, at = fuse_batch_forget_in.SIZE; i < n; i++, at += fuse_forget_one.SIZE) {
    await forgetOne(s, u64(r, at + fuse_forget_one.nodeid), u64(r, at + fuse_forget_one.nlookup));
  }
  return NO_REPLY;
}

async function getattr(s: Session, r: FuseRequest): Promise<Reply> {
  return attrReply(s, await s.fs.getattr(nodeIno(s, r)));
}

async function readlink(s: Session, r: FuseRequest): Promise<Reply> {
  return encoder.encode(await s.fs.readlink(nodeIno(s, r)));
}

async function access(s: Session, r: FuseRequest): Promise<Reply> {
  await s.fs.access(nodeIno(s, r), u32(r, fuse_access_in.mask));
  return 0;
}

async function statfs(s: Session, r: FuseRequest): Promise<Reply> {
  const st = await s.fs.statfs(nodeIno(s, r));
  const out = struct(fuse_kstatfs.SIZE);
  encode(fuse_kstatfs, out.view, 0, { ...st });
  return out.bytes;
}

// Files ---------------------------------------------------------------------------------------------

async function open(s: Session, r: FuseRequest): Promise<Reply> {
  const fh = await s.fs.open(nodeIno(s, r), u32(r, fuse_open_in.flags));
  s.openFiles.add(fh);
  const out = struct(fuse_open_out.SIZE);
  encode(fuse_open_out, out.view, 0, { fh, open_flags: 0 });
  return out.bytes;
}

async function read(s: Session, r: FuseRequest): Promise<Reply> {
  const fh = handle(s.openFiles, u64(r, fuse_read_in.fh));
  const size = u32(r, fuse_read_in.size);
  if (size > s.maxWrite) return Errno.EINVAL;
  return s.fs.read(fh, offsetArg(u64(r, fuse_read_in.offset)), size);
}

async function release(s: Session, r: FuseRequest): Promise<Reply> {
  const fh = handle(s.openFiles, u64(r, fuse_release_in.fh));
  s.openFiles.delete(fh);
  await s.fs.release(fh);
  return 0;
}

async function flush(s: Session, r: FuseRequest): Promise<Reply> {
  handle(s.openFiles, u64(r, fuse_flush_in.fh));
  return 0;
}

// Directories ---------------------------------------------------------------------------------------

async function opendir(s: Session, r: FuseRequest): Promise<Reply> {
  const dh = await s.fs.opendir(nodeIno(s, r));
  s.openDirs.add(dh);
  const out = struct(fuse_open_out.SIZE);
  encode(fuse_open_out, out.view, 0, { fh: dh, open_flags: 0 });
  return out.bytes;
}

async function releasedir(s: Session, r: FuseRequest): Promise<Reply> {
  const dh = handle(s.openDirs, u64(r, fuse_release_in.fh));
  s.openDirs.delete(dh);
  await s.fs.releasedir(dh);
  return 0;
}

const isDot = (name: string): boolean => name === "." || name === "..";

/** READDIR and READDIRPLUS: as many entries after the cookie as fit in the guest's buffer. */
async function readdirCommon(s: Session, r: FuseRequest, plus: boolean): Promise<Reply> {
  const dh = handle(s.openDirs, u64(r, fuse_read_in.fh));
  const cookie = offsetArg(u64(r, fuse_read_in.offset));
  const size = Math.min(u32(r, fuse_read_in.size), s.maxWrite);
  const recordMin = plus ? direntplusSize(1) : direntSize(1);
  const entries: DirEntry[] = await s.fs.readdir(dh, cookie, Math.max(1, Math.floor(size / recordMin)));
  const dirIno = plus ? nodeIno(s, r) : 0;
  const out = struct(size);
  let used = 0;
  for (const e of entries) {
    const name = encoder.encode(e.name);
    const rec = plus ? direntplusSize(name.length) : direntSize(name.length);
    if (used + rec > size) break;
    let at = used;
    if (plus) {
      if (isDot(e.name)) {
        // The kernel skips "." and ".." in READDIRPLUS and never forgets them: no lookup is counted.
        putEntry(s, out.view, at, { ...DOT_ATTR, ino: e.ino, mode: e.type }, 0);
      } else {
        let attr: FileAttr;
        try {
          attr = await s.fs.lookup(dirIno, e.name);
        } catch {
          continue; // removed since the listing was taken
        }
        putEntry(s, out.view, at, attr, s.nodes.ref(attr.ino));
      }
      at += fuse_direntplus.dirent;
    }
    out.view.setBigUint64(at + fuse_dirent.ino, BigInt(e.ino), true);
    out.view.setBigUint64(at + fuse_dirent.off, BigInt(e.off), true);
    out.view.setUint32(at + fuse_dirent.namelen, name.length, true);
    out.view.setUint32(at + fuse_dirent.type, e.type >>> 12, true);
    out.bytes.set(name, at + fuse_dirent.name);
    used += rec;
  }
  return out.bytes.subarray(0, used);
}

const ZERO_TIME = { sec: 0, nsec: 0 };
const DOT_ATTR: FileAttr = { ino: 0, mode: 0, nlink: 0, uid: 0, gid: 0, rdev: 0, size: 0, blocks: 0, blksize: 0, atime: ZERO_TIME, mtime: ZERO_TIME, ctime: ZERO_TIME };

// The table -----------------------------------------------------------------------------------------

const O = FuseOpcode;
export const HANDLERS: Partial<Record<number, Handler>> = {
  [O.FUSE_INIT]: op(16, init), // fuse_init_in before 7.36 is 16 bytes
  [O.FUSE_DESTROY]: op(0, destroy),
  [O.FUSE_LOOKUP]: op(2, lookup),
  [O.FUSE_FORGET]: op(fuse_forget_in.SIZE, forget),
  [O.FUSE_BATCH_FORGET]: op(fuse_batch_forget_in.SIZE, batchForget),
  [O.FUSE_GETATTR]: op(fuse_getattr_in.SIZE, getattr),
  [O.FUSE_READLINK]: op(0, readlink),
  [O.FUSE_ACCESS]: op(fuse_access_in.SIZE, access),
  [O.FUSE_STATFS]: op(0, statfs),
  [O.FUSE_OPEN]: op(fuse_open_in.SIZE, open),
  [O.FUSE_READ]: op(fuse_read_in.SIZE, read),
  [O.FUSE_RELEASE]: op(fuse_release_in.SIZE, release),
  [O.FUSE_FLUSH]: op(fuse_flush_in.SIZE, flush),
  [O.FUSE_OPENDIR]: op(fuse_open_in.SIZE, opendir),
  [O.FUSE_READDIR]: op(fuse_read_in.SIZE, (s, r) => readdirCommon(s, r, false)),
  [O.FUSE_READDIRPLUS]: op(fuse_read_in.SIZE, (s, r) => readdirCommon(s, r, true)),
  [O.FUSE_RELEASEDIR]: op(fuse_release_in.SIZE, releasedir),
  // Requests finish without blocking, so there is never anything to interrupt; INTERRUPT has no reply.
  [O.FUSE_INTERRUPT]: op(fuse_interrupt_in.SIZE, async () => NO_REPLY),
};
