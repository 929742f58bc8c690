// The memfs backend's part of a snapshot: the whole tree with its data and side table, and the session
// tables, as one Saved value (format "memfs/1"):
//
//   { format, nextIno, nodes: [node, …], inodes: InodeTable state, handles: HandleTable state }
//
// nodes[0] is the root; everything else refers to a node by its index. A node is
//   { ino (null while the backend has not numbered it), mode, uid, gid, rdev, nlink,
//     atime, mtime, ctime: [sec, nsec], btime: ms, alive (still in the Superblock's inode table),
//     opens, linkable, xattrs: [[name, value], …] }
// plus, for a directory, `entries`: [[name, node], …] in listing order; for a symlink, `target`; for a
// regular file, `size` and `chunks`: [[index, bytes], …], the chunks present only, so holes stay holes.
// Every directory but the root is named by at most one entry; one named by none is a removed directory
// still referenced. The inode table's values are node indices; a file handle is { kind: "file", node, how },
// a directory handle { kind: "dir", node, listing } (DirStream's state).
//
// Saving references the nodes' bytes (encodeState copies them once); restoring copies them, since a Saved
// value may be another live tree's. Restoring reads and checks the whole value before it builds anything
// in the Superblock, so a bad state (StateError) leaves the backend as fresh as it was.

import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, XATTR_SIZE_MAX } from "../../vfs/linux.ts";
import type { Ino, Timespec } from "../../vfs/filesystem.ts";
import { bool, bytes, int, list, record, StateError, type Saved } from "../../vfs/state.ts";
import { checkName, checkSymlinkTarget, checkXattrName, type OpenMode } from "../posix.ts";
import { checked, fileType, openModeOf, saveOpenMode } from "../saved.ts";
import { DirStream, HandleTable, InodeTable, type DirListing } from "../tables.ts";
import type { Link, MemHandle, MemInode, NodeState, Superblock } from "./memfs.ts";
import { BLOCK_SIZE, savedContent, sparseData, type Node } from "./sparse.ts";
import { dateOf, timespec, type TimeField } from "./times.ts";

const FORMAT = "memfs/1";
const TIME_FIELDS: readonly TimeField[] = ["atime", "mtime", "ctime"];
const U32 = 0xffff_ffff;

/** What saving needs of a MemFs. */
export interface MemFsView {
  core: Superblock;
  nextIno: Ino;
  inodes: InodeTable<MemInode>;
  handles: HandleTable<MemHandle>;
  inoOf(node: Node): Ino | undefined;
  stateOf(node: Node): NodeState | undefined;
  timeOf(node: Node, field: TimeField): Timespec;
}

/** What restoring builds for a MemFs to swap in. */
export interface RestoredMemFs {
  nextIno: Ino;
  inos: WeakMap<Node, Ino>;
  states: WeakMap<Node, NodeState>;
  inodes: InodeTable<MemInode>;
  handles: HandleTable<MemHandle>;
}

export function saveMemFs(fs: MemFsView): Saved {
  // Nodes are numbered in the order first met: the root, those the tables hold, then the tree breadth first.
  const index = new Map<Node, number>();
  const order: { node: Node; dir: Link | undefined }[] = [];
  const add = (node: Node, dir: Link | undefined): number => {
    let i = index.get(node);
    if (i === undefined) {
      i = order.push({ node, dir }) - 1;
      index.set(node, i);
    }
    return i;
  };
  add(fs.core.root.node, fs.core.root);
  for (const { node, dir } of fs.inodes.values()) add(node, dir);
  for (const h of fs.handles.values()) {
    if (h.kind === "file") add(h.node, undefined);
    else add(h.dir.node, h.dir);
  }
  const indexOf = (node: Node): number => {
    const i = index.get(node);
    if (i === undefined) throw new Error("memfs saveState: a table names a node it did not save");
    return i;
  };
  const nodes: Saved[] = [];
  for (let i = 0; i < order.length; i++) {
    const { node, dir } = order[i]!;
    const saved: Record<string, Saved> = {
      ino: fs.inoOf(node) ?? null,
      mode: node.mode,
      uid: node.uid,
      gid: node.gid,
      rdev: node.rdev,
      nlink: node.nlink,
      btime: node.btime.getTime(),
      alive: fs.core.inodes[node.ino] === node,
    };
    for (const field of TIME_FIELDS) {
      const { sec, nsec } = fs.timeOf(node, field);
      saved[field] = [sec, nsec];
    }
    const state = fs.stateOf(node);
    saved.opens = state?.opens ?? 0;
    saved.linkable = state?.linkable ?? false;
    saved.xattrs = [...(state?.xattrs ?? [])];
    const type = node.mode & S_IFMT;
    if (type === S_IFDIR) {
      const entries: Saved[] = [];
      for (const [name, link] of dir?.children ?? []) {
        if (link === undefined || name === "." || name === "..") continue;
        entries.push([name, add(link.node, link.node.isDirectory() ? link : undefined)]);
      }
      saved.entries = entries;
    } else if (type === S_IFLNK) saved.target = node.symlink;
    else if (type === S_IFREG) {
      const { size, chunks } = savedContent(node);
      saved.size = size;
      saved.chunks = chunks;
    }
    nodes.push(saved);
  }
  return {
    format: FORMAT,
    nextIno: fs.nextIno,
    nodes,
    inodes: fs.inodes.saveState((inode) => indexOf(inode.node)),
    handles: fs.handles.saveState((h): Saved =>
      h.kind === "file"
        ? { kind: "file", node: indexOf(h.node), how: saveOpenMode(h.how) }
        : { kind: "dir", node: indexOf(h.dir.node), listing: h.stream.saveState() },
    ),
  };
}

