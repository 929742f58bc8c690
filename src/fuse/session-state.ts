// A FUSE session's part of a snapshot: what INIT agreed, the node ids the guest holds with their lookup
// counts, the handles it opened (numbers it will send again), zero-message open's handles, and the locks
// it holds on the device. The backend saves the objects behind the numbers (FileSystem.saveState).
import { F_UNLCK, OFFSET_MAX, type LockRequest } from "./locks.ts";
import type { Session } from "./session.ts";
import { FUSE_ROOT_ID } from "./abi.ts";
import { StateError, big, bool, int, list, record, str, type Saved } from "../vfs/state.ts";

const VERSION = 1;

export async function saveSession(s: Session): Promise<Saved> {
  const nodes = s.nodes.save();
  const inodeFiles = await s.inodeFiles.save();
  // Before the backend saves: the window's stores reach it here.
  const mapped = s.dax && (await s.dax.mappings.save());
  const dax = s.dax && mapped && { files: s.dax.openFiles(), extents: mapped.extents, mappingFiles: mapped.files };
  return {
    version: VERSION,
    cache: s.cache.mode,
    writeback: s.writeback,
    maxWrite: s.maxWrite,
    minor: s.minor,
    zeroOpen: s.zeroOpen,
    inodeDax: s.inodeDax,
    deviceLocks: s.deviceLocks,
    nodes: nodes.nodes,
    nextNodeId: nodes.nextId,
    openFiles: [...s.openFiles],
    openDirs: [...s.openDirs],
    inodeFiles: inodeFiles.files,
    retiredFiles: inodeFiles.retired,
    locks: s.locks.heldBy(s).map((l) => ({ ...l })),
    dax: dax ? { openFiles: dax.files, extents: dax.extents.map((e) => ({ ...e })), mappingFiles: dax.mappingFiles } : null,
  };
}

/**
 * Takes a saved session into `s`, a session with nothing open, over a backend that restored its own part.
 * StateError when the value is not a session state or was saved under other options (another cache mode
 * would break what INIT promised the guest).
 */
