// FUSE node ids and the kernel's lookup counts. The kernel holds a node id from the reply that
// introduced it (LOOKUP, READDIRPLUS, CREATE, …) until FORGET drops its count to zero; any other node id
// it sends is hostile or stale and is refused.
import { FUSE_ROOT_ID } from "./abi.ts";
import type { Ino } from "../vfs/filesystem.ts";

interface Node {
  ino: Ino;
  /** Outstanding lookups; the root's is never dropped. */
  nlookup: number;
}

export class NodeTable {
  private readonly byId = new Map<number, Node>();
  private readonly byIno = new Map<Ino, number>();
  private nextId = FUSE_ROOT_ID + 1;

  constructor(private readonly rootIno: Ino) {
    this.clear();
  }

  /** The backend inode behind a node id from the guest, or undefined if the guest holds no such node. */
  ino(nodeid: bigint): Ino | undefined {
    return nodeid > 0n && nodeid <= BigInt(Number.MAX_SAFE_INTEGER) ? this.byId.get(Number(nodeid))?.ino : undefined;
  }

  /** The node id the guest holds for `ino`, if any. */
  nodeid(ino: Ino): number | undefined {
    return this.byIno.get(ino);
  }

  /** Counts one lookup of `ino` and returns its node id (the same id for every name of one inode). */
  ref(ino: Ino): number {
    let id = this.byIno.get(ino);
    if (id === undefined) {
      id = this.nextId++;
      this.byId.set(id, { ino, nlookup: 0 });
      this.byIno.set(ino, id);
    }
    const node = this.byId.get(id);
    if (node) node.nlookup++;
    return id;
  }

  /**
   * Drops up to `nlookup` lookups of a node; returns the inode and how many references the backend should
   * drop, or undefined for an unknown node. Never drops the root, and never more than was counted.
   */
  forget(nodeid: bigint, nlookup: bigint): { ino: Ino; dropped: number } | undefined {
    if (nodeid === BigInt(FUSE_ROOT_ID)) return undefined;
    const ino = this.ino(nodeid);
    if (ino === undefined) return undefined;
    const id = Number(nodeid);
    const node = this.byId.get(id);
    if (!node) return undefined;
    const dropped = nlookup >= BigInt(node.nlookup) ? node.nlookup : Number(nlookup);
    node.nlookup -= dropped;
    if (node.nlookup === 0) {
      this.byId.delete(id);
      this.byIno.delete(ino);
    }
    return { ino, dropped };
  }

  /** Nodes the kernel holds, the root included. */
  get size(): number {
    return this.byId.size;
  }

  /** Every (inode, lookups) the kernel holds except the root: what a session end must give back. */
  *held(): Generator<{ ino: Ino; nlookup: number }> {
    for (const [id, n] of this.byId) if (id !== FUSE_ROOT_ID) yield { ino: n.ino, nlookup: n.nlookup };
  }

  /** Every node (id, inode, lookups) and the next id to issue: for a snapshot. */
  save(): { nodes: [id: number, ino: Ino, nlookup: number][]; nextId: number } {
    return { nodes: [...this.byId].map(([id, n]) => [id, n.ino, n.nlookup]), nextId: this.nextId };
  }

  /** Takes saved nodes back (the caller checked the numbers); the root must be among them, as saved. */
  restore(nodes: readonly (readonly [id: number, ino: Ino, nlookup: number])[], nextId: number): void {
    this.byId.clear();
    this.byIno.clear();
    for (const [id, ino, nlookup] of nodes) {
      this.byId.set(id, { ino, nlookup });
      this.byIno.set(ino, id);
    }
    this.nextId = nextId;
  }

  clear(): void {
    this.byId.clear();
    this.byIno.clear();
    this.byId.set(FUSE_ROOT_ID, { ino: this.rootIno, nlookup: 1 });
    this.byIno.set(this.rootIno, FUSE_ROOT_ID);
  }
}