/** A node as read from the state, checked. */
interface NodePlan {
  ino: Ino | undefined;
  type: number;
  mode: number;
  uid: number;
  gid: number;
  rdev: number;
  nlink: number;
  times: Record<TimeField, Timespec>;
  btime: number;
  alive: boolean;
  opens: number;
  linkable: boolean;
  xattrs: [string, Uint8Array][];
  entries: [string, number][];
  target: string;
  size: number;
  chunks: [number, Uint8Array][];
  /** The directory whose entry names this directory (set by checkTree). */
  parent?: number;
}

type HandlePlan = { kind: "file"; node: number; how: OpenMode } | { kind: "dir"; node: number; ino: Ino; listing: DirListing | undefined };

/**
 * Builds saveMemFs's tree into `core` (the root of a fresh Superblock) and returns the tables to swap in.
 * `listing` makes a directory handle's list function.
 */
export async function restoreMemFs(state: Saved, core: Superblock, rootIno: Ino, listing: (ino: Ino, dir: Link) => () => DirListing): Promise<RestoredMemFs> {
  // First read everything, building nothing in the Superblock.
  const saved = record(state, "memfs state");
  if (saved.format !== FORMAT) throw new StateError(`memfs state: format is not ${FORMAT}`);
  const nextIno = int(saved.nextIno, "nextIno", rootIno + 1);
  const plans = list(saved.nodes, "nodes").map((v, i, all) => readNode(v, i, all.length, rootIno, nextIno));
  if (plans.length === 0) throw new StateError("memfs state: no root node");
  checkTree(plans);
  // The tables hold node indices until the nodes exist.
  const inodePlans = InodeTable.restoreState(saved.inodes, rootIno, 0, nextIno, (v, ino) => {
    const i = int(v, `inode ${ino}'s node`, 0, plans.length - 1);
    if (plans[i]!.ino !== ino) throw new StateError(`inode ${ino} names node ${i}, which has another number`);
    return i;
  });
  const handlePlans = HandleTable.restoreState(saved.handles, (v, h): HandlePlan => {
    const r = record(v, `handle ${h}`);
    const i = int(r.node, `handle ${h}'s node`, 0, plans.length - 1);
    const plan = plans[i]!;
    if (r.kind === "file") {
      if (plan.type !== S_IFREG) throw new StateError(`file handle ${h} on a node that is not a regular file`);
      return { kind: "file", node: i, how: openModeOf(r.how, `handle ${h}.how`) };
    }
    if (r.kind !== "dir") throw new StateError(`handle ${h}: unknown kind`);
    const ino = plan.ino;
    if (plan.type !== S_IFDIR || ino === undefined) throw new StateError(`directory handle ${h} on a node that is not a numbered directory`);
    return { kind: "dir", node: i, ino, listing: DirStream.readState(r.listing, `handle ${h}.listing`, nextIno) };
  });
  const opens = plans.map(() => 0);
  for (const h of handlePlans.values()) if (h.kind === "file") opens[h.node]!++;
  plans.forEach((plan, i) => {
    if (plan.opens !== opens[i]) throw new StateError(`node ${i} counts ${plan.opens} opens for ${opens[i]} file handles`);
  });

  // Then build: nodes, the links of the tree (and of removed directories), and last the fields that
  // building moved (link counts, times).
  const nodes = plans.map((plan, i) => (i === 0 ? core.root.node : core.createNode(plan.mode)));
  const links: (Link | undefined)[] = [core.root];
  const linkOf = (i: number): Link => {
    const link = links[i];
    if (link === undefined) throw new Error(`memfs restore: node ${i} has no directory entry`);
    return link;
  };
  const pending: number[] = [0];
  plans.forEach((plan, i) => {
    if (i === 0 || plan.type !== S_IFDIR || plan.parent !== undefined) return;
    // A removed directory: an entry made and deleted again, as rmdir leaves it.
    const link = core.root.createChild("removed", nodes[i]!);
    core.root.deleteChild(link);
    links[i] = link;
    pending.push(i);
  });
  for (let at = 0; at < pending.length; at++) {
    const dir = linkOf(pending[at]!);
    for (const [name, child] of plans[pending[at]!]!.entries) {
      const link = dir.createChild(name, nodes[child]!);
      if (plans[child]!.type === S_IFDIR) {
        links[child] = link;
        pending.push(child);
      }
    }
  }
  const inos = new WeakMap<Node, Ino>();
  const states = new WeakMap<Node, NodeState>();
  plans.forEach((plan, i) => {
    const node = nodes[i]!;
    if (plan.ino !== undefined) inos.set(node, plan.ino);
    node.mode = plan.mode;
    node.rdev = plan.rdev;
    node.uid = plan.uid;
    node.gid = plan.gid;
    node.nlink = plan.nlink;
    if (plan.type === S_IFLNK) node.symlink = plan.target;
    if (plan.type === S_IFREG) sparseData(node).load(plan.size, plan.chunks);
    const exact: NodeState["exact"] = {};
    for (const field of TIME_FIELDS) {
      const time = plan.times[field];
      const date = dateOf(time);
      node[field] = date; // mtime's setter moves ctime: ctime comes last
      const held = timespec(date);
      if (held.sec !== time.sec || held.nsec !== time.nsec) exact[field] = { date, time };
    }
    node.btime = new Date(plan.btime);
    if (plan.xattrs.length > 0 || plan.opens > 0 || plan.linkable || Object.keys(exact).length > 0) {
      states.set(node, { xattrs: new Map(plan.xattrs.map(([name, value]) => [name, value.slice()])), opens: plan.opens, linkable: plan.linkable, exact });
    }
    if (!plan.alive) core.deleteNode(node);
  });

  const inode = (i: number): MemInode => ({ node: nodes[i]!, dir: plans[i]!.type === S_IFDIR ? linkOf(i) : undefined });
  return {
    nextIno,
    inos,
    states,
    inodes: await inodePlans.map(inode(0), inode),
    handles: await handlePlans.map((plan): MemHandle => {
      if (plan.kind === "file") return { kind: "file", node: nodes[plan.node]!, how: plan.how };
      const dir = linkOf(plan.node);
      return { kind: "dir", dir, stream: new DirStream(listing(plan.ino, dir), plan.listing) };
    }),
  };
}