export function restoreSession(s: Session, saved: Saved): void {
  const v = record(saved, "FUSE session");
  if (int(v.version, "FUSE session version") !== VERSION) throw new StateError(`FUSE session state version ${String(v.version)} is not ${VERSION}`);
  const cache = str(v.cache, "cache");
  const writeback = bool(v.writeback, "writeback");
  const maxWrite = int(v.maxWrite, "maxWrite");
  if (cache !== s.cache.mode || writeback !== s.writeback || maxWrite !== s.maxWrite) {
    throw new StateError(`the snapshot's share ran with cache=${cache} writeback=${String(writeback)} max_write=${maxWrite}, this one with cache=${s.cache.mode} writeback=${String(s.writeback)} max_write=${s.maxWrite}`);
  }
  if (s.minor !== 0 || s.openFiles.size || s.openDirs.size || s.inodeFiles.size || s.nodes.size !== 1) throw new StateError("restore into a FUSE session already in use");

  const ino = (x: Saved | undefined, what: string) => int(x, what, 1);
  const nodes = list(v.nodes, "nodes").map((n, i) => {
    const [id, nodeIno, nlookup] = list(n, `nodes[${i}]`);
    return [int(id, `nodes[${i}] id`, 1), ino(nodeIno, `nodes[${i}] inode`), int(nlookup, `nodes[${i}] lookups`, 1)] as const;
  });
  const nextId = int(v.nextNodeId, "next node id", FUSE_ROOT_ID + 1);
  const ids = new Set(nodes.map(([id]) => id));
  const inos = new Set(nodes.map(([, i]) => i));
  const root = nodes.find(([id]) => id === FUSE_ROOT_ID);
  if (ids.size !== nodes.length || inos.size !== nodes.length || !root || root[1] !== s.fs.rootIno || nodes.some(([id]) => id >= nextId)) {
    throw new StateError("saved node table is inconsistent");
  }
  const handles = (x: Saved | undefined, what: string) => list(x, what).map((h, i) => int(h, `${what}[${i}]`, 1));
  const openFiles = handles(v.openFiles, "open files");
  const openDirs = handles(v.openDirs, "open directories");
  const files = list(v.inodeFiles, "inode files").map((e, i) => {
    const [fileIno, fh, write] = list(e, `inode files[${i}]`);
    return [ino(fileIno, "inode"), int(fh, "handle", 1), bool(write, "write")] as const;
  });
  const retired = list(v.retiredFiles, "retired files").map((e, i) => {
    const [fileIno, fh] = list(e, `retired files[${i}]`);
    return [ino(fileIno, "inode"), int(fh, "handle", 1)] as const;
  });
  const locks: LockRequest[] = list(v.locks, "locks").map((l, i) => {
    const r = record(l, `locks[${i}]`);
    const lock = {
      ino: ino(r.ino, "lock inode"),
      flock: bool(r.flock, "flock"),
      owner: big(r.owner, "lock owner"),
      fh: int(r.fh, "lock handle"),
      type: int(r.type, "lock type", 0, F_UNLCK - 1),
      start: big(r.start, "lock start"),
      end: big(r.end, "lock end"),
      pid: int(r.pid, "lock pid", 0, 0xffffffff),
    };
    if (lock.start < 0n || lock.start > lock.end || lock.end > OFFSET_MAX || lock.owner < 0n) throw new StateError(`locks[${i}]: bad range or owner`);
    return lock;
  });
  const deviceLocks = bool(v.deviceLocks, "deviceLocks");
  const minor = int(v.minor, "minor", 0, 0xffffffff);
  const zeroOpen = bool(v.zeroOpen, "zeroOpen");
  const inodeDax = bool(v.inodeDax, "inodeDax");
  const dax = v.dax === null ? null : readDax(record(v.dax, "DAX"));
  if ((dax === null) !== (s.dax === undefined)) throw new StateError(dax ? "the snapshot's share has a DAX window, this one none" : "this share has a DAX window, the snapshot's none");
  if (dax && s.dax) {
    try {
      s.dax.mappings.restore(dax);
    } catch (e) {
      throw new StateError(`DAX window: ${e instanceof Error ? e.message : String(e)}`);
    }
    s.dax.restoreFiles(dax.openFiles);
  }
  if (!s.locks.restoreHeld(s, locks)) throw new StateError("a saved lock conflicts with one another guest holds now");

  s.nodes.restore(nodes, nextId);
  openFiles.forEach((fh) => s.openFiles.add(fh));
  openDirs.forEach((dh) => s.openDirs.add(dh));
  s.inodeFiles.restore({ files, retired });
  s.minor = minor;
  s.zeroOpen = zeroOpen;
  s.inodeDax = inodeDax;
  s.deviceLocks = deviceLocks;
}

function readDax(v: { readonly [key: string]: Saved }) {
  const triple = (x: Saved, what: string) => {
    const [a, b, c] = list(x, what);
    return [int(a, `${what} handle or inode`, 1), int(b, `${what} inode or handle`, 1), c] as const;
  };
  return {
    openFiles: list(v.openFiles, "DAX open files").map((f, i) => {
      const [fh, ino, flags] = triple(f, `DAX open files[${i}]`);
      return [fh, ino, int(flags, "open flags", 0, 0xffffffff)] as const;
    }),
    files: list(v.mappingFiles, "DAX mapping files").map((f, i) => {
      const [ino, fh, write] = triple(f, `DAX mapping files[${i}]`);
      return [ino, fh, bool(write, "write")] as const;
    }),
    extents: list(v.extents, "DAX extents").map((x, i) => {
      const e = record(x, `DAX extents[${i}]`);
      const n = (f: Saved | undefined, what: string, min = 0) => int(f, `DAX extents[${i}].${what}`, min);
      return { offset: n(e.offset, "offset"), length: n(e.length, "length", 1), owner: n(e.owner, "owner", 1), fileOffset: n(e.fileOffset, "fileOffset"), writable: bool(e.writable, "writable") };
    }),
  };
}
