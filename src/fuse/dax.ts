// The FUSE side of the DAX window. virtiofsd mmaps the host file into the window, so the guest's loads and
// stores are the file; a browser can only copy. So: FUSE_SETUPMAPPING copies a file range into the window,
// dirty pages are copied back (REMOVEMAPPING, FORGET, session end, and whenever src/fuse/dax-coherent-fs.ts
// asks: before the backend reads or changes the file, on FSYNC, FLUSH, RELEASE, SYNCFS), and whatever
// changes a mapped file through the backend refreshes the mapped bytes it changed.
//
// Locking (src/fuse/keyed-locks.ts): moving bytes between the window and an inode's file, and every data
// operation on a file, hold that inode's lock, so a fill never interleaves with a write. Adding mappings to a
// window range also holds the range's locks (2 MiB each) and the lock of every inode the range shows; pages
// are removed only by a holder of their owner's lock. Range keys are negative, inode numbers positive, and
// keys are taken in ascending order: nobody waits on a holder that waits on them. A file with nothing in
// the window, whose lock nobody holds or waits for, has nothing to keep coherent: its operations run at
// once (holding its lock only while a backend that waits is at work), so over a backend that answers at
// once they stay synchronous (src/vfs/awaitable.ts).
import type { Awaitable } from "../vfs/awaitable.ts";
import { EIO, EMFILE } from "../vfs/errno.ts";
import { O_RDONLY, O_RDWR } from "../vfs/linux.ts";
import { FsError, type FileSystem, type Handle, type Ino } from "../vfs/filesystem.ts";
import { PAGE_SIZE, type FuseDaxWindow, type WindowExtent, type WindowSpan } from "./dax-window.ts";
import { KeyedLocks, type Release } from "./keyed-locks.ts";
import type { NodeTable } from "./nodes.ts";

/** Bytes per window range lock: Linux's FUSE_DAX_SZ. */
const RANGE = 2 << 20;
/**
 * Bytes per backend call when filling, refreshing or writing back: 1 MiB, as cache=never's READs. Each call
 * gets a fresh buffer from the backend, and fresh 2 MiB ones are slow to come by in V8 beside v86: memfs
 * read a 64 MiB file's 32 ranges in 23 to 227 ms in 2 MiB calls, 12 to 65 ms in 1 MiB ones (smaller calls
 * were no faster).
 */
const CHUNK = 1 << 20;
/**
 * Inodes that may have pages mapped at once; each keeps one backend handle open. Linux maps 2 MiB ranges,
 * so a 256 MiB window shows at most 128 files.
 */
export const MAX_MAPPED_INODES = 256;
const END = Number.MAX_SAFE_INTEGER;

/** A mapping as FUSE_SETUPMAPPING asks for it, already checked against the window. */
export interface Mapping {
  offset: number;
  length: number;
  fileOffset: number;
  writable: boolean;
}

/** A byte range of a file. */
export interface FileRange {
  ino: Ino;
  offset: number;
  length: number;
}

/** What a backend operation does to file data: reads a range, changes a range. */
export interface DataAccess {
  read?: FileRange;
  change?: FileRange;
}

export interface DaxMappingState {
  /** The guest's node id of the file, if it still holds one. */
  nodeid: number | undefined;
  moffset: number;
  foffset: number;
  length: number;
  writable: boolean;
  dirtyPages: number;
}

export interface DaxSnapshot {
  size: number;
  mappings: DaxMappingState[];
  dirtyPages: number;
}

/** The part of an extent that lies over a file or window range (byte-exact). */
interface Piece {
  extent: WindowExtent;
  moffset: number;
  length: number;
}

const fileAt = (e: WindowExtent, moffset: number): number => e.fileOffset + (moffset - e.offset);
const pageDown = (n: number): number => n - (n % PAGE_SIZE);
const pageUp = (n: number): number => pageDown(n + PAGE_SIZE - 1);
const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

