// File locks the device keeps for guests that share one backend (FUSE_POSIX_LOCKS, FUSE_FLOCK_LOCKS):
// one table per FileSystem, so every session over the same tree sees every other session's locks. A
// guest kernel keeps its own locks when it is the tree's only client; with two it cannot know the other's.
//
// Owners are (session, fuse lock_owner): lock_owner is the guest's files_struct for POSIX record locks and
// the open file for flock(2) and OFD locks, scrambled, so it means nothing across sessions. Record locks
// and flock locks never conflict with each other, as in Linux.
import type { FileSystem, Handle, Ino } from "../vfs/filesystem.ts";
import { Errno } from "../vfs/errno.ts";

/** fuse_file_lock.type (asm-generic fcntl.h). */
export const F_RDLCK = 0;
export const F_WRLCK = 1;
export const F_UNLCK = 2;
/** The largest file offset a lock may cover (Linux OFFSET_MAX for a 64-bit loff_t). */
export const OFFSET_MAX = 0x7fff_ffff_ffff_ffffn;

/** A session's identity in the table: any object that lives as long as the session (the server's Session). */
export type LockSession = object;

export interface LockRequest {
  ino: Ino;
  /** flock(2) (FUSE_LK_FLOCK, always the whole file) or a record lock (POSIX or OFD). */
  flock: boolean;
  owner: bigint;
  /** The handle the lock is taken through: its RELEASE drops what is left of it (OFD locks, flock). */
  fh: Handle;
  type: number;
  /** First and last byte, inclusive. */
  start: bigint;
  end: bigint;
  /** The guest's tgid, which GETLK reports to the same guest. */
  pid: number;
}

interface Held {
  readonly session: LockSession;
  readonly owner: bigint;
  readonly fh: Handle;
  readonly flock: boolean;
  readonly type: number;
  readonly start: bigint;
  readonly end: bigint;
  readonly pid: number;
}

/** A conflicting lock as GETLK reports it; pid 0 for another session's lock (its pids mean nothing here). */
export interface LockInfo {
  type: number;
  start: bigint;
  end: bigint;
  pid: number;
}

interface Waiter {
  readonly session: LockSession;
  readonly req: LockRequest;
  readonly answer: (errno: number) => void;
}

interface InodeLocks {
  held: Held[];
  /** Blocked SETLKW requests, in arrival order. */
  waiters: Waiter[];
}

/** Locks one session may hold on one inode, each split range counted: a guest cannot grow the table without bound. */
export const LOCKS_PER_INODE = 1024;
/** Linux's bound on the wait-for chain it follows (MAX_DEADLK_ITERATIONS). */
const DEADLOCK_STEPS = 10;

const tables = new WeakMap<FileSystem, LockTable>();

/** The lock table of a backend: one per FileSystem, shared by every server over it. */
export function lockTableOf(fs: FileSystem): LockTable {
  let t = tables.get(fs);
  if (!t) tables.set(fs, (t = new LockTable()));
  return t;
}

export class LockTable {
  private readonly inodes = new Map<Ino, InodeLocks>();
  private servers = 0;

  /** Counts a server over this backend until the returned function is called (LockMode "auto"). */
  join(): () => void {
    this.servers++;
    let left = false;
    return () => {
      if (!left) this.servers--;
      left = true;
    };
  }

  get serverCount(): number {
    return this.servers;
  }

  /** Locks and waiters in the table (tests, the inspector). */
  get size(): { held: number; waiting: number } {
    let held = 0;
    let waiting = 0;
    for (const i of this.inodes.values()) {
      held += i.held.length;
      waiting += i.waiters.length;
    }
    return { held, waiting };
  }

  /** Blocked SETLKW requests of one session. */
  waiting(session: LockSession): number {
    let n = 0;
    for (const i of this.inodes.values()) n += i.waiters.filter((w) => w.session === session).length;
    return n;
  }

  /** The locks one session holds, for a snapshot (its waiters are requests in flight, served again after restore). */
  heldBy(session: LockSession): LockRequest[] {
    const out: LockRequest[] = [];
    for (const [ino, i] of this.inodes) {
      for (const h of i.held) if (h.session === session) out.push({ ino, flock: h.flock, owner: h.owner, fh: h.fh, type: h.type, start: h.start, end: h.end, pid: h.pid });
    }
    return out;
  }

  /** Gives a restored session the locks it held; false (nothing taken) if one conflicts with a lock held now. */
  restoreHeld(session: LockSession, locks: readonly LockRequest[]): boolean {
    if (locks.some((l) => l.type === F_UNLCK || this.inodes.get(l.ino)?.held.some((h) => conflicts(h, session, l)))) return false;
    for (const l of locks) this.inode(l.ino).held.push({ session, owner: l.owner, fh: l.fh, flock: l.flock, type: l.type, start: l.start, end: l.end, pid: l.pid });
    return true;
  }

  /** GETLK: the first lock of another owner that keeps `req` from being taken, if any. */
  test(session: LockSession, req: LockRequest): LockInfo | undefined {
    const c = this.inodes.get(req.ino)?.held.find((h) => conflicts(h, session, req));
    return c && { type: c.type, start: c.start, end: c.end, pid: c.session === session ? c.pid : 0 };
  }