function readNode(v: Saved, i: number, count: number, rootIno: Ino, nextIno: Ino): NodePlan {
  const what = `node ${i}`;
  const r = record(v, what);
  const ino = r.ino === null ? undefined : int(r.ino, `${what}: ino`, 1, nextIno - 1);
  if ((i === 0) !== (ino === rootIno)) throw new StateError(`${what}: only the root (node 0) has inode ${rootIno}`);
  const mode = int(r.mode, `${what}: mode`, 0, 0o177777);
  const type = fileType(mode & S_IFMT, `${what}: mode ${mode.toString(8)}`);
  if (i === 0 && type !== S_IFDIR) throw new StateError(`${what}: a root that is no directory`);
  const time = (field: TimeField): Timespec => {
    const [sec, nsec] = pair(r[field], `${what}: ${field}`);
    return { sec: int(sec, `${what}: ${field}`, -Number.MAX_SAFE_INTEGER), nsec: int(nsec, `${what}: ${field}`, 0, 999_999_999) };
  };
  const xattrs = list(r.xattrs, `${what}: xattrs`).map((item): [string, Uint8Array] => {
    const [name, value] = pair(item, `${what}: xattr`);
    const checkedName = checked(name, `${what}: xattr name`, checkXattrName);
    const data = bytes(value, `${what}: xattr ${checkedName}`);
    if (data.length > XATTR_SIZE_MAX) throw new StateError(`${what}: xattr ${checkedName} is too large`);
    return [checkedName, data];
  });
  if (new Set(xattrs.map(([name]) => name)).size !== xattrs.length) throw new StateError(`${what}: an xattr saved twice`);
  const plan: NodePlan = {
    ino,
    type,
    mode,
    uid: int(r.uid, `${what}: uid`, 0, U32),
    gid: int(r.gid, `${what}: gid`, 0, U32),
    rdev: int(r.rdev, `${what}: rdev`),
    nlink: int(r.nlink, `${what}: nlink`, 0, U32),
    times: { atime: time("atime"), mtime: time("mtime"), ctime: time("ctime") },
    btime: int(r.btime, `${what}: btime`, -8.64e15, 8.64e15),
    alive: bool(r.alive, `${what}: alive`),
    opens: int(r.opens, `${what}: opens`),
    linkable: bool(r.linkable, `${what}: linkable`),
    xattrs,
    entries: [],
    target: "",
    size: 0,
    chunks: [],
  };
  if (type === S_IFDIR) {
    plan.entries = list(r.entries, `${what}: entries`).map((item): [string, number] => {
      const [name, child] = pair(item, `${what}: entry`);
      return [checked(name, `${what}: entry name`, checkName), int(child, `${what}: entry's node`, 1, count - 1)];
    });
    if (new Set(plan.entries.map(([name]) => name)).size !== plan.entries.length) throw new StateError(`${what}: a name saved twice`);
  } else if (type === S_IFLNK) plan.target = checked(r.target, `${what}: target`, checkSymlinkTarget);
  else if (type === S_IFREG) {
    plan.size = int(r.size, `${what}: size`);
    let next = 0;
    plan.chunks = list(r.chunks, `${what}: chunks`).map((item): [number, Uint8Array] => {
      const [index, data] = pair(item, `${what}: chunk`);
      const at = int(index, `${what}: chunk index (ascending)`, next, Math.floor(Number.MAX_SAFE_INTEGER / BLOCK_SIZE));
      const chunk = bytes(data, `${what}: chunk ${at}`);
      if (chunk.length === 0 || chunk.length > BLOCK_SIZE) throw new StateError(`${what}: chunk ${at} of ${chunk.length} bytes`);
      // A file reads zeros past its end without looking (sparse.ts): the state must hold them so.
      if (chunk.subarray(Math.max(0, plan.size - at * BLOCK_SIZE)).some((b) => b !== 0)) throw new StateError(`${what}: data past the end of the file`);
      next = at + 1;
      return [at, chunk];
    });
  }
  return plan;
}