export class DaxMappings {
  private readonly locks = new KeyedLocks();
  /** One backend handle per mapped inode, for fills and write-backs (it outlives an unlink). */
  private readonly backendFiles = new Map<Ino, { fh: Handle; write: boolean }>();
  /** Bumped when a session ends: operations of the old session stop touching the window. */
  private epoch = 0;

  constructor(
    readonly window: FuseDaxWindow,
    private readonly fs: FileSystem,
    private readonly log: (message: string) => void,
  ) {}

  /** FUSE_SETUPMAPPING: `ino`'s bytes from m.fileOffset appear at m.offset (zeros past end of file). */
  async setup(ino: Ino, m: Mapping): Promise<void> {
    const epoch = this.epoch;
    const release = await this.lockRange(m, ino);
    const touched = new Set(this.window.ownersIn(m.offset, m.length)).add(ino);
    let installed = false;
    try {
      this.checkEpoch(epoch);
      if (!this.window.hasOwner(ino) && this.window.ownerCount >= MAX_MAPPED_INODES) {
        throw new FsError(EMFILE, `more than ${MAX_MAPPED_INODES} files mapped`);
      }
      // Opening first refuses what cannot be mapped (EISDIR, EROFS, …) before anything is replaced.
      const fh = await this.backendFile(ino, m.writable);
      if (this.shows(ino, m)) {
        // The upgrade fs/fuse/dax.c sends for a write fault: the bytes are already right.
        if (!m.writable) {
          this.window.protect(m.offset, m.length, false);
          await this.writeback(ino, 0, END, m);
        }
        this.window.protect(m.offset, m.length, m.writable);
        return;
      }
      // Replaced pages take no more stores; what they hold reaches their files before they go.
      this.window.protect(m.offset, m.length, false);
      for (const owner of this.window.ownersIn(m.offset, m.length)) await this.writeback(owner, 0, END, m);
      // Stores made through another mapping of the same file range belong in this one too.
      await this.writeback(ino, m.fileOffset, m.fileOffset + m.length);
      this.checkEpoch(epoch);
      this.window.map(m.offset, m.length, ino, m.fileOffset, m.writable);
      installed = true;
      await this.fill(fh, m, epoch);
    } catch (e) {
      if (installed && epoch === this.epoch) this.window.unmap(m.offset, m.length);
      throw e;
    } finally {
      await this.releaseUnmapped(touched);
      release();
    }
  }

  /** FUSE_REMOVEMAPPING: each range's stores reach the backend, then it is unmapped; a range with nothing mapped is fine, as for munmap(2). */
  async remove(spans: WindowSpan[]): Promise<void> {
    const epoch = this.epoch;
    for (const span of spans) {
      const release = await this.lockRange(span);
      const owners = this.window.ownersIn(span.offset, span.length);
      try {
        this.checkEpoch(epoch);
        this.window.protect(span.offset, span.length, false);
        for (const owner of owners) await this.writeback(owner, 0, END, span);
        this.window.unmap(span.offset, span.length);
      } finally {
        await this.releaseUnmapped(owners);
        release();
      }
    }
  }

  /**
   * Runs a backend operation on file data: the dirty mapped pages over `read`, and every dirty page of the
   * file `change` names, are written back before it; the mapped bytes over `change` are refreshed after it
   * (from the old end of file on, for an append).
   */
  io<T>({ read, change }: DataAccess, op: () => Awaitable<T>): Awaitable<T> {
    const inos = [read?.ino, change?.ino].filter((ino): ino is Ino => ino !== undefined);
    if (this.outside(inos)) return this.holding(inos, op());
    return this.locked(inos, async () => {
      if (read) await this.writeback(read.ino, read.offset, read.offset + read.length);
      // The refresh below copies the backend's bytes over a range that may hold stores not yet written back.
      if (change) await this.writeback(change.ino);
      const before = change && this.window.hasOwner(change.ino) ? (await this.fs.getattr(change.ino)).size : undefined;
      const result = await op();
      if (change && before !== undefined) {
        await this.refresh(change.ino, Math.min(change.offset, before), Math.max(change.offset, before) + change.length);
      }
      return result;
    });
  }