  /**
   * SETLK (wait false) and SETLKW: 0 once the lock is taken or the range unlocked, ENOLCK past
   * LOCKS_PER_INODE, EAGAIN when another owner
   * holds a conflicting lock and `wait` is false, EDEADLK when waiting would close a cycle of record-lock
   * owners; with `wait` a Promise that settles when the lock is granted (0) or the session ends (EINTR).
   */
  set(session: LockSession, req: LockRequest, wait: boolean): number | Promise<number> {
    // Converting a flock lock drops the old one first, as Linux does (flock(2): not atomic).
    if (req.flock) this.dropWhere(req.ino, (h) => h.flock && h.session === session && h.owner === req.owner);
    const inode = this.inode(req.ino);
    const blocker = req.type === F_UNLCK ? undefined : inode.held.find((h) => conflicts(h, session, req));
    if (!blocker) {
      if (req.type !== F_UNLCK && inode.held.filter((h) => h.session === session).length >= LOCKS_PER_INODE) return Errno.ENOLCK;
      this.apply(inode, session, req);
      this.wake(req.ino);
      return 0;
    }
    this.wake(req.ino); // the flock conversion may have released readers
    if (!wait) return Errno.EAGAIN;
    if (!req.flock && this.closesCycle(session, req.owner, blocker)) return Errno.EDEADLK;
    return new Promise((answer) => inode.waiters.push({ session, req, answer }));
  }

  /** FLUSH (close(2) of one descriptor): the record locks `owner` holds on `ino` go. */
  releaseOwner(session: LockSession, ino: Ino, owner: bigint): void {
    this.dropWhere(ino, (h) => !h.flock && h.session === session && h.owner === owner);
  }

  /** RELEASE of a handle: the locks still taken through it go (flock and OFD locks, whose owner is the file). */
  releaseHandle(session: LockSession, fh: Handle): void {
    for (const ino of [...this.inodes.keys()]) this.dropWhere(ino, (h) => h.session === session && h.fh === fh);
  }

  /** The session ended (reset, reboot, unmount): its locks go and its waiters are answered EINTR. */
  endSession(session: LockSession): void {
    for (const [ino, inode] of [...this.inodes]) {
      const gone = inode.waiters.filter((w) => w.session === session);
      inode.waiters = inode.waiters.filter((w) => w.session !== session);
      for (const w of gone) w.answer(Errno.EINTR);
      this.dropWhere(ino, (h) => h.session === session);
    }
  }

  private inode(ino: Ino): InodeLocks {
    let i = this.inodes.get(ino);
    if (!i) this.inodes.set(ino, (i = { held: [], waiters: [] }));
    return i;
  }

  private dropWhere(ino: Ino, gone: (h: Held) => boolean): void {
    const inode = this.inodes.get(ino);
    if (!inode) return;
    const before = inode.held.length;
    inode.held = inode.held.filter((h) => !gone(h));
    if (inode.held.length !== before) this.wake(ino);
    else this.tidy(ino, inode);
  }

  /** Grants every waiter that no longer conflicts, oldest first. */
  private wake(ino: Ino): void {
    const inode = this.inodes.get(ino);
    if (!inode) return;
    for (const w of [...inode.waiters]) {
      if (inode.held.some((h) => conflicts(h, w.session, w.req))) continue;
      inode.waiters.splice(inode.waiters.indexOf(w), 1);
      this.apply(inode, w.session, w.req);
      w.answer(0);
    }
    this.tidy(ino, inode);
  }

  private tidy(ino: Ino, inode: InodeLocks): void {
    if (inode.held.length === 0 && inode.waiters.length === 0) this.inodes.delete(ino);
  }

  /**
   * Sets [start, end] of the owner's locks to `type` (F_UNLCK removes): its locks there are cut away, and
   * the new lock merges with its locks of the same type it overlaps or touches, as POSIX wants.
   */
  private apply(inode: InodeLocks, session: LockSession, req: LockRequest): void {
    let { start, end } = req;
    const kept: Held[] = [];
    for (const h of inode.held) {
      if (h.session !== session || h.owner !== req.owner || h.flock !== req.flock) kept.push(h);
      else if (req.type !== F_UNLCK && h.type === req.type && h.start <= req.end + 1n && h.end + 1n >= req.start) {
        if (h.start < start) start = h.start;
        if (h.end > end) end = h.end;
      } else if (h.end < req.start || h.start > req.end) kept.push(h);
      else {
        if (h.start < req.start) kept.push({ ...h, end: req.start - 1n });
        if (h.end > req.end) kept.push({ ...h, start: req.end + 1n });
      }
    }
    if (req.type !== F_UNLCK) kept.push({ session, owner: req.owner, fh: req.fh, flock: req.flock, type: req.type, start, end, pid: req.pid });
    inode.held = kept;
  }

  /** Whether `owner` waiting on `blocker` would wait on itself, following who waits for whom. */
  private closesCycle(session: LockSession, owner: bigint, blocker: Held): boolean {
    let b: Held | undefined = blocker;
    for (let step = 0; b && step < DEADLOCK_STEPS; step++) {
      if (b.session === session && b.owner === owner) return true;
      const w = this.waiterOf(b.session, b.owner);
      b = w && this.inodes.get(w.req.ino)?.held.find((h) => conflicts(h, w.session, w.req));
    }
    return false;
  }

  private waiterOf(session: LockSession, owner: bigint): Waiter | undefined {
    for (const i of this.inodes.values()) {
      const w = i.waiters.find((x) => !x.req.flock && x.session === session && x.req.owner === owner);
      if (w) return w;
    }
    return undefined;
  }
}

/** Whether held lock `h` keeps `req` of `session` from being taken. */
function conflicts(h: Held, session: LockSession, req: LockRequest): boolean {
  if (h.flock !== req.flock || (h.session === session && h.owner === req.owner)) return false;
  if (h.type !== F_WRLCK && req.type !== F_WRLCK) return false;
  return h.start <= req.end && req.start <= h.end;
}
