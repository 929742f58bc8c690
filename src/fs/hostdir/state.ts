// The hostdir backend's part of a snapshot: references to host objects, never their data, which stays in
// the host directory. The inode table (tables.ts) saves each referenced inode with its path from the root
// and its identity (`keyOf`: st_dev, st_ino and the birth time, which tells a recycled host inode number
// apart); the handle table each open handle with its kind, its open mode and its inode, and a directory
// handle with the listing its cookies index. The backend's numbering (host identity → inode number) is
// saved whole, so an object keeps its number and a new one never takes a saved number.
//
// Everything read back is checked here and in the tables (StateError): paths are names `checkName`
// accepts, never "..", "/" or the hidden STORE_DIR (but for an unnamed O_TMPFILE's own name in it);
// numbers are in range and consistent with each other.

import type { Ino } from "../../vfs/filesystem.ts";
import { S_IFDIR, S_IFREG } from "../../vfs/linux.ts";
import { bool, int, list, record, str, StateError, type Saved } from "../../vfs/state.ts";
import type { OpenMode } from "../posix.ts";
import { fileType, name, openModeOf, saveOpenMode } from "../saved.ts";
import { DirStream, HandleTable, InodeTable, type DirListing, type StaleHandle } from "../tables.ts";
import type { HostHandle, HostInode } from "./hostdir.ts";
import { STORE_DIR, TMPFILE_PREFIX } from "./store-dir.ts";

const FORMAT = "hostdir-refs/1";
/** Deeper paths than PATH_MAX allows are not a tree this backend made. */
const MAX_DEPTH = 2048;
const KEY = /^\d{1,20}:\d{1,20}:-?\d{1,30}$/;
const TMPFILE_NAME = new RegExp(`^${TMPFILE_PREFIX}[0-9a-f]{16}$`);

/** An unnamed O_TMPFILE inode: its name in STORE_DIR, and whether `link` may name it. */
export interface Unnamed {
  name: string;
  linkable: boolean;
}

/** What a snapshot holds of a HostDirFs, and what restoring it swaps in. */
export interface HostState<H> {
  nextIno: Ino;
  /** Host identity → inode number, for every object numbered so far (saved but the root's). */
  numbers: ReadonlyMap<string, Ino>;
  inodes: InodeTable<HostInode>;
  unnamed: ReadonlyMap<Ino, Unnamed>;
  handles: HandleTable<H>;
}

/** A saved handle, checked, for the backend to reopen. */
export type HandlePlan = { kind: "file"; ino: Ino; how: OpenMode } | { kind: "dir"; ino: Ino; listing: DirListing | undefined } | StaleHandle;

export function saveHostState(s: HostState<HostHandle>, rootIno: Ino): Saved {
  return {
    format: FORMAT,
    nextIno: s.nextIno,
    numbers: [...s.numbers].filter(([, ino]) => ino !== rootIno),
    inodes: s.inodes.saveState((i, ino) => {
      const unnamed = s.unnamed.get(ino);
      return { path: i.path, key: i.key, type: i.type, parent: i.parent, tmpfile: unnamed === undefined ? null : { linkable: unnamed.linkable } };
    }),
    handles: s.handles.saveState((h): Saved => {
      // A handle whose inode is no longer referenced has no path to reopen it by.
      if (h.kind === "stale" || s.inodes.peek(h.ino) === undefined) return { kind: "stale" };
      return h.kind === "file" ? { kind: h.kind, ino: h.ino, how: saveOpenMode(h.how) } : { kind: h.kind, ino: h.ino, listing: h.stream.saveState() };
    }),
  };
}

/** saveHostState's value back, checked; `root` is the root now served. */
export function readHostState(v: Saved, rootIno: Ino, root: HostInode): HostState<HandlePlan> {
  const r = record(v, "hostdir state");
  if (r.format !== FORMAT) throw new StateError(`hostdir state: not ${FORMAT}`);
  const nextIno = int(r.nextIno, "nextIno", rootIno + 1);

  const numbers = new Map<string, Ino>();
  const inosNumbered = new Set<Ino>();
  list(r.numbers, "numbers").forEach((item, i) => {
    const pair = list(item, `numbers[${i}]`);
    const key = identity(pair[0], `numbers[${i}][0]`);
    const ino = int(pair[1], `numbers[${i}][1]`, rootIno + 1, nextIno - 1);
    if (pair.length !== 2 || key === root.key || numbers.has(key) || inosNumbered.has(ino)) throw new StateError(`numbers[${i}]: not a new pair`);
    numbers.set(key, ino);
    inosNumbered.add(ino);
  });

  const unnamed = new Map<Ino, Unnamed>();
  const inodes = InodeTable.restoreState(r.inodes, rootIno, root, nextIno, (item, ino): HostInode => {
    const what = `inode ${ino}`;
    const e = record(item, what);
    const key = identity(e.key, `${what}.key`);
    const path = list(e.path, `${what}.path`).map((c, j) => name(c, `${what}.path[${j}]`));
    if (path.length === 0 || path.length > MAX_DEPTH) throw new StateError(`${what}.path: not a path below the root`);
    const type = fileType(e.type, `${what}.type`);
    if (e.tmpfile !== null) {
      if (path.length !== 2 || path[0] !== STORE_DIR || !TMPFILE_NAME.test(path[1]!) || type !== S_IFREG) throw new StateError(`${what}: not an O_TMPFILE's path`);
      unnamed.set(ino, { name: path[1]!, linkable: bool(record(e.tmpfile, `${what}.tmpfile`).linkable, `${what}.tmpfile.linkable`) });
    } else if (path[0] === STORE_DIR) throw new StateError(`${what}.path: inside ${STORE_DIR}`);
    return { path, key, type, parent: int(e.parent, `${what}.parent`, rootIno, nextIno - 1) };
  });

  const handles = HandleTable.restoreState(r.handles, (item, h): HandlePlan => {
    const what = `handle ${h}`;
    const e = record(item, what);
    if (e.kind === "stale") return { kind: "stale" };
    const ino = int(e.ino, `${what}.ino`, rootIno);
    const type = inodes.peek(ino)?.type;
    if (e.kind === "file" && type === S_IFREG) return { kind: "file", ino, how: openModeOf(e.how, `${what}.how`) };
    if (e.kind === "dir" && type === S_IFDIR) return { kind: "dir", ino, listing: DirStream.readState(e.listing, `${what}.listing`, nextIno) };
    throw new StateError(`${what}: not a file or directory handle on a referenced inode of its kind`);
  });

  return { nextIno, numbers, inodes, unnamed, handles };
}

function identity(v: Saved | undefined, what: string): string {
  const key = str(v, what);
  if (!KEY.test(key)) throw new StateError(`${what}: not a host identity`);
  return key;
}
