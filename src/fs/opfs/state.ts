// The OPFS backend's part of a snapshot: references into the share, whose data stays in OPFS and whose
// inode numbers are the metadata snapshot's own (meta.ts), saved together with the state. The inode table
// (tables.ts) saves each referenced inode with where the metadata had it (its place: file type, parent
// inode and name), so a restore can tell the inode the metadata has now under that number is still that
// one; the handle table each open handle with its kind, open mode, inode and that inode's place (the only
// record of an inode no lookup references any more), and a directory handle with the listing its cookies
// index. OPFS has no identity of its own for a file, so a file replaced by another of the same kind behind
// the backend's back (not through a session of it) passes for the same inode; removed, moved or replaced
// through the backend, the inode is stale.
//
// Everything read back is checked here and in the tables (StateError): names are names `checkName`
// accepts, numbers are in range and consistent with each other.

import type { Ino } from "../../vfs/filesystem.ts";
import { S_IFDIR, S_IFMT, S_IFREG } from "../../vfs/linux.ts";
import { int, record, StateError, type Saved } from "../../vfs/state.ts";
import type { OpenMode } from "../posix.ts";
import { fileType, name, openModeOf, saveOpenMode } from "../saved.ts";
import { DirStream, HandleTable, InodeTable, type DirListing, type StaleHandle } from "../tables.ts";
import type { Node } from "./node.ts";
import type { OpfsHandle } from "./opfs.ts";

const FORMAT = "opfs-refs/1";

/** Where the metadata has an inode. */
export interface Place {
  type: number;
  /** Its directory and name; null for data in the inode store, reached by its number alone. */
  at: { parent: Ino; name: string } | null;
}

/** A saved handle, checked, for the backend to reopen; a place of undefined is the root's. */
export type HandlePlan = { kind: "file"; ino: Ino; place: Place; how: OpenMode } | { kind: "dir"; ino: Ino; place: Place | undefined; listing: DirListing | undefined } | StaleHandle;

/** What a snapshot holds of an OpfsFs. */
export interface OpfsState<I, H> {
  nextIno: Ino;
  inodes: InodeTable<I>;
  handles: HandleTable<H>;
}

export function saveOpfsState(s: OpfsState<Node, OpfsHandle>, rootIno: Ino): Saved {
  const place = (node: Node): Saved => ({ type: node.mode & S_IFMT, at: node.stored ? null : { parent: node.parent, name: node.name } });
  return {
    format: FORMAT,
    nextIno: s.nextIno,
    inodes: s.inodes.saveState(place),
    handles: s.handles.saveState((h): Saved => {
      if (h.kind === "stale") return { kind: "stale" };
      const { ino } = h.node;
      const node = ino === rootIno ? null : place(h.node);
      return h.kind === "file" ? { kind: h.kind, ino, node, how: saveOpenMode(h.how) } : { kind: h.kind, ino, node, listing: h.stream.saveState() };
    }),
  };
}

/** saveOpfsState's value back, checked; the root's place is undefined. */
export function readOpfsState(v: Saved, rootIno: Ino): OpfsState<Place | undefined, HandlePlan> {
  const r = record(v, "opfs state");
  if (r.format !== FORMAT) throw new StateError(`opfs state: not ${FORMAT}`);
  const nextIno = int(r.nextIno, "nextIno", rootIno + 1);
  const placeOf = (item: Saved | undefined, what: string): Place => {
    const e = record(item, what);
    const at = e.at === null ? null : record(e.at, `${what}.at`);
    return {
      type: fileType(e.type, `${what}.type`),
      at: at && { parent: int(at.parent, `${what}.at.parent`, rootIno, nextIno - 1), name: name(at.name, `${what}.at.name`) },
    };
  };
  const inodes = InodeTable.restoreState<Place | undefined>(r.inodes, rootIno, undefined, nextIno, (item, ino) => placeOf(item, `inode ${ino}`));
  const handles = HandleTable.restoreState(r.handles, (item, h): HandlePlan => {
    const what = `handle ${h}`;
    const e = record(item, what);
    if (e.kind === "stale") return { kind: "stale" };
    const ino = int(e.ino, `${what}.ino`, rootIno, nextIno - 1);
    const place = ino === rootIno ? undefined : placeOf(e.node, `${what}.node`);
    if (e.kind === "file" && place?.type === S_IFREG) return { kind: "file", ino, place, how: openModeOf(e.how, `${what}.how`) };
    if (e.kind === "dir" && (place?.type ?? S_IFDIR) === S_IFDIR) return { kind: "dir", ino, place, listing: DirStream.readState(e.listing, `${what}.listing`, nextIno) };
    throw new StateError(`${what}: not a file or directory handle on an inode of its kind`);
  });
  return { nextIno, inodes, handles };
}
