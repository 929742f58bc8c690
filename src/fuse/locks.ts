// Byte-range POSIX locks (fcntl F_GETLK/F_SETLK/F_SETLKW) and flock(2) locks, served by the device:
// the guest's lock requests come as FUSE_GETLK/SETLK/SETLKW and are arbitrated here, per inode.
// A blocked SETLKW waits without holding up other requests and ends early on FUSE_INTERRUPT.
import type { Ino } from "../fs/filesystem.ts";
import { Errno } from "./abi.ts";

// struct flock l_type values on Linux (asm-generic/fcntl.h).
export const F_RDLCK = 0;
export const F_WRLCK = 1;
export const F_UNLCK = 2;
/** The end of a lock that runs to end of file (OFFSET_MAX). */
export const OFFSET_MAX = 0x7fffffffffffffffn;

export interface Lock {
  type: typeof F_RDLCK | typeof F_WRLCK;
  start: bigint;
  /** Inclusive. */
  end: bigint;
  owner: bigint;
  pid: number;
}

export type LockKind = "posix" | "flock";

interface Waiter {
  unique: bigint;
  retry(): void;
  cancel(): void;
}

export class LockError extends Error {
  constructor(readonly errno: number) {
    super(`lock errno ${errno}`);
  }
}

const overlaps = (a: { start: bigint; end: bigint }, b: { start: bigint; end: bigint }) => a.start <= b.end && b.start <= a.end;
const conflicts = (held: Lock, want: Omit<Lock, "pid">) =>
  held.owner !== want.owner && overlaps(held, want) && (held.type === F_WRLCK || want.type === F_WRLCK);

export class LockTable {
  private readonly locks = new Map<string, Lock[]>();
  private readonly waiters = new Map<string, Set<Waiter>>();
  private readonly byUnique = new Map<bigint, Waiter>();

  /** The first lock that would block `want`, or undefined (F_GETLK). */
  test(kind: LockKind, ino: Ino, want: Omit<Lock, "pid">): Lock | undefined {
    return this.locks.get(key(kind, ino))?.find((l) => conflicts(l, want));
  }

  /**
   * F_SETLK / F_SETLKW (or flock): applies `want` (F_UNLCK releases the range). Without `wait`, a
   * conflict is EAGAIN; with it, resolves once the lock is granted, or rejects with EINTR when
   * `interrupt(unique)` cancels it.
   */
  async set(kind: LockKind, ino: Ino, want: Omit<Lock, "type"> & { type: number }, wait: boolean, unique: bigint): Promise<void> {
    if (want.type === F_UNLCK) return this.unlock(kind, ino, want.owner, want.start, want.end);
    if (want.type !== F_RDLCK && want.type !== F_WRLCK) throw new LockError(Errno.EINVAL);
    if (want.start > want.end) throw new LockError(Errno.EINVAL);
    const lock = want as Lock;
    const k = key(kind, ino);
    while (this.test(kind, ino, lock)) {
      if (!wait) throw new LockError(Errno.EAGAIN);
      await new Promise<void>((resolve, reject) => {
        const w: Waiter = {
          unique,
          retry: () => {
            this.dropWaiter(k, w);
            resolve();
          },
          cancel: () => {
            this.dropWaiter(k, w);
            reject(new LockError(Errno.EINTR));
          },
        };
        let set = this.waiters.get(k);
        if (!set) this.waiters.set(k, (set = new Set()));
        set.add(w);
        this.byUnique.set(unique, w);
      });
    }
    this.replace(k, lock);
  }

  /** FUSE_INTERRUPT for a blocked SETLKW; false if nothing with that unique is waiting. */
  interrupt(unique: bigint): boolean {
    const w = this.byUnique.get(unique);
    w?.cancel();
    return w !== undefined;
  }

  /** Drops every lock `owner` holds on `ino` (close of a file: FLUSH, RELEASE). */
  releaseOwner(kind: LockKind, ino: Ino, owner: bigint): void {
    this.unlock(kind, ino, owner, 0n, OFFSET_MAX);
  }

  /** Forgets everything, failing every waiter (the session ended). */
  clear(): void {
    for (const w of [...this.byUnique.values()]) w.cancel();
    this.locks.clear();
  }

  /** Locks held, for the inspector and tests. */
  held(kind: LockKind, ino: Ino): readonly Lock[] {
    return this.locks.get(key(kind, ino)) ?? [];
  }

  private unlock(kind: LockKind, ino: Ino, owner: bigint, start: bigint, end: bigint): void {
    const k = key(kind, ino);
    const list = this.locks.get(k);
    if (!list) return;
    this.locks.set(k, list.flatMap((l) => (l.owner === owner ? cut(l, start, end) : [l])));
    if (this.locks.get(k)!.length === 0) this.locks.delete(k);
    this.wake(k);
  }

  /** Sets an owner's lock over a range: its older locks there are cut away, then neighbours of the same type merge. */
  private replace(k: string, lock: Lock): void {
    const others = (this.locks.get(k) ?? []).filter((l) => l.owner !== lock.owner);
    let mine = (this.locks.get(k) ?? []).filter((l) => l.owner === lock.owner).flatMap((l) => cut(l, lock.start, lock.end));
    let merged = { ...lock };
    mine = mine.filter((l) => {
      const touches = l.type === merged.type && l.start <= merged.end + 1n && merged.start <= l.end + 1n;
      if (touches) merged = { ...merged, start: l.start < merged.start ? l.start : merged.start, end: l.end > merged.end ? l.end : merged.end };
      return !touches;
    });
    this.locks.set(k, [...others, ...mine, merged]);
    // A downgrade (write → read) may let readers in.
    this.wake(k);
  }

  private wake(k: string): void {
    for (const w of [...(this.waiters.get(k) ?? [])]) w.retry();
  }

  private dropWaiter(k: string, w: Waiter): void {
    this.waiters.get(k)?.delete(w);
    if (this.byUnique.get(w.unique) === w) this.byUnique.delete(w.unique);
  }
}

const key = (kind: LockKind, ino: Ino): string => `${kind}:${ino}`;

/** What is left of `l` outside [start, end]. */
function cut(l: Lock, start: bigint, end: bigint): Lock[] {
  if (!overlaps(l, { start, end })) return [l];
  const out: Lock[] = [];
  if (l.start < start) out.push({ ...l, end: start - 1n });
  if (l.end > end) out.push({ ...l, start: end + 1n });
  return out;
}
