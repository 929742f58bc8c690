// The FUSE server behind the virtio-fs request queues: decodes fuse_in_header and the opcode's
// arguments from a descriptor chain, runs one handler per opcode against a FileSystem, and writes
// fuse_out_header + payload into the chain. Everything the guest sends is checked first; a bad request
// gets an errno, a backend fault gets EIO (logged once), and nothing here throws to the device.
import type { DaxWindow } from "../../device/dax-window.ts";
import type { DescriptorChain } from "../../device/virtqueue.ts";
import { FsError, type FileSystem } from "../vfs/filesystem.ts";
import { DaxMappings, type DaxSnapshot } from "./dax.ts";
import { FuseOpcode, decode, fuse_in_header, fuse_out_header, fuseOpcodeName } from "./abi.ts";
import { Errno } from "../vfs/errno.ts";
import { FOPEN_CACHE_DIR, FOPEN_DIRECT_IO, FOPEN_KEEP_CACHE } from "./abi.ts";
import { InodeFiles } from "./inode-files.ts";
import { NodeTable } from "./nodes.ts";
import { HANDLERS } from "./ops/index.ts";
import type { Handler } from "./ops/common.ts";

/** Cache modes as virtiofsd names them. */
export type CacheMode = "never" | "metadata" | "auto" | "always";
export const CACHE_MODES: readonly CacheMode[] = ["never", "metadata", "auto", "always"];

export interface CachePolicy {
  mode: CacheMode;
  /** Seconds the guest may keep names (entry_valid) and attributes (attr_valid). */
  timeout: number;
  /** fuse_open_out.open_flags for files and for directories. */
  openFlags: number;
  dirOpenFlags: number;
}

/** virtiofsd's policies: never caches nothing; metadata caches names and attributes but not data; auto
 * keeps them a second and data until the file changes; always keeps everything. */
export function cachePolicy(mode: CacheMode): CachePolicy {
  switch (mode) {
    case "never":
      return { mode, timeout: 0, openFlags: FOPEN_DIRECT_IO, dirOpenFlags: 0 };
    case "metadata":
      return { mode, timeout: 86400, openFlags: FOPEN_DIRECT_IO, dirOpenFlags: 0 };
    case "auto":
      return { mode, timeout: 1, openFlags: 0, dirOpenFlags: 0 };
    case "always":
      return { mode, timeout: 86400, openFlags: FOPEN_KEEP_CACHE, dirOpenFlags: FOPEN_KEEP_CACHE | FOPEN_CACHE_DIR };
  }
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
  /** The device's DAX window: FUSE_SETUPMAPPING and FUSE_REMOVEMAPPING map files into it. */
  dax?: DaxWindow;
}

/** One request as the inspector sees it; `args` are the bytes after fuse_in_header (do not keep a reference). */
export interface RequestTrace {
  queue: number;
  opcode: number;
  unique: bigint;
  nodeid: bigint;
  args: Uint8Array;
}

export interface FuseObserver {
  request(t: RequestTrace): void;
  /** error is 0 or a negative errno; bytes is what went into the chain; no call for requests without reply. */
  reply(t: RequestTrace, error: number, bytes: number, ms: number): void;
}

/** A decoded request: the header fields handlers use, and the opcode's argument bytes. */
export interface FuseRequest {
  opcode: number;
  unique: bigint;
  nodeid: bigint;
  uid: number;
  gid: number;
  pid: number;
  /** The arguments after fuse_in_header. */
  args: Uint8Array;
  argsView: DataView;
}

/** What a handler answers: an errno (0 = success, no payload), payload bytes, or no reply at all. */
export type Reply = number | Uint8Array | Uint8Array[] | typeof NO_REPLY;
export const NO_REPLY = Symbol("no reply");

/** The state of one FUSE session (from INIT to DESTROY or device reset), shared by the handlers. */
export interface Session {
  readonly fs: FileSystem;
  readonly cache: CachePolicy;
  readonly writeback: boolean;
  readonly maxWrite: number;
  readonly nodes: NodeTable;
  /** Backend handles the guest holds, to give back when the session ends. */
  readonly openFiles: Set<number>;
  readonly openDirs: Set<number>;
  /** Negotiated minor version; 0 before INIT. */
  minor: number;
  /** What the DAX window maps, when the device has one. */
  readonly dax?: DaxMappings;
  /** dax=inode was agreed (FUSE_HAS_INODE_DAX): attributes say which files use the window. */
  inodeDax: boolean;
  /** Zero-message open is on: no OPEN or RELEASE, fh 0 is the node's handle in `inodeFiles`. */
  zeroOpen: boolean;
  readonly inodeFiles: InodeFiles;
}

export const DEFAULT_MAX_WRITE = 1 << 20;
const OUT_HEADER = fuse_out_header.SIZE;

