// The bookkeeping every backend shares: the inodes the server references, the open handles, and the
// snapshot behind readdir cookies. Each saves itself for a snapshot (FileSystem.saveState) with the
// backend's values in it, and restores from that with a `load` the backend gives (which throws StateError).

import { EBADF, EINVAL, ESTALE } from "../vfs/errno.ts";
import { type DirEntry, FsError, type Handle, type Ino } from "../vfs/filesystem.ts";
import { int, list, record, str, StateError, type Saved } from "../vfs/state.ts";

/**
 * The inodes the server references, with the lookup counts that keep them. Backends keep their per-inode
 * state (a path, a node object) here; the value is replaced on each lookup so it follows the latest way
 * the object was reached.
 */
export class InodeTable<T> {
  private readonly live = new Map<Ino, { value: T; refs: number }>();

  constructor(rootIno: Ino, root: T) {
    this.live.set(rootIno, { value: root, refs: Infinity });
  }

  get(ino: Ino): T {
    const entry = this.live.get(ino);
    if (entry === undefined) throw new FsError(ESTALE, `unknown inode ${ino}`);
    return entry.value;
  }

  /** The value of a referenced inode, or undefined. */
  peek(ino: Ino): T | undefined {
    return this.live.get(ino)?.value;
  }

  /** Every referenced inode's value, the root's included (for updates in place, such as a rename's). */
  values(): T[] {
    return [...this.live.values()].map((entry) => entry.value);
  }

  /** Records one more reference to `ino`, now reached as `value`. */
  ref(ino: Ino, value: T): void {
    const entry = this.live.get(ino);
    if (entry === undefined) this.live.set(ino, { value, refs: 1 });
    else {
      entry.value = value;
      entry.refs++;
    }
  }

  /** Every referenced inode but the root (whose count is not one), for a snapshot. */
  entries(rootIno: Ino): { ino: Ino; value: T; refs: number }[] {
    return [...this.live].filter(([ino]) => ino !== rootIno).map(([ino, { value, refs }]) => ({ ino, value, refs }));
  }

  /** Records `refs` references to `ino` at once (a snapshot's count; `refs` > 0). */
  restore(ino: Ino, value: T, refs: number): void {
    this.live.set(ino, { value, refs });
  }

  forget(ino: Ino, nlookup: number): void {
    const entry = this.live.get(ino);
    if (entry === undefined || !(nlookup > 0)) return;
    entry.refs -= nlookup;
    if (entry.refs <= 0) this.live.delete(ino);
  }

  /** The referenced inodes but the root (which is always there), in table order, with their counts. */
  saveState(save: (value: T) => Saved): Saved {
    const out: Saved[] = [];
    for (const [ino, { value, refs }] of this.live) if (refs !== Infinity) out.push({ ino, refs, value: save(value) });
    return out;
  }

  static restoreState<T>(state: Saved, rootIno: Ino, root: T, load: (saved: Saved, ino: Ino) => T): InodeTable<T> {
    const table = new InodeTable(rootIno, root);
    for (const item of list(state, "inodes")) {
      const entry = record(item, "inode");
      const ino = int(entry.ino, "inode number", 1);
      if (table.live.has(ino)) throw new StateError(`inode ${ino} saved twice`);
      table.live.set(ino, { refs: int(entry.refs, `references of inode ${ino}`, 1), value: load(entry.value ?? null, ino) });
    }
    return table;
  }
}

/** A handle restored from a snapshot whose object vanished or was replaced meanwhile: ESTALE on every use but its release. */
export interface StaleHandle {
  kind: "stale";
}

/** Open handles. Numbers only grow, so a stale handle can never reach a later open. */
export class HandleTable<T> {
  private next: Handle = 1;
  private readonly open = new Map<Handle, T>();

  add(value: T): Handle {
    const h = this.next++;
    this.open.set(h, value);
    return h;
  }

  get(h: Handle): T {
    const value = this.open.get(h);
    if (value === undefined) throw new FsError(EBADF, `unknown handle ${h}`);
    return value;
  }

  /** A handle of one kind ("file", "dir"): EBADF for an unknown one or one of the other kind. */
  getKind<K extends string>(h: Handle, kind: K): Extract<T, { kind: K }> {
    const value = this.get(h) as T & { kind?: unknown };
    if (value.kind === "stale") throw new FsError(ESTALE, `handle ${h}: its object is gone`);
    if (value.kind !== kind) throw new FsError(EBADF, `handle ${h} is not a ${kind === "dir" ? "directory" : kind}`);
    return value as Extract<T, { kind: K }>;
  }