  /**
   * Runs an operation that may change the file's size: the file's stores reach the backend first, and
   * mapped bytes past the end read as zeros afterwards.
   */
  resize<T>(ino: Ino, op: () => Awaitable<T>): Awaitable<T> {
    if (this.outside([ino])) return this.holding([ino], op());
    return this.locked([ino], async () => {
      if (!this.window.hasOwner(ino)) return op();
      await this.writeback(ino);
      const before = (await this.fs.getattr(ino)).size;
      const result = await op();
      this.cut(ino, Math.min(before, (await this.fs.getattr(ino)).size));
      return result;
    });
  }

  /** An existing file was truncated by CREATE with O_TRUNC: its stores went with its bytes. */
  truncated(ino: Ino): Awaitable<void> {
    if (this.outside([ino])) return;
    return this.locked([ino], async () => {
      if (this.window.hasOwner(ino)) this.cut(ino, (await this.fs.getattr(ino)).size);
    });
  }

  /** Writes back the inode's dirty pages (FLUSH, FSYNC, RELEASE of one of its files). */
  sync(ino: Ino): Awaitable<void> {
    if (this.outside([ino])) return;
    return this.locked([ino], () => this.writeback(ino));
  }

  /** SYNCFS: every mapped file's stores reach the backend; the first failure is the answer. */
  async syncAll(): Promise<void> {
    const results = await Promise.allSettled(this.window.owners().map((ino) => this.locked([ino], () => this.writeback(ino))));
    for (const r of results) if (r.status === "rejected") throw r.reason;
  }

  /** The guest forgot the inode (it unmaps before it forgets): keep its stores, drop its pages. */
  forgotten(ino: Ino): Awaitable<void> {
    if (this.outside([ino]) && !this.backendFiles.has(ino)) return;
    return this.locked([ino], () => this.retire(ino));
  }

  /** The session ends (DESTROY, a new INIT, a device reset): every store reaches the backend, the window empties. */
  async end(): Promise<void> {
    this.epoch++;
    this.window.protect(0, this.window.size, false);
    // Each inode's lock is queued now, ahead of anything the next session asks.
    await Promise.allSettled(this.window.owners().map((ino) => this.locked([ino], () => this.retire(ino))));
  }

  /**
   * What a snapshot keeps: every store written back first (the backend's state then holds the bytes, and
   * the window's bytes, which the machine's memory keeps, are clean), then the extents and the backend
   * handles they read through.
   */
  async save(): Promise<{ extents: WindowExtent[]; files: [ino: Ino, fh: Handle, write: boolean][] }> {
    await this.syncAll();
    return { extents: this.window.extents().map((e) => ({ ...e })), files: [...this.backendFiles].map(([ino, f]) => [ino, f.fh, f.write]) };
  }

  /**
   * Takes saved extents and handles into an empty window whose bytes the restored machine memory holds
   * (clean: saved right after a write-back). RangeError for an extent that does not fit the window.
   */
  restore(saved: { extents: readonly WindowExtent[]; files: readonly (readonly [Ino, Handle, boolean])[] }): void {
    if (this.window.ownerCount || this.backendFiles.size) throw new Error("restore into a DAX window in use");
    const files = new Map(saved.files.map(([ino, fh, write]) => [ino, { fh, write }]));
    for (const e of saved.extents) {
      if (!files.has(e.owner)) throw new RangeError(`DAX extent at ${e.offset} names inode ${e.owner} without a backend handle`);
      if (e.writable && !files.get(e.owner)!.write) throw new RangeError(`DAX extent at ${e.offset} is writable through a read-only handle`);
    }
    try {
      for (const e of saved.extents) this.window.map(e.offset, e.length, e.owner, e.fileOffset, e.writable);
    } catch (e) {
      this.window.unmap(0, this.window.size);
      throw e;
    }
    for (const [ino, f] of files) this.backendFiles.set(ino, f);
  }

