// The hostdir backend's part of a snapshot: references to host objects, never their data, which stays in
// the host directory. Each referenced inode is saved with its lookup count, its path from the root and its
// identity (`keyOf`: st_dev, st_ino and the birth time, which tells a recycled host inode number apart);
// each open handle with its number, its kind, its open mode and its inode, and a directory handle with the
// listing its cookies index. The backend's numbering (host identity → inode number, the next numbers of
// both) is saved whole, so an object keeps its number and a new one never takes a saved number.
//
// Everything read back is checked here (StateError): paths are names `checkName` accepts, never "..", "/"
// or the hidden STORE_DIR (but for an unnamed O_TMPFILE's own name in it); numbers are in range and
// consistent with each other.

import type { Handle, Ino } from "../../vfs/filesystem.ts";
import { S_IFDIR, S_IFREG } from "../../vfs/linux.ts";
import { bool, int, list, record, str, StateError, type Saved } from "../../vfs/state.ts";
import type { OpenMode } from "../posix.ts";
import { fileType, listingOf, name, openModeOf, saveListing, saveOpenMode } from "../saved.ts";
import type { DirListing } from "../tables.ts";
import { STORE_DIR, TMPFILE_PREFIX } from "./store-dir.ts";

const FORMAT = "hostdir-refs/1";
/** Deeper paths than PATH_MAX allows are not a tree this backend made. */
const MAX_DEPTH = 2048;
const KEY = /^\d{1,20}:\d{1,20}:-?\d{1,30}$/;
const TMPFILE_NAME = new RegExp(`^${TMPFILE_PREFIX}[0-9a-f]{16}$`);

export interface SavedInode {
  ino: Ino;
  refs: number;
  /** Components from the root. */
  path: string[];
  key: string;
  type: number;
  parent: Ino;
  /** An O_TMPFILE inode not linked yet (its path is its name in STORE_DIR), and whether `link` may name it. */
  tmpfile?: { linkable: boolean };
}

export type SavedHandle =
  | { fh: Handle; kind: "file"; ino: Ino; how: OpenMode }
  | { fh: Handle; kind: "dir"; ino: Ino; listing: DirListing | undefined }
  | { fh: Handle; kind: "stale" };

export interface HostState {
  nextIno: Ino;
  /** Host identity → inode number, for every object numbered so far but the root. */
  numbers: [string, Ino][];
  /** The referenced inodes but the root. */
  inodes: SavedInode[];
  nextHandle: Handle;
  handles: SavedHandle[];
}

export function saveHostState(s: HostState): Saved {
  return {
    format: FORMAT,
    nextIno: s.nextIno,
    numbers: s.numbers,
    inodes: s.inodes.map((i) => ({
      ino: i.ino,
      refs: i.refs,
      path: i.path,
      key: i.key,
      type: i.type,
      parent: i.parent,
      tmpfile: i.tmpfile === undefined ? null : { linkable: i.tmpfile.linkable },
    })),
    nextHandle: s.nextHandle,
    handles: s.handles.map((h): Saved =>
      h.kind === "file"
        ? { fh: h.fh, kind: h.kind, ino: h.ino, how: saveOpenMode(h.how) }
        : h.kind === "dir"
          ? { fh: h.fh, kind: h.kind, ino: h.ino, listing: saveListing(h.listing) }
          : { fh: h.fh, kind: h.kind },
    ),
  };
}

/** saveHostState's value back, checked; `rootKey` is the identity of the root now served. */
export function readHostState(v: Saved, rootIno: Ino, rootKey: string): HostState {
  const r = record(v, "hostdir state");
  if (r.format !== FORMAT) throw new StateError(`hostdir state: not ${FORMAT}`);
  const nextIno = int(r.nextIno, "nextIno", rootIno + 1);
  const numbered = (x: Saved | undefined, what: string): Ino => int(x, what, rootIno + 1, nextIno - 1);

  const numbers = new Map<string, Ino>();
  const inosNumbered = new Set<Ino>();
  list(r.numbers, "numbers").forEach((item, i) => {
    const pair = list(item, `numbers[${i}]`);
    const key = identity(pair[0], `numbers[${i}][0]`);
    const ino = numbered(pair[1], `numbers[${i}][1]`);
    if (pair.length !== 2 || key === rootKey || numbers.has(key) || inosNumbered.has(ino)) throw new StateError(`numbers[${i}]: not a new pair`);
    numbers.set(key, ino);
    inosNumbered.add(ino);
  });

  const inodes = new Map<Ino, SavedInode>();
  list(r.inodes, "inodes").forEach((item, i) => {
    const what = `inodes[${i}]`;
    const e = record(item, what);
    const ino = numbered(e.ino, `${what}.ino`);
    const key = identity(e.key, `${what}.key`);
    if (inodes.has(ino)) throw new StateError(`${what}: inode ${ino} twice`);
    const path = list(e.path, `${what}.path`).map((c, j) => name(c, `${what}.path[${j}]`));
    if (path.length === 0 || path.length > MAX_DEPTH) throw new StateError(`${what}.path: not a path below the root`);
    const type = fileType(e.type, `${what}.type`);
    let tmpfile: SavedInode["tmpfile"];
    if (e.tmpfile !== null) {
      tmpfile = { linkable: bool(record(e.tmpfile, `${what}.tmpfile`).linkable, `${what}.tmpfile.linkable`) };
      if (path.length !== 2 || path[0] !== STORE_DIR || !TMPFILE_NAME.test(path[1]!) || type !== S_IFREG) throw new StateError(`${what}: not an O_TMPFILE's path`);
    } else if (path[0] === STORE_DIR) throw new StateError(`${what}.path: inside ${STORE_DIR}`);
    const parent = int(e.parent, `${what}.parent`, rootIno, nextIno - 1);
    inodes.set(ino, { ino, refs: int(e.refs, `${what}.refs`, 1), path, key, type, parent, tmpfile });
  });

  const nextHandle = int(r.nextHandle, "nextHandle", 1);
  const fhs = new Set<Handle>();
  const handles = list(r.handles, "handles").map((item, i): SavedHandle => {
    const what = `handles[${i}]`;
    const e = record(item, what);
    const fh = int(e.fh, `${what}.fh`, 1, nextHandle - 1);
    if (fhs.has(fh)) throw new StateError(`${what}: handle ${fh} twice`);
    fhs.add(fh);
    if (e.kind === "stale") return { fh, kind: "stale" };
    const ino = int(e.ino, `${what}.ino`, rootIno, nextIno - 1);
    const type = ino === rootIno ? S_IFDIR : inodes.get(ino)?.type;
    if (e.kind === "file" && type === S_IFREG) return { fh, kind: "file", ino, how: openModeOf(e.how, `${what}.how`) };
    if (e.kind === "dir" && type === S_IFDIR) return { fh, kind: "dir", ino, listing: listingOf(e.listing, `${what}.listing`, nextIno) };
    throw new StateError(`${what}: not a file or directory handle on a referenced inode of its kind`);
  });

  return { nextIno, numbers: [...numbers], inodes: [...inodes.values()], nextHandle, handles };
}

function identity(v: Saved | undefined, what: string): string {
  const key = str(v, what);
  if (!KEY.test(key)) throw new StateError(`${what}: not a host identity`);
  return key;
}
