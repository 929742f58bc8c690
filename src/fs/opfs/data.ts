// File data for the OPFS backend: the bytes of one open file, behind one interface whether they are
// reached through a FileSystemSyncAccessHandle (OPFS files in a dedicated Worker: synchronous, in place,
// no copy) or through File snapshots and writable streams (files of a folder the user picked, or a page
// without sync handles). Also the DOMException → errno translation every OPFS call goes through.
import { EINVAL, EIO, ENOSPC, ESTALE } from "../../vfs/errno.ts";
import { FsError } from "../../vfs/filesystem.ts";

/** Chromium's FileSystemSyncAccessHandle: lib.dom does not declare it (only lib.webworker does). */
export interface SyncAccessHandle {
  read(buffer: Uint8Array, options: { at: number }): number;
  write(buffer: Uint8Array, options: { at: number }): number;
  truncate(size: number): void;
  getSize(): number;
  flush(): void;
  close(): void;
}

/** The parts of FileSystemFileHandle that lib.dom lacks; both are absent on some handles and browsers. */
export type OpfsFileHandle = FileSystemFileHandle & {
  createSyncAccessHandle?(): Promise<SyncAccessHandle>;
  move?(dir: FileSystemDirectoryHandle, name: string): Promise<void>;
};

/** The bytes of one file while it is open; shared by every handle open on the inode. */
export interface FileData {
  size(): number;
  /** Up to `length` bytes from `offset`, fewer only at end of file. */
  read(offset: number, length: number): Promise<Uint8Array>;
  write(offset: number, data: Uint8Array): Promise<void>;
  truncate(size: number): Promise<void>;
  /** Makes everything written so far durable. */
  flush(): Promise<void>;
  /** Flushes and lets go of the file (its lock, its buffer). */
  close(): Promise<void>;
}

/** BufferedData holds a changed file in memory: beyond this, writes are ENOSPC. */
const MAX_BUFFERED = 1 << 30;
const LOCK_RETRIES = 30;
const LOCK_RETRY_MS = 100;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * A sync access handle, waiting a bounded time for the file's lock: after a reload the previous page's
 * Worker may still hold it for a moment. Longer than that, another tab has the share open.
 */
export async function openSyncHandle(file: OpfsFileHandle): Promise<SyncAccessHandle> {
  if (!file.createSyncAccessHandle) throw new FsError(EIO, "no sync access handles here");
  for (let attempt = 0; ; attempt++) {
    try {
      return await file.createSyncAccessHandle();
    } catch (e) {
      if (!(e instanceof DOMException && e.name === "NoModificationAllowedError") || attempt >= LOCK_RETRIES) throw e;
      await sleep(LOCK_RETRY_MS);
    }
  }
}

/** In place through a sync access handle: every call is synchronous underneath. */
export class SyncData implements FileData {
  private constructor(private readonly h: SyncAccessHandle) {}

  static async open(file: OpfsFileHandle): Promise<SyncData> {
    return new SyncData(await openSyncHandle(file));
  }

  size(): number {
    return this.h.getSize();
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const n = Math.max(0, Math.min(length, this.h.getSize() - offset));
    const out = new Uint8Array(n);
    let done = 0;
    while (done < n) {
      const got = this.h.read(out.subarray(done), { at: offset + done });
      if (got <= 0) break;
      done += got;
    }
    return done === n ? out : out.subarray(0, done);
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const n = this.h.write(data.subarray(done), { at: offset + done });
      // Chromium reports a failed write as base::File's error code read as unsigned: -8 is NO_SPACE
      // (an in-memory OPFS, in a private window, runs out long before the quota says).
      if (n > data.length - done) throw new FsError(n === 2 ** 32 - 8 ? ENOSPC : EIO, `write failed (${n - 2 ** 32})`);
      if (n <= 0) throw new FsError(EIO, "short write");
      done += n;
    }
  }

  async truncate(size: number): Promise<void> {
    this.h.truncate(size);
  }

  async flush(): Promise<void> {
    this.h.flush();
  }

  async close(): Promise<void> {
    try {
      this.h.flush();
    } finally {
      this.h.close();
    }
  }
}

/**
 * Through the async API: reads slice the file until the first change, which loads the whole file into
 * memory; flush writes it back through a writable stream (which replaces the file atomically on close).
 */
export class BufferedData implements FileData {
  private buf: Uint8Array | undefined;
  private length: number;
  private dirty = false;

  private constructor(
    private readonly file: FileSystemFileHandle,
    size: number,
  ) {
    this.length = size;
  }

  static async open(file: FileSystemFileHandle): Promise<BufferedData> {
    return new BufferedData(file, (await file.getFile()).size);
  }

  size(): number {
    return this.length;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const end = Math.min(this.length, offset + length);
    if (end <= offset) return new Uint8Array(0);
    if (this.buf) return this.buf.slice(offset, end);
    return new Uint8Array(await (await this.file.getFile()).slice(offset, end).arrayBuffer());
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    const buf = await this.reserve(Math.max(this.length, offset + data.length));
    buf.set(data, offset);
    this.length = Math.max(this.length, offset + data.length);
    this.dirty = true;
  }

  async truncate(size: number): Promise<void> {
    const buf = await this.reserve(size);
    if (size > this.length) buf.fill(0, this.length, size);
    this.length = size;
    this.dirty = true;
  }

  async flush(): Promise<void> {
    if (!this.dirty || !this.buf) return;
    const w = await this.file.createWritable();
    try {
      await w.write(this.buf.slice(0, this.length));
      await w.close();
    } catch (e) {
      await w.abort().catch(() => {});
      throw e;
    }
    this.dirty = false;
  }

  async close(): Promise<void> {
    await this.flush();
    this.buf = undefined;
  }

  /** The loaded buffer, grown (doubling) to hold `size` bytes; bytes past `length` are zero. */
  private async reserve(size: number): Promise<Uint8Array> {
    if (!this.buf) this.buf = new Uint8Array(await (await this.file.getFile()).arrayBuffer());
    if (size > this.buf.length) {
      if (size > MAX_BUFFERED) throw new FsError(ENOSPC, `${size} bytes are more than this file's buffer can hold`);
      const grown = new Uint8Array(Math.min(MAX_BUFFERED, Math.max(size, this.buf.length * 2, 4096)));
      grown.set(this.buf.subarray(0, this.length));
      this.buf = grown;
    } else if (size < this.length) {
      this.buf.fill(0, size, this.length);
    }
    return this.buf;
  }
}

/**
 * The errno for a failed OPFS call: a full quota is ENOSPC, an object that vanished (removed behind the
 * backend's back) ESTALE, a name OPFS refuses EINVAL, anything else EIO. FsErrors pass through.
 */
export function opfsError(e: unknown): unknown {
  if (e instanceof FsError) return e;
  if (e instanceof DOMException) {
    if (e.name === "QuotaExceededError") return new FsError(ENOSPC, e.message);
    if (e.name === "NotFoundError") return new FsError(ESTALE, e.message);
    return new FsError(EIO, `${e.name}: ${e.message}`);
  }
  if (e instanceof TypeError && /name/i.test(e.message)) return new FsError(EINVAL, e.message);
  return e;
}

/** True for the DOMException an OPFS call throws when `name` is absent. */
export const isNotFound = (e: unknown): boolean => e instanceof DOMException && e.name === "NotFoundError";
