// The FUSE server behind the virtio-fs request queues: decodes fuse_in_header and the opcode's
// arguments from a descriptor chain, runs one handler per opcode against a FileSystem, and writes
// fuse_out_header + payload into the chain. Everything the guest sends is checked first; a bad request
// gets an errno, a backend fault gets EIO (logged once), and nothing here throws to the device. Over a
// backend that answers at once, so does the server (src/vfs/awaitable.ts): the reply is in the chain when
// `handle` returns, inside the guest's notify.
import { run, type Awaitable, type Op } from "../vfs/awaitable.ts";
import { Errno } from "../vfs/errno.ts";
import { FsError, type FileSystem } from "../vfs/filesystem.ts";
import { StateError, type Saved } from "../vfs/state.ts";
import { FuseOpcode, XATTR_SIZE_MAX, decode, fuse_in_header, fuse_out_header, fuse_write_in, fuseOpcodeName } from "./abi.ts";
import { PATH_MAX } from "../vfs/linux.ts";
import type { DaxSnapshot } from "./dax.ts";
import { DaxCoherentFs } from "./dax-coherent-fs.ts";
import type { FuseDaxWindow } from "./dax-window.ts";
import { InodeFiles } from "./inode-files.ts";
import { lockTableOf } from "./locks.ts";
import { NodeTable } from "./nodes.ts";
import { RequestError, type Handler } from "./ops/common.ts";
import { HANDLERS } from "./ops/index.ts";
import { restoreSession, saveSession } from "./session-state.ts";
import { NO_REPLY, cachePolicy, endSession, type CacheMode, type FuseRequest, type LockMode, type Reply, type Session } from "./session.ts";

/** One descriptor of a request's chain (struct virtq_desc as the device walked it), shown to the observer. */
export interface ChainDescriptor {
  /** Index in the descriptor table, or in the indirect table when `indirect`. */
  readonly index: number;
  /** Guest physical address. */
  readonly addr: number;
  readonly len: number;
  /** virtq_desc.flags: VIRTQ_DESC_F_NEXT 1, VIRTQ_DESC_F_WRITE 2 (device-writable), VIRTQ_DESC_F_INDIRECT 4. */
  readonly flags: number;
  readonly indirect: boolean;
}

/**
 * What the server needs of a request's descriptor chain (the device's DescriptorChain is one): its
 * device-readable bytes, and room in its device-writable part for the reply; its descriptors, when the
 * device lists them, only go to the observer.
 */
export interface RequestChain {
  readonly reader: { readonly readable: number; read(n: number): Uint8Array };
  readonly writer: { readonly writable: number; write(bytes: Uint8Array): void };
  readonly descriptors?: readonly ChainDescriptor[];
}

export interface FuseServerOptions {
  fs: FileSystem;
  /** Default auto. */
  cache?: CacheMode;
  /** FUSE_WRITEBACK_CACHE: the guest's page cache gathers writes. */
  writeback?: boolean;
  /** Largest WRITE payload and READ the guest may send (bytes, a multiple of 4096). */
  maxWrite?: number;
  log?(message: string): void;
  /** Sees every request and reply (the page's protocol inspector). */
  observer?: FuseObserver;
  /**
   * The device's DAX window: FUSE_SETUPMAPPING and FUSE_REMOVEMAPPING map files into it, and the handlers
   * see the backend through a DaxCoherentFs that keeps it coherent with the window.
   */
  dax?: FuseDaxWindow;
  /**
   * With dax=inode, the regular files the server puts in the window (FUSE_ATTR_DAX): those of at least this
   * many bytes (default 0: every one). A smaller file costs less through the page cache than a 2 MiB
   * mapping; the guest moves a file that crosses the line when it next instantiates its inode.
   */
  daxInodeMinSize?: number;
  /** Who keeps file locks (default auto: the device once another server shares `fs`). */
  locks?: LockMode;
}

/**
 * One request as the inspector sees it: `header` (fuse_in_header) and `args` (the bytes after it) are what
 * the server read from the chain (copy what you keep: do not keep a reference).
 */
export interface RequestTrace {
  queue: number;
  opcode: number;
  unique: bigint;
  nodeid: bigint;
  header: Uint8Array;
  args: Uint8Array;
  /** The chain's descriptors, where the device lists them (empty otherwise). */
  chain: readonly ChainDescriptor[];
}

export interface FuseObserver {
  request(t: RequestTrace): void;
  /**
   * error is 0 or a negative errno; bytes is what went into the chain, `written` those bytes in order
   * (fuse_out_header, then the payload's parts: views, copy what you keep); no call for requests without reply.
   */
  reply(t: RequestTrace, error: number, bytes: number, ms: number, written: readonly Uint8Array[]): void;
}