  /** Every open handle with its value, and the next number to issue, for a snapshot. */
  entries(): { next: Handle; open: [Handle, T][] } {
    return { next: this.next, open: [...this.open] };
  }

  /** Puts a snapshot's handles back under their numbers; later numbers start at `next`, above them all. */
  restore(next: Handle, open: Iterable<[Handle, T]>): void {
    for (const [h, value] of open) {
      this.open.set(h, value);
      this.next = Math.max(this.next, h + 1);
    }
    this.next = Math.max(this.next, next);
  }

  /** Removes and returns the handle's value. */
  take(h: Handle): T {
    const value = this.get(h);
    this.open.delete(h);
    return value;
  }

  /** Every open handle's value. */
  values(): T[] {
    return [...this.open.values()];
  }

  /** Removes and returns every open handle's value. */
  takeAll(): T[] {
    const values = [...this.open.values()];
    this.open.clear();
    return values;
  }

  /** The open handles in order and the next number, so that a restored table never reissues one. */
  saveState(save: (value: T) => Saved): Saved {
    return { next: this.next, open: [...this.open].map(([h, value]) => ({ h, value: save(value) })) };
  }

  static restoreState<T>(state: Saved, load: (saved: Saved, h: Handle) => T): HandleTable<T> {
    const saved = record(state, "handles");
    const table = new HandleTable<T>();
    table.next = int(saved.next, "next handle", 1);
    for (const item of list(saved.open, "open handles")) {
      const entry = record(item, "handle");
      const h = int(entry.h, "handle number", 1, table.next - 1);
      if (table.open.has(h)) throw new StateError(`handle ${h} saved twice`);
      table.open.set(h, load(entry.value ?? null, h));
    }
    return table;
  }
}

export type DirListing = Omit<DirEntry, "off">[];

/**
 * The cookie machinery behind `readdir` for one open directory: a listing taken at cookie 0 (or on the
 * first call), with cookie n meaning "after the n-th entry" of that listing.
 */
export class DirStream {
  private snapshot: DirEntry[] | undefined;

  constructor(private readonly list: () => Promise<DirListing>) {}

  /** The listing the cookies index, once taken: what a snapshot keeps so a continuing READDIR sees it. */
  get listing(): DirListing | undefined {
    return this.snapshot?.map(({ name, ino, type }) => ({ name, ino, type }));
  }

  /** Continues from a snapshot's listing: cookie n resumes after its n-th entry, as it did before. */
  restore(listing: DirListing): void {
    this.snapshot = listing.map((entry, i) => ({ ...entry, off: i + 1 }));
  }

  async read(cookie: number, maxEntries?: number): Promise<DirEntry[]> {
    if (!Number.isSafeInteger(cookie) || cookie < 0) throw new FsError(EINVAL, `bad cookie ${cookie}`);
    if (maxEntries !== undefined && (!Number.isSafeInteger(maxEntries) || maxEntries < 1)) {
      throw new FsError(EINVAL, `bad entry count ${maxEntries}`);
    }
    if (cookie === 0 || this.snapshot === undefined) {
      this.snapshot = (await this.list()).map((entry, i) => ({ ...entry, off: i + 1 }));
    }
    return this.snapshot.slice(cookie, maxEntries === undefined ? undefined : cookie + maxEntries);
  }

  /** The listing cookies resume in, as [name, ino, type] triples; null before the first read. */
  saveState(): Saved {
    return this.snapshot?.map(({ name, ino, type }) => [name, ino, type]) ?? null;
  }

  /** A stream resuming saveState's listing; `list` takes the next one (at cookie 0). */
  static restoreState(state: Saved, list: () => Promise<DirListing>): DirStream {
    const stream = new DirStream(list);
    if (state !== null) stream.snapshot = readListing(state);
    return stream;
  }
}

function readListing(state: Saved): DirEntry[] {
  return list(state, "listing").map((item, i) => {
    const entry = list(item, "listing entry");
    if (entry.length !== 3) throw new StateError("listing entry: not [name, ino, type]");
    return { name: str(entry[0], "entry name"), ino: int(entry[1], "entry inode", 1), type: int(entry[2], "entry type", 0, 0o170000), off: i + 1 };
  });
}
