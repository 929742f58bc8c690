// The OPFS backend's part of a snapshot: references into the share, whose data stays in OPFS and whose
// inode numbers are the metadata snapshot's own (meta.ts), saved together with the state. Each referenced
// inode is saved with its lookup count and where the metadata had it (parent inode, name, file type), so
// a restore can tell the inode the metadata has now under that number is still that one; each open handle
// with its number, kind, open mode and inode, and a directory handle with the listing its cookies index;
// and the next numbers of both, so new ones never take a saved number. OPFS has no identity of its own for
// a file, so a file replaced by another of the same kind behind the backend's back (not through a session
// of it) passes for the same inode; removed, moved or replaced through the backend, the inode is stale.
//
// Everything read back is checked here (StateError): names are names `checkName` accepts, numbers are in
// range and consistent with each other.

import type { Handle, Ino } from "../../vfs/filesystem.ts";
import { S_IFDIR, S_IFREG } from "../../vfs/linux.ts";
import { int, list, record, StateError, type Saved } from "../../vfs/state.ts";
import type { OpenMode } from "../posix.ts";
import { fileType, listingOf, name, openModeOf, saveListing, saveOpenMode } from "../saved.ts";
import type { DirListing } from "../tables.ts";

const FORMAT = "opfs-refs/1";

export interface SavedInode {
  ino: Ino;
  /** Lookup references; 0 for an inode only an open handle holds. */
  refs: number;
  type: number;
  /** Where the metadata has it; null for data in the inode store, reached by its number alone. */
  at: { parent: Ino; name: string } | null;
}

export type SavedHandle =
  | { fh: Handle; kind: "file"; ino: Ino; how: OpenMode }
  | { fh: Handle; kind: "dir"; ino: Ino; listing: DirListing | undefined }
  | { fh: Handle; kind: "stale" };

export interface OpfsState {
  nextIno: Ino;
  /** The inodes referenced or open, but the root. */
  inodes: SavedInode[];
  nextHandle: Handle;
  handles: SavedHandle[];
}

export function saveOpfsState(s: OpfsState): Saved {
  return {
    format: FORMAT,
    nextIno: s.nextIno,
    inodes: s.inodes.map((i) => ({ ino: i.ino, refs: i.refs, type: i.type, at: i.at && { parent: i.at.parent, name: i.at.name } })),
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

/** saveOpfsState's value back, checked. */
export function readOpfsState(v: Saved, rootIno: Ino): OpfsState {
  const r = record(v, "opfs state");
  if (r.format !== FORMAT) throw new StateError(`opfs state: not ${FORMAT}`);
  const nextIno = int(r.nextIno, "nextIno", rootIno + 1);

  const inodes = new Map<Ino, SavedInode>();
  list(r.inodes, "inodes").forEach((item, i) => {
    const what = `inodes[${i}]`;
    const e = record(item, what);
    const ino = int(e.ino, `${what}.ino`, rootIno + 1, nextIno - 1);
    if (inodes.has(ino)) throw new StateError(`${what}: inode ${ino} twice`);
    const at = e.at === null ? null : record(e.at, `${what}.at`);
    inodes.set(ino, {
      ino,
      refs: int(e.refs, `${what}.refs`),
      type: fileType(e.type, `${what}.type`),
      at: at && { parent: int(at.parent, `${what}.at.parent`, rootIno, nextIno - 1), name: name(at.name, `${what}.at.name`) },
    });
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
    throw new StateError(`${what}: not a file or directory handle on a saved inode of its kind`);
  });

  return { nextIno, inodes: [...inodes.values()], nextHandle, handles };
}
