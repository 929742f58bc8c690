// INIT, DESTROY, STATFS, SYNCFS: the session and the filesystem as a whole.
import { wait, type Op } from "../../vfs/awaitable.ts";
import { FOPEN_DIRECT_IO, FUSE_ASYNC_DIO, FUSE_ASYNC_READ, FUSE_AUTO_INVAL_DATA, FUSE_BIG_WRITES, FUSE_CACHE_SYMLINKS, FUSE_COMPAT_22_INIT_OUT_SIZE, FUSE_COMPAT_INIT_OUT_SIZE, FUSE_DO_READDIRPLUS, FUSE_FLOCK_LOCKS, FUSE_HANDLE_KILLPRIV_V2, FUSE_HAS_INODE_DAX, FUSE_INIT_EXT, FUSE_KERNEL_MINOR_VERSION, FUSE_KERNEL_VERSION, FUSE_MAP_ALIGNMENT, FUSE_MAX_PAGES, FUSE_NO_OPEN_SUPPORT, FUSE_PARALLEL_DIROPS, FUSE_POSIX_ACL, FUSE_POSIX_LOCKS, FUSE_WRITEBACK_CACHE, encode, fuse_init_in, fuse_init_out, fuse_kstatfs, initFlags, splitInitFlags } from "../abi.ts";
import { Errno } from "../../vfs/errno.ts";
import { PAGE_SHIFT, PAGE_SIZE } from "../dax-window.ts";
import { endSession, type FuseRequest, type Reply, type Session } from "../session.ts";
import { nodeIno, struct, u32 } from "./common.ts";

const MAX_BACKGROUND = 64;

/** What this server can do, as INIT flags; the reply carries those the kernel offered too. */
function serverFlags(s: Session): bigint {
  let f =
    FUSE_ASYNC_READ |
    FUSE_BIG_WRITES |
    FUSE_ASYNC_DIO |
    // Always READDIRPLUS (no READDIRPLUS_AUTO, which keeps it for the first page only): one request
    // brings the attributes of ~24 entries, where `ls` or a glob would otherwise LOOKUP each one.
    FUSE_DO_READDIRPLUS |
    FUSE_PARALLEL_DIROPS |
    FUSE_MAX_PAGES |
    FUSE_INIT_EXT |
    FUSE_POSIX_ACL; // ACLs live in system.posix_acl_* xattrs; the guest kernel enforces them
  // Locks on the device only when they must hold across guests (or the embedder asks): a guest alone
  // arbitrates them faster itself, and device locks cost a FLUSH on every close(2) to drop them.
  if (wantsDeviceLocks(s)) f |= FUSE_POSIX_LOCKS | FUSE_FLOCK_LOCKS;
  if (s.cache.mode !== "never") f |= FUSE_CACHE_SYMLINKS;
  if (s.cache.mode === "auto") f |= FUSE_AUTO_INVAL_DATA; // drop cached pages when mtime or size moved
  if (s.writeback) f |= FUSE_WRITEBACK_CACHE;
  if (s.dax) f |= FUSE_MAP_ALIGNMENT | FUSE_HAS_INODE_DAX; // mappings need only page alignment (map_alignment below)
  // The server drops set-id bits on WRITE, truncate and chown when the request says so. Linux then skips
  // a GETATTR before each chown and, after an inode's first write, the security.capability GETXATTR before
  // every write (SB_NOSEC). Not with a DAX window: a store through it reaches no server, so Linux must keep
  // dropping the bits itself.
  else f |= FUSE_HANDLE_KILLPRIV_V2;
  return f;
}

function wantsDeviceLocks(s: Session): boolean {
  return s.lockMode === "device" || (s.lockMode === "auto" && s.locks.serverCount > 1);
}

export function* init(s: Session, r: FuseRequest): Op<Reply> {
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
  if (s.minor !== 0) yield* wait(endSession(s)); // a second INIT starts a new session
  // fuse_init_in grew flags2 in 7.36; an older kernel sends 16 bytes.
  const theirs = initFlags(u32(r, fuse_init_in.flags), r.args.length >= fuse_init_in.SIZE ? u32(r, fuse_init_in.flags2) : 0);
  const agreed = theirs & serverFlags(s);
  const { flags, flags2 } = splitInitFlags(agreed);
  s.minor = Math.min(minor, FUSE_KERNEL_MINOR_VERSION);
  s.inodeDax = (agreed & FUSE_HAS_INODE_DAX) !== 0n;
  s.deviceLocks = (agreed & FUSE_POSIX_LOCKS) !== 0n;
  // Zero-message open (src/fuse/inode-files.ts) where open flags carry nothing: cache=never and metadata
  // need FOPEN_DIRECT_IO on every open, and a read-only export answers a write open with EROFS. Device
  // locks need the RELEASE of each handle (flock and OFD locks go with it).
  s.zeroOpen = (theirs & FUSE_NO_OPEN_SUPPORT) !== 0n && !(s.cache.openFlags & FOPEN_DIRECT_IO) && !s.fs.capabilities.readOnly && !s.deviceLocks;
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
    map_alignment: agreed & FUSE_MAP_ALIGNMENT ? PAGE_SHIFT : 0,
    flags2,
  });
  // Older minors expect a shorter fuse_init_out.
  if (s.minor < 5) return out.bytes.subarray(0, FUSE_COMPAT_INIT_OUT_SIZE);
  if (s.minor < 23) return out.bytes.subarray(0, FUSE_COMPAT_22_INIT_OUT_SIZE);
  return out.bytes;
}

export function* destroy(s: Session): Op<Reply> {
  yield* wait(endSession(s));
  return 0;
}

export function* statfs(s: Session, r: FuseRequest): Op<Reply> {
  const st = yield* wait(s.fs.statfs(nodeIno(s, r)));
  const out = struct(fuse_kstatfs.SIZE);
  encode(fuse_kstatfs, out.view, 0, { ...st });
  return out.bytes;
}

export function* syncfs(s: Session): Op<Reply> {
  yield* wait(s.fs.syncfs());
  return 0;
}