export const DEFAULT_MAX_WRITE = 1 << 20;
const OUT_HEADER = fuse_out_header.SIZE;
/** Arguments of any opcode but WRITE: SETXATTR's struct, name and value, or two PATH_MAX paths. */
const ARGS_MAX = XATTR_SIZE_MAX + 2 * PATH_MAX;

export class FuseServer {
  private readonly session: Session;
  private readonly logged = new Set<string>();
  /** Requests being served, and the end of the session being reset (requests arriving meanwhile wait for it). */
  private readonly running = new Set<Promise<number>>();
  private ending: Promise<void> | undefined;
  /** Takes this server out of the backend's count of servers (close). */
  private readonly leave: () => void;

  constructor(private readonly o: FuseServerOptions) {
    const dax = o.dax && new DaxCoherentFs(o.fs, o.dax, (m) => this.logOnce(m));
    const fs = dax ?? o.fs;
    this.session = {
      fs,
      cache: cachePolicy(o.cache ?? "auto"),
      writeback: o.writeback ?? false,
      maxWrite: o.maxWrite ?? DEFAULT_MAX_WRITE,
      nodes: new NodeTable(o.fs.rootIno),
      openFiles: new Set(),
      openDirs: new Set(),
      minor: 0,
      dax,
      inodeDax: false,
      daxInodeMinSize: o.daxInodeMinSize ?? 0,
      zeroOpen: false,
      inodeFiles: new InodeFiles(fs),
      locks: lockTableOf(o.fs),
      lockMode: o.locks ?? "auto",
      deviceLocks: false,
    };
    this.leave = this.session.locks.join();
  }

  /** Whether the session now running keeps its locks on the device (agreed at INIT). */
  get deviceLocks(): boolean {
    return this.session.deviceLocks;
  }

  /** Node ids the guest holds (the root included): the inode table shrinks back after umount. */
  get nodeCount(): number {
    return this.session.nodes.size;
  }

  /** Backend handles the session holds: those the guest opened, and zero-message open's one per inode. */
  get openHandles(): number {
    return this.session.openFiles.size + this.session.openDirs.size + this.session.inodeFiles.size;
  }

  /** What the DAX window maps now (for the inspector); undefined without a window. */
  daxSnapshot(): DaxSnapshot | undefined {
    return this.session.dax?.mappings.snapshot(this.session.nodes);
  }

  /**
   * The RequestHandler of the virtio-fs device: the bytes written into the chain, or a Promise of them when
   * the backend makes the request wait. A request that arrives while a session is ending waits until it
   * has ended, so what it takes belongs to the next session.
   */
  readonly handle = (chain: RequestChain, queue = 1): Awaitable<number> => {
    let served: Awaitable<number>;
    if (!this.ending) served = run(this.serve(chain, queue));
    else {
      const serve = () => run(this.serve(chain, queue));
      served = this.ending.then(serve, serve);
    }
    if (!(served instanceof Promise)) return served;
    this.running.add(served);
    const forget = () => this.running.delete(served);
    served.then(forget, forget);
    return served;
  };

  private *serve(chain: RequestChain, queue: number): Op<number> {
    const reader = chain.reader;
    if (reader.readable < fuse_in_header.SIZE) return 0; // no unique to answer to
    const header = reader.read(fuse_in_header.SIZE);
    const h = decode(fuse_in_header, new DataView(header.buffer), 0);
    let reply: Reply;
    const argBytes = reader.readable - fuse_in_header.SIZE;
    if (h.len !== reader.readable) {
      reply = Errno.EINVAL; // fuse_in_header.len must describe exactly what the chain carries
    } else if (argBytes > this.argsLimit(h.opcode)) {
      reply = Errno.EINVAL; // more than the opcode can use: never copied
    } else {
      const args = reader.read(argBytes);
      const req: FuseRequest = {
        opcode: h.opcode,
        unique: h.unique,
        nodeid: h.nodeid,
        uid: h.uid,
        gid: h.gid,
        pid: h.pid,
        args,
        argsView: new DataView(args.buffer, args.byteOffset, args.byteLength),
        room: chain.writer.writable - OUT_HEADER,
      };
      const obs = this.o.observer;
      if (!obs) reply = yield* this.dispatch(req);
      else {
        const trace: RequestTrace = { queue, opcode: h.opcode, unique: h.unique, nodeid: h.nodeid, header, args, chain: chain.descriptors ?? [] };
        const t0 = performance.now();
        obs.request(trace);
        reply = yield* this.dispatch(req);
        if (reply !== NO_REPLY) {
          const written = this.writeReply(chain, h.unique, reply);
          const bytes = written.reduce((n, p) => n + p.length, 0);
          obs.reply(trace, typeof reply === "number" ? -reply : 0, bytes, performance.now() - t0, written);
          return bytes;
        }
      }
    }
    return reply === NO_REPLY ? 0 : this.writeReply(chain, h.unique, reply).reduce((n, p) => n + p.length, 0);
  }