/**
 * Checks what no single node shows: numbers used once, directories named at most once and hanging from
 * the root or a removed directory (never from a cycle), a file's link count its entries, a node in the
 * tree still in the Superblock.
 */
function checkTree(plans: NodePlan[]): void {
  const inos = new Set<Ino>();
  const links = plans.map(() => 0);
  plans.forEach((plan, i) => {
    if (plan.ino !== undefined) {
      if (inos.has(plan.ino)) throw new StateError(`inode ${plan.ino} saved twice`);
      inos.add(plan.ino);
    }
    for (const [, child] of plan.entries) {
      const sub = plans[child]!;
      if (sub.type === S_IFDIR) {
        if (sub.parent !== undefined) throw new StateError(`directory node ${child} has two entries`);
        sub.parent = i;
      }
      links[child]!++;
    }
  });
  // Each directory has at most one parent, so these walks end, and a cycle is reached by none of them.
  const reached = plans.map(() => false);
  const walk = (from: number): boolean[] => {
    const inside = plans.map(() => false);
    inside[from] = reached[from] = true;
    const queue = [from];
    for (let at = 0; at < queue.length; at++) {
      for (const [, child] of plans[queue[at]!]!.entries) {
        inside[child] = reached[child] = true;
        if (plans[child]!.type === S_IFDIR) queue.push(child);
      }
    }
    return inside;
  };
  const inTree = walk(0);
  plans.forEach((plan, i) => {
    if (i !== 0 && plan.type === S_IFDIR && plan.parent === undefined) walk(i);
  });
  plans.forEach((plan, i) => {
    if (!reached[i] && plan.type === S_IFDIR) throw new StateError(`directory node ${i} is in a cycle`);
    if (plan.type !== S_IFDIR && plan.nlink !== links[i]) throw new StateError(`node ${i} has nlink ${plan.nlink} for ${links[i]} entries`);
    if (inTree[i] && !plan.alive) throw new StateError(`node ${i} is in the tree but freed`);
  });
}

function pair(v: Saved | undefined, what: string): [Saved, Saved] {
  const items = list(v, what);
  if (items.length !== 2) throw new StateError(`${what}: not a pair`);
  return [items[0]!, items[1]!];
}
