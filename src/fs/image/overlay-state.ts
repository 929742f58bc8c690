// An OverlayFs's part of a snapshot: both layers' own states, and the overlay's inode table (every object
// it has numbered, so that numbers stay stable), the guest's references, the handles (with the layer
// handles under them) and the layer references the overlay holds.

import type { FileSystem, Ino } from "../../vfs/filesystem.ts";
import { S_IFDIR } from "../../vfs/linux.ts";
import { int, list, record, StateError, str, type Saved } from "../../vfs/state.ts";
import { fileType, name, openModeOf, saveOpenMode } from "../saved.ts";
import { DirStream, HandleTable, InodeTable, type DirListing } from "../tables.ts";
import type { Layer } from "./overlay-layer.ts";
import type { OHandle, OInode } from "./overlay.ts";

export interface OverlayParts {
  rootIno: Ino;
  upper: FileSystem;
  lower: FileSystem;
  nextIno: Ino;
  nodes: ReadonlyMap<Ino, OInode>;
  live: InodeTable<OInode>;
  handles: HandleTable<OHandle>;
  up: Layer;
  low: Layer;
}

export async function saveOverlay(p: OverlayParts): Promise<Saved> {
  if (p.upper.saveState === undefined || p.lower.saveState === undefined) throw new Error("overlay: a layer without saveState cannot be part of a snapshot");
  const opt = (v: number | undefined): Saved => v ?? null;
  return {
    upper: await p.upper.saveState(),
    lower: await p.lower.saveState(),
    nextIno: p.nextIno,
    nodes: [...p.nodes.values()]
      .filter((o) => o.ino !== p.rootIno)
      .map((o) => ({
        ino: o.ino,
        type: o.type,
        upper: opt(o.upper),
        lower: opt(o.lower),
        names: o.names.map((n) => ({ parent: n.parent.ino, name: n.name })),
        lowerLinks: o.lowerLinks,
        lowerGone: o.lowerGone,
      })),
    inodes: p.live.saveState(() => null),
    handles: p.handles.saveState(
      (h): Saved => (h.kind === "file" ? { kind: "file", ino: h.o.ino, layer: h.layer, fh: h.fh, how: saveOpenMode(h.how), flags: h.flags } : { kind: "dir", ino: h.o.ino, listing: h.stream.saveState() }),
    ),
    held: { upper: [...p.up.held], lower: [...p.low.held] },
  };
}

export interface RestoreContext {
  upper: FileSystem;
  lower: FileSystem;
  root: OInode;
  up: Layer;
  low: Layer;
  list(o: OInode): Promise<DirListing>;
}

/** saveOverlay's value: the overlay's part checked whole before either layer restores anything. */
export async function restoreOverlay(state: Saved, c: RestoreContext): Promise<{ nextIno: Ino; nodes: Map<Ino, OInode>; live: InodeTable<OInode>; handles: HandleTable<OHandle> }> {
  if (c.upper.restoreState === undefined || c.lower.restoreState === undefined) throw new Error("overlay: a layer without restoreState cannot be restored");
  const s = record(state, "overlay state");
  const nextIno = int(s.nextIno, "next inode", c.root.ino + 1);
  const optIno = (v: Saved | undefined, what: string): Ino | undefined => (v === null ? undefined : int(v, what, 1));
  const nodes = new Map<Ino, OInode>([[c.root.ino, c.root]]);
  const names = new Map<OInode, readonly Saved[]>();
  for (const item of list(s.nodes, "overlay inodes")) {
    const r = record(item, "overlay inode");
    const ino = int(r.ino, "overlay inode number", c.root.ino + 1, nextIno - 1);
    if (nodes.has(ino)) throw new StateError(`overlay inode ${ino} saved twice`);
    const o: OInode = {
      ino,
      type: fileType(r.type, `type of overlay inode ${ino}`),
      upper: optIno(r.upper, `upper inode of ${ino}`),
      lower: optIno(r.lower, `lower inode of ${ino}`),
      names: [],
      lowerLinks: int(r.lowerLinks, `lower links of ${ino}`),
      lowerGone: int(r.lowerGone, `lower names gone of ${ino}`),
      opens: 0,
      copying: undefined,
    };
    if (o.upper === undefined && o.lower === undefined) throw new StateError(`overlay inode ${ino} is in neither layer`);
    nodes.set(ino, o);
    names.set(o, list(r.names, `names of overlay inode ${ino}`));
  }
  for (const [o, saved] of names) {
    o.names = saved.map((item) => {
      const n = record(item, `a name of overlay inode ${o.ino}`);
      const parentIno = int(n.parent, `parent of overlay inode ${o.ino}`, 1);
      const parent = nodes.get(parentIno);
      if (parent?.type !== S_IFDIR) throw new StateError(`overlay inode ${o.ino}: parent ${parentIno} is no directory`);
      return { parent, name: name(n.name, `name of overlay inode ${o.ino}`) };
    });
  }
  const nodeAt = (ino: Ino, what: string): OInode => {
    const o = nodes.get(ino);
    if (o === undefined) throw new StateError(`${what}: no overlay inode ${ino}`);
    return o;
  };
  const live = InodeTable.restoreState(s.inodes, c.root.ino, c.root, nextIno, (_v, ino) => nodeAt(ino, "reference"));
  const handles = HandleTable.restoreState<OHandle>(s.handles, (v) => {
    const h = record(v, "overlay handle");
    const o = nodeAt(int(h.ino, "handle inode", 1), "handle");
    o.opens++;
    if (h.kind === "dir") {
      if (o.type !== S_IFDIR) throw new StateError(`directory handle on overlay inode ${o.ino}`);
      return { kind: "dir", o, stream: new DirStream(() => c.list(o), DirStream.readState(h.listing, "listing", nextIno)) };
    }
    if (h.kind !== "file") throw new StateError("overlay handle: not a file or directory handle");
    const layer = str(h.layer, "handle layer");
    if (layer !== "upper" && layer !== "lower") throw new StateError(`handle layer ${layer}`);
    return { kind: "file", o, layer, fh: int(h.fh, "layer handle", 1), how: openModeOf(h.how, "handle mode"), flags: int(h.flags, "open flags", 0, 0xffffffff), switching: undefined };
  });
  const held = record(s.held, "held references");
  const heldUpper = list(held.upper, "held upper inodes").map((v) => int(v, "held upper inode", 1));
  const heldLower = list(held.lower, "held lower inodes").map((v) => int(v, "held lower inode", 1));
  await c.upper.restoreState(s.upper ?? null);
  await c.lower.restoreState(s.lower ?? null);
  for (const ino of heldUpper) c.up.held.add(ino);
  for (const ino of heldLower) c.low.held.add(ino);
  return { nextIno, nodes, live, handles };
}