  snapshot(nodes: NodeTable): DaxSnapshot {
    return {
      size: this.window.size,
      dirtyPages: this.window.dirtyPages(),
      mappings: this.window.extents().map((e) => ({
        nodeid: nodes.nodeid(e.owner),
        moffset: e.offset,
        foffset: e.fileOffset,
        length: e.length,
        writable: e.writable,
        dirtyPages: this.window.dirtyPages(e.offset, e.length),
      })),
    };
  }

  /** No page of these inodes is in the window and nobody holds or waits for their locks. */
  private outside(inos: readonly Ino[]): boolean {
    return inos.every((ino) => !this.window.hasOwner(ino) && this.locks.idle(ino));
  }

  /** `result` of an operation started outside(inos): if it has to wait, their locks are held until it settles. */
  private holding<T>(inos: readonly Ino[], result: Awaitable<T>): Awaitable<T> {
    if (!(result instanceof Promise)) return result;
    const release = this.locks.acquireNow(inos);
    result.then(release, release);
    return result;
  }

  private async locked<T>(keys: readonly Ino[], fn: () => Promise<T>): Promise<T> {
    const release = await this.locks.acquire(keys);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  /** The window range's locks, then the locks of `ino` and of every inode the range shows. */
  private async lockRange(span: WindowSpan, ino?: Ino): Promise<Release> {
    const ranges: number[] = [];
    for (let c = Math.floor(span.offset / RANGE); c * RANGE < span.offset + span.length; c++) ranges.push(-1 - c);
    const releaseRange = await this.locks.acquire(ranges);
    const owners = this.window.ownersIn(span.offset, span.length);
    const releaseInodes = await this.locks.acquire(ino === undefined ? owners : [...owners, ino]);
    return () => {
      releaseInodes();
      releaseRange();
    };
  }

  private checkEpoch(epoch: number): void {
    if (epoch !== this.epoch) throw new FsError(EIO, "the FUSE session ended");
  }

  /** True if the window range already shows `ino` from m.fileOffset, page for page. */
  private shows(ino: Ino, m: Mapping): boolean {
    let covered = 0;
    for (const e of this.window.extentsIn(m.offset, m.length)) {
      if (e.owner !== ino || e.fileOffset - e.offset !== m.fileOffset - m.offset) return false;
      covered += Math.min(e.offset + e.length, m.offset + m.length) - Math.max(e.offset, m.offset);
    }
    return covered === m.length;
  }

  private async fill(fh: Handle, m: Mapping, epoch: number): Promise<void> {
    for (let done = 0; done < m.length; done += CHUNK) {
      await this.copyIn(fh, m.fileOffset + done, m.offset + done, Math.min(CHUNK, m.length - done));
      this.checkEpoch(epoch);
    }
  }

  /** The backend's bytes of the file from `foffset` into window [moffset, moffset + n), zeros past its end. */
  private async copyIn(fh: Handle, foffset: number, moffset: number, n: number): Promise<void> {
    const fs = this.fs;
    if (fs.readInto) return this.window.writeFrom(moffset, n, (into) => fs.readInto!(fh, foffset, into));
    const data = await fs.read(fh, foffset, n);
    this.window.write(moffset, data);
    this.window.zero(moffset + data.length, n - data.length);
  }

  /** The parts of `ino`'s extents over file range [from, to), and inside window span `win` if given. */
  private pieces(ino: Ino, from: number, to: number, win?: WindowSpan): Piece[] {
    const out: Piece[] = [];
    for (const extent of this.window.extentsOf(ino)) {
      let lo = Math.max(extent.offset, extent.offset + (from - extent.fileOffset));
      let hi = Math.min(extent.offset + extent.length, extent.offset + (to - extent.fileOffset));
      if (win) {
        lo = Math.max(lo, win.offset);
        hi = Math.min(hi, win.offset + win.length);
      }
      if (lo < hi) out.push({ extent, moffset: lo, length: hi - lo });
    }
    return out;
  }

  /**
   * Writes `ino`'s dirty pages over file range [from, to) (and window span `win`) to the backend, up to the
   * end of file: the guest cannot extend a file through the window. Caller holds the inode's lock. A page
   * whose write fails stays dirty.
   */
  private async writeback(ino: Ino, from = 0, to = END, win?: WindowSpan): Promise<void> {
    const runs = (): { moffset: number; foffset: number; length: number }[] =>
      this.pieces(ino, from, to, win).flatMap(({ extent, moffset, length }) => {
        const lo = pageDown(moffset);
        return this.window.dirtyRuns(lo, pageUp(moffset + length) - lo).map((r) => ({ moffset: r.offset, foffset: fileAt(extent, r.offset), length: r.length }));
      });
    if (runs().length === 0) return;
    const fh = await this.backendFile(ino, true);
    const size = (await this.fs.getattr(ino)).size;
    for (const run of runs()) {
      for (let done = 0; done < run.length; done += CHUNK) {
        const moffset = run.moffset + done;
        const n = Math.min(CHUNK, run.length - done);
        // Copy, then clean: a store that lands while the copy is on its way dirties the page again.
        const bytes = this.window.read(moffset, n);
        this.window.clearDirty(moffset, n);
        const keep = Math.min(n, size - (run.foffset + done));
        if (keep <= 0) continue;
        try {
          await this.fs.write(fh, run.foffset + done, bytes.subarray(0, keep));
        } catch (e) {
          this.window.markDirty(moffset, n);
          throw e;
        }
      }
    }
  }

  /** Copies the backend's bytes of file range [from, to) into `ino`'s mapped pages. Caller holds the inode's lock. */
  private async refresh(ino: Ino, from: number, to: number): Promise<void> {
    const pieces = this.pieces(ino, from, to);
    if (pieces.length === 0) return;
    const fh = await this.backendFile(ino, false);
    for (const { extent, moffset, length } of pieces) {
      for (let done = 0; done < length; done += CHUNK) {
        await this.copyIn(fh, fileAt(extent, moffset + done), moffset + done, Math.min(CHUNK, length - done));
      }
    }
  }

  /** After a truncation to `size`: mapped bytes from `size` on are zeros, and pages wholly past it are clean. */
  private cut(ino: Ino, size: number): void {
    for (const { moffset, length } of this.pieces(ino, size, END)) {
      this.window.zero(moffset, length);
      const whole = pageUp(moffset);
      if (whole < moffset + length) this.window.clearDirty(whole, moffset + length - whole);
    }
  }

  /** Writes back and unmaps every page of `ino`; nobody is left to retry a failed write-back. Caller holds the lock. */
  private async retire(ino: Ino): Promise<void> {
    for (const e of this.window.extentsOf(ino)) this.window.protect(e.offset, e.length, false);
    try {
      await this.writeback(ino);
    } catch (e) {
      this.log(`DAX: stores to inode ${ino} were lost: ${message(e)}`);
    }
    this.window.unmapOwner(ino);
    await this.releaseUnmapped([ino]);
  }

  /** The inode's backend handle for mapping I/O (opened O_RDWR when `write`). Caller holds the inode's lock. */
  private async backendFile(ino: Ino, write: boolean): Promise<Handle> {
    const held = this.backendFiles.get(ino);
    if (held && (held.write || !write)) return held.fh;
    const fh = await this.fs.open(ino, write ? O_RDWR : O_RDONLY);
    this.backendFiles.set(ino, { fh, write });
    if (held) await this.close(held.fh);
    return fh;
  }

  /** Closes the backend handles of inodes left without mapped pages. Caller holds their locks. */
  private async releaseUnmapped(inos: Iterable<Ino>): Promise<void> {
    for (const ino of inos) {
      const held = this.backendFiles.get(ino);
      if (!held || this.window.hasOwner(ino)) continue;
      this.backendFiles.delete(ino);
      await this.close(held.fh);
    }
  }

  private async close(fh: Handle): Promise<void> {
    try {
      await this.fs.release(fh);
    } catch (e) {
      this.log(`DAX: releasing backend handle ${fh} failed: ${message(e)}`);
    }
  }
}