export class FuseServer {
  private readonly session: Session;
  private readonly logged = new Set<string>();

  constructor(private readonly o: FuseServerOptions) {
    const dax = o.dax && new DaxMappings(o.dax, o.fs, (m) => this.logOnce(m));
    this.session = {
      fs: o.fs,
      cache: cachePolicy(o.cache ?? "auto"),
      writeback: o.writeback ?? false,
      maxWrite: o.maxWrite ?? DEFAULT_MAX_WRITE,
      nodes: new NodeTable(o.fs.rootIno),
      openFiles: new Set(),
      openDirs: new Set(),
      minor: 0,
      dax,
      inodeDax: false,
      zeroOpen: false,
      inodeFiles: new InodeFiles(o.fs, dax),
    };
  }

  /** Node ids the guest holds (the root included): the inode table shrinks back after umount. */
  get nodeCount(): number {
    return this.session.nodes.size;
  }

  /** What the DAX window maps now (for the inspector); undefined without a window. */
  daxSnapshot(): DaxSnapshot | undefined {
    return this.session.dax?.snapshot(this.session.nodes);
  }

  /** The RequestHandler of the virtio-fs device. */
  readonly handle = async (chain: DescriptorChain, queue = 1): Promise<number> => {
    const reader = chain.reader;
    if (reader.readable < fuse_in_header.SIZE) return 0; // no unique to answer to
    const bytes = reader.read(reader.readable);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const h = decode(fuse_in_header, view, 0);
    let reply: Reply;
    if (h.len !== bytes.length) {
      reply = Errno.EINVAL; // fuse_in_header.len must describe exactly what the chain carries
    } else {
      const args = bytes.subarray(fuse_in_header.SIZE);
      const req: FuseRequest = {
        opcode: h.opcode,
        unique: h.unique,
        nodeid: h.nodeid,
        uid: h.uid,
        gid: h.gid,
        pid: h.pid,
        args,
        argsView: new DataView(args.buffer, args.byteOffset, args.byteLength),
      };
      const obs = this.o.observer;
      if (!obs) reply = await this.dispatch(req);
      else {
        const trace: RequestTrace = { queue, opcode: h.opcode, unique: h.unique, nodeid: h.nodeid, args };
        const t0 = performance.now();
        obs.request(trace);
        reply = await this.dispatch(req);
        if (reply !== NO_REPLY) {
          const written = this.writeReply(chain, h.unique, reply);
          obs.reply(trace, typeof reply === "number" ? -reply : 0, written, performance.now() - t0);
          return written;
        }
      }
    }
    return reply === NO_REPLY ? 0 : this.writeReply(chain, h.unique, reply);
  };

  /** Ends the session as the device resets: every handle and inode reference goes back to the backend. */
  async reset(): Promise<void> {
    await endSession(this.session);
  }

  private async dispatch(req: FuseRequest): Promise<Reply> {
    const entry: Handler | undefined = HANDLERS[req.opcode];
    if (!entry) return Errno.ENOSYS;
    if (this.session.minor === 0 && req.opcode !== FuseOpcode.FUSE_INIT) return Errno.EIO; // before INIT
    if (req.args.length < entry.minArgs) return Errno.EINVAL;
    try {
      return await entry.run(this.session, req);
    } catch (e) {
      if (e instanceof FsError) return e.errno;
      this.logOnce(`${fuseOpcodeName(req.opcode) ?? req.opcode}: backend failure: ${e instanceof Error ? e.message : String(e)}`);
      return Errno.EIO;
    }
  }

  private writeReply(chain: DescriptorChain, unique: bigint, reply: Exclude<Reply, typeof NO_REPLY>): number {
    const w = chain.writer;
    if (w.writable < OUT_HEADER) return 0; // a hostile chain with no room for an answer
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
    return len;
  }

  private logOnce(message: string): void {
    if (this.logged.has(message)) return;
    this.logged.add(message);
    (this.o.log ?? console.warn)(`virtiofs-web: ${message}`);
  }
}

/** Gives every handle and inode reference of a session back to the backend and forgets the session. */
export async function endSession(s: Session): Promise<void> {
  const files = [...s.openFiles];
  const dirs = [...s.openDirs];
  const held = [...s.nodes.held()];
  s.openFiles.clear();
  s.openDirs.clear();
  s.nodes.clear();
  s.minor = 0;
  s.zeroOpen = false;
  s.inodeDax = false;
  // Stores in the DAX window reach the backend while the inodes they belong to are still referenced.
  await s.dax?.end();
  // Best effort: a backend that fails to release has nothing more to lose.
  await Promise.allSettled([
    s.inodeFiles.clear(),
    ...files.map((fh) => s.fs.release(fh)),
    ...dirs.map((dh) => s.fs.releasedir(dh)),
    ...held.map((n) => s.fs.forget(n.ino, n.nlookup)),
  ]);
}
