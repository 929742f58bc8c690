// Zero-message open (FUSE_NO_OPEN_SUPPORT). With cache=auto or always the server answers the first OPEN
// with ENOSYS, and Linux stops sending OPEN and RELEASE for good: files are read and written through
// fh 0. That removes two of the four round trips a `cat` of a small file costs. Behind fh 0 the server
// keeps one backend handle per inode, opened on first use and given back when the guest forgets the
// inode. The guest holds an inode while any descriptor is open on it, so the handle outlives an unlink
// of the last name (UNLINK and RENAME open it first), exactly as a per-open handle would.
import { EACCES, EPERM, EROFS } from "../vfs/errno.ts";
import { O_RDONLY, O_RDWR } from "../vfs/linux.ts";
import { run, wait, type Awaitable, type Op } from "../vfs/awaitable.ts";
import { FsError, type FileSystem, type Handle, type Ino } from "../vfs/filesystem.ts";

interface InodeFile {
  /** A Promise while the backend opens it. */
  fh: Awaitable<Handle>;
  write: boolean;
}

export class InodeFiles {
  private readonly byIno = new Map<Ino, InodeFile>();
  /** Read-only handles replaced by a writable one; requests may still be using them until the inode goes. */
  private readonly retired = new Map<Ino, Awaitable<Handle>[]>();

  constructor(private readonly fs: FileSystem) {}

  get size(): number {
    return this.byIno.size;
  }

  /** The inode's handle, opened on first use: read-write when the backend allows, read-only for reads otherwise. */
  get(ino: Ino, write: boolean): Awaitable<Handle> {
    const have = this.byIno.get(ino);
    if (have && (have.write || !write)) return have.fh;
    const entry: InodeFile = { fh: 0, write: true };
    this.byIno.set(ino, entry);
    const opened = () => have && this.retired.set(ino, [...(this.retired.get(ino) ?? []), have.fh]);
    const failed = () => {
      if (this.byIno.get(ino) !== entry) return;
      if (have) this.byIno.set(ino, have);
      else this.byIno.delete(ino);
    };
    try {
      // A write through a read-only handle asks again: on a read-only export that fails with the errno
      // the guest should see, and the read-only handle stays.
      entry.fh = have || write ? this.fs.open(ino, O_RDWR) : run(this.openBest(ino, entry));
    } catch (e) {
      failed();
      throw e;
    }
    if (!(entry.fh instanceof Promise)) opened();
    else {
      entry.fh.then((fh) => {
        entry.fh = fh; // later requests need not wait
        opened();
      }, failed);
    }
    return entry.fh;
  }

  /** The inode's handle if it has one: FLUSH and FSYNC of a file never read or written have nothing to do. */
  peek(ino: Ino): Awaitable<Handle> | undefined {
    return this.byIno.get(ino)?.fh;
  }

  /** Takes a read-write handle CREATE opened as the inode's; false if the inode has one already. */
  adopt(ino: Ino, fh: Handle): boolean {
    if (this.byIno.has(ino)) return false;
    this.byIno.set(ino, { fh, write: true });
    return true;
  }

  /** The guest forgot the inode: its handles go back to the backend (one that failed to open or close is gone either way). */
  drop(ino: Ino): Awaitable<void> {
    const entry = this.byIno.get(ino);
    const old = this.retired.get(ino) ?? [];
    this.byIno.delete(ino);
    this.retired.delete(ino);
    return entry || old.length ? run(this.releaseAll(entry ? [entry.fh, ...old] : old)) : undefined;
  }

  private *releaseAll(handles: Awaitable<Handle>[]): Op<void> {
    for (const fh of handles) {
      try {
        yield* wait(this.fs.release(yield* wait(fh)));
      } catch {
        // the next one still goes back
      }
    }
  }

  /** Every inode's handle, and the retired ones, for a snapshot (taken with no request running: all are open). */
  async save(): Promise<{ files: [ino: Ino, fh: Handle, write: boolean][]; retired: [ino: Ino, fh: Handle][] }> {
    const files = await Promise.all([...this.byIno].map(async ([ino, e]): Promise<[Ino, Handle, boolean]> => [ino, await e.fh, e.write]));
    const retired = await Promise.all([...this.retired].flatMap(([ino, fhs]) => fhs.map(async (fh): Promise<[Ino, Handle]> => [ino, await fh])));
    return { files, retired };
  }

  /** Takes saved handles back into an empty table (the backend restored them under the same numbers). */
  restore(saved: { files: readonly (readonly [Ino, Handle, boolean])[]; retired: readonly (readonly [Ino, Handle])[] }): void {
    for (const [ino, fh, write] of saved.files) this.byIno.set(ino, { fh, write });
    for (const [ino, fh] of saved.retired) this.retired.set(ino, [...(this.retired.get(ino) ?? []), fh]);
  }

  /** The session ended: every handle goes back. */
  async clear(): Promise<void> {
    await Promise.allSettled([...new Set([...this.byIno.keys(), ...this.retired.keys()])].map((ino) => this.drop(ino)));
  }

  private *openBest(ino: Ino, entry: InodeFile): Op<Handle> {
    try {
      return yield* wait(this.fs.open(ino, O_RDWR));
    } catch (e) {
      if (!(e instanceof FsError) || (e.errno !== EROFS && e.errno !== EACCES && e.errno !== EPERM)) throw e;
      entry.write = false;
      return yield* wait(this.fs.open(ino, O_RDONLY));
    }
  }
}