  /**
   * Ends the session as the device resets: every handle and inode reference goes back to the backend,
   * those that requests still running take included (the reset dropped their replies): the session ends
   * once they are done.
   */
  async reset(): Promise<void> {
    // Blocked SETLKW requests are among those running: answer them, or the session never ends.
    this.session.locks.endSession(this.session);
    const running = [...this.running];
    const previous = this.ending;
    const ending = (async () => {
      await previous;
      await Promise.allSettled(running);
      await endSession(this.session);
    })();
    this.ending = ending;
    try {
      await ending;
    } finally {
      if (this.ending === ending) this.ending = undefined;
    }
  }

  /**
   * Settles when every request being served has been answered, except SETLKW requests waiting for a lock
   * (they stay in flight and are served again after a restore). Call with the guest stopped.
   */
  async quiesce(): Promise<void> {
    while (this.running.size > this.session.locks.waiting(this.session)) {
      // A request may turn into a lock waiter without settling: look again now and then.
      await Promise.race([...this.running, new Promise((r) => setTimeout(r, 5))]);
    }
  }

  /**
   * The session's part of a snapshot (with a DAX window's mappings, written back first), and the
   * backend's (FileSystem.saveState). Call after quiesce().
   */
  async saveState(): Promise<{ session: Saved; backend: Saved }> {
    const fs = this.o.fs;
    if (!fs.saveState) throw new Error("this share's backend cannot be saved in a snapshot");
    return { session: await saveSession(this.session), backend: await fs.saveState() };
  }

  /**
   * Takes saveState's value into a new server over a freshly constructed backend of the same kind, before
   * the device serves anything. StateError when the value does not fit.
   */
  async restoreState(state: { session: Saved; backend: Saved }): Promise<void> {
    const fs = this.o.fs;
    if (!fs.restoreState) throw new StateError("this share's backend cannot be restored from a snapshot");
    await fs.restoreState(state.backend);
    restoreSession(this.session, state.session);
  }

  /** Ends the session for good: the server no longer counts as a client of its backend. */
  async close(): Promise<void> {
    this.leave();
    await this.reset();
  }

  /**
   * The most argument bytes a request of `opcode` may carry: a WRITE its struct and max_write bytes,
   * anything else two paths or an xattr value with its name (SETXATTR). A guest sending more is refused
   * before the bytes are copied.
   */
  private argsLimit(opcode: number): number {
    return opcode === FuseOpcode.FUSE_WRITE ? fuse_write_in.SIZE + this.session.maxWrite : ARGS_MAX;
  }

  private *dispatch(req: FuseRequest): Op<Reply> {
    const entry: Handler | undefined = HANDLERS[req.opcode];
    if (!entry) return Errno.ENOSYS;
    if (this.session.minor === 0 && req.opcode !== FuseOpcode.FUSE_INIT) return Errno.EIO; // before INIT
    if (req.args.length < entry.minArgs) return Errno.EINVAL;
    // A reply that could not be delivered must not take node references or handles the guest never learns.
    if (entry.replySize > 0 && req.room < entry.replySize) return Errno.EINVAL;
    try {
      return yield* entry.run(this.session, req);
    } catch (e) {
      if (e instanceof RequestError) return e.errno;
      if (e instanceof FsError) return e.errno;
      this.logOnce(`${fuseOpcodeName(req.opcode) ?? req.opcode}: backend failure: ${e instanceof Error ? e.message : String(e)}`);
      return Errno.EIO;
    }
  }

  /** Writes fuse_out_header and the payload into the chain; returns what it wrote, in order. */
  private writeReply(chain: RequestChain, unique: bigint, reply: Exclude<Reply, typeof NO_REPLY>): Uint8Array[] {
    const w = chain.writer;
    if (w.writable < OUT_HEADER) return []; // a hostile chain with no room for an answer
    let error = typeof reply === "number" ? -reply : 0;
    let parts = typeof reply === "number" ? [] : reply instanceof Uint8Array ? [reply] : reply;
    let len = OUT_HEADER + parts.reduce((n, p) => n + p.length, 0);
    if (len > w.writable) {
      // The kernel always leaves room for what it asked; less room means a hostile or broken driver.
      error = -Errno.EINVAL;
      parts = [];
      len = OUT_HEADER;
    }
    const header = new Uint8Array(OUT_HEADER);
    const hv = new DataView(header.buffer);
    hv.setUint32(fuse_out_header.len, len, true);
    hv.setInt32(fuse_out_header.error, error, true);
    hv.setBigUint64(fuse_out_header.unique, unique, true);
    w.write(header);
    for (const p of parts) w.write(p);
    return [header, ...parts];
  }

  private logOnce(message: string): void {
    if (this.logged.has(message)) return;
    this.logged.add(message);
    (this.o.log ?? console.warn)(`virtiofs-web: ${message}`);
  }
}
