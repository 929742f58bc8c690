// The bookkeeping every backend shares: the inodes the server references, the open handles, and the
// snapshot behind readdir cookies. Each saves itself for a snapshot (FileSystem.saveState) with the
// backend's values in it, and reads that back checked, with a `load` the backend gives for its values (which
// throws StateError). A backend whose values need building (nodes made, files reopened) loads checked plans
// first and builds them with `map` once the whole state has passed, so a bad one builds nothing.

import { run, wait, type Awaitable, type Op } from "../vfs/awaitable.ts";
import { EBADF, EINVAL, ESTALE } from "../vfs/errno.ts";
import { type DirEntry, FsError, type Handle, type Ino } from "../vfs/filesystem.ts";
import { int, list, record, str, StateError, type Saved } from "../vfs/state.ts";
import { fileType, name } from "./saved.ts";

/**
 * The inodes the server references, with the lookup counts that keep them. Backends keep their per-inode
 * state (a path, a node object) here; the value is replaced on each lookup so it follows the latest way
 * the object was reached.
 */
export class InodeTable<T> {
  private readonly live = new Map<Ino, { value: T; refs: number }>();

  constructor(
    private readonly rootIno: Ino,
    root: T,
  ) {
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

  forget(ino: Ino, nlookup: number): void {
    const entry = this.live.get(ino);
    if (entry === undefined || !(nlookup > 0)) return;
    entry.refs -= nlookup;
    if (entry.refs <= 0) this.live.delete(ino);
  }

  /** The referenced inodes but the root (which is always there), in table order, with their counts. */
  saveState(save: (value: T, ino: Ino) => Saved): Saved {
    const out: Saved[] = [];
    for (const [ino, { value, refs }] of this.live) if (ino !== this.rootIno) out.push({ ino, refs, value: save(value, ino) });
    return out;
  }

  /** saveState's value back: numbers below `nextIno`, each once and never the root's, counts above 0. */
  static restoreState<T>(state: Saved | undefined, rootIno: Ino, root: T, nextIno: Ino, load: (saved: Saved, ino: Ino) => T): InodeTable<T> {
    const table = new InodeTable(rootIno, root);
    for (const item of list(state, "inodes")) {
      const entry = record(item, "inode");
      const ino = int(entry.ino, "inode number", 1, nextIno - 1);
      if (table.live.has(ino)) throw new StateError(`inode ${ino} saved twice`);
      table.live.set(ino, { refs: int(entry.refs, `references of inode ${ino}`, 1), value: load(entry.value ?? null, ino) });
    }
    return table;
  }

  /** The same inodes and counts with the values `build` makes of them; one it makes undefined is left out (ESTALE). */
  async map<U>(root: U, build: (value: T, ino: Ino) => U | undefined | Promise<U | undefined>): Promise<InodeTable<U>> {
    const table = new InodeTable(this.rootIno, root);
    for (const [ino, { value, refs }] of this.live) {
      if (ino === this.rootIno) continue;
      const built = await build(value, ino);
      if (built !== undefined) table.live.set(ino, { value: built, refs });
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

  /** saveState's value back: numbers below `next`, each once. */
  static restoreState<T>(state: Saved | undefined, load: (saved: Saved, h: Handle) => T): HandleTable<T> {
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

  /** The same numbers with the values `build` makes of them, made in order; if one fails, `undo` takes back those made. */
  async map<U>(build: (value: T) => U | Promise<U>, undo?: (value: U) => Promise<void>): Promise<HandleTable<U>> {
    const table = new HandleTable<U>();
    table.next = this.next;
    try {
      for (const [h, value] of this.open) table.open.set(h, await build(value));
    } catch (e) {
      if (undo !== undefined) for (const value of table.open.values()) await undo(value);
      throw e;
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

  /** `listing`: a snapshot's (readState), which cookies keep indexing until the next cookie 0. */
  constructor(
    private readonly list: () => Awaitable<DirListing>,
    listing?: DirListing,
  ) {
    if (listing !== undefined) this.snapshot = numbered(listing);
  }

  read(cookie: number, maxEntries?: number): Awaitable<DirEntry[]> {
    if (!Number.isSafeInteger(cookie) || cookie < 0) throw new FsError(EINVAL, `bad cookie ${cookie}`);
    if (maxEntries !== undefined && (!Number.isSafeInteger(maxEntries) || maxEntries < 1)) {
      throw new FsError(EINVAL, `bad entry count ${maxEntries}`);
    }
    return run(this.page(cookie, maxEntries));
  }

  private *page(cookie: number, maxEntries?: number): Op<DirEntry[]> {
    if (cookie === 0 || this.snapshot === undefined) this.snapshot = numbered(yield* wait(this.list()));
    return this.snapshot.slice(cookie, maxEntries === undefined ? undefined : cookie + maxEntries);
  }

  /** The listing cookies resume in, so a continuing READDIR sees it; null before the first read. */
  saveState(): Saved {
    return this.snapshot?.map(({ name, ino, type }) => ({ name, ino, type })) ?? null;
  }

  /** saveState's listing back: "." and ".." first, then names; inode numbers below `nextIno`. */
  static readState(v: Saved | undefined, what: string, nextIno: Ino): DirListing | undefined {
    if (v === null) return undefined;
    const items = list(v, what);
    if (items.length < 2) throw new StateError(`${what}: no "." and ".."`);
    return items.map((item, i) => {
      const where = `${what}[${i}]`;
      const e = record(item, where);
      const dots = [".", ".."][i];
      const entryName = dots === undefined ? name(e.name, `${where}.name`) : str(e.name, `${where}.name`);
      if (dots !== undefined && entryName !== dots) throw new StateError(`${where}: not "${dots}"`);
      return { name: entryName, ino: int(e.ino, `${where}.ino`, 1, nextIno - 1), type: fileType(e.type, `${where}.type`) };
    });
  }
}

function numbered(listing: DirListing): DirEntry[] {
  return listing.map((entry, i) => ({ ...entry, off: i + 1 }));
}
