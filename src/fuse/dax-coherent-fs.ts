// The backend as the handlers see it when the device has a DAX window: every call goes to the backend, and
// the ones that touch file bytes keep the window coherent with it (src/fuse/dax.ts moves the bytes). The
// guest's stores live in the window until written back, so before the backend reads a file (READ, LSEEK,
// the source of COPY_FILE_RANGE) the dirty pages over the range reach it, and before anything changes the
// file behind the window (WRITE, FALLOCATE, COPY_FILE_RANGE, truncation) all of the file's dirty pages do;
// afterwards the mapped bytes it changed are copied in again. FSYNC, FLUSH, RELEASE and SYNCFS write back
// first. Handles learn their inode when opened here, whoever opens them (OPEN, CREATE, zero-message open).
import { O_TRUNC } from "../vfs/linux.ts";
import { run, wait, type Awaitable, type Op } from "../vfs/awaitable.ts";
import type { Cred, DirEntry, FileAttr, FileSystem, FsCapabilities, Handle, Ino, SetAttr, StatFs } from "../vfs/filesystem.ts";
import { DaxMappings, type FileRange } from "./dax.ts";
import type { FuseDaxWindow } from "./dax-window.ts";

/** An open file: its inode, and the open(2) flags SETUPMAPPING checks a mapping's access against. */
export interface OpenFile {
  ino: Ino;
  flags: number;
}

export class DaxCoherentFs implements FileSystem {
  readonly mappings: DaxMappings;
  readonly rootIno: Ino;
  readonly capabilities: FsCapabilities;
  /** FLUSH has only the window's stores to make durable: the backend itself buffers nothing until close. */
  readonly flushesOnlyWindow: boolean;
  private readonly files = new Map<Handle, OpenFile>();

  constructor(
    private readonly fs: FileSystem,
    window: FuseDaxWindow,
    log: (message: string) => void,
  ) {
    this.mappings = new DaxMappings(window, fs, log);
    this.rootIno = fs.rootIno;
    this.capabilities = fs.capabilities;
    this.flushesOnlyWindow = fs.flush === undefined;
  }

  /** The handles opened here and their files, for a snapshot. */
  openFiles(): [fh: Handle, ino: Ino, flags: number][] {
    return [...this.files].map(([fh, f]) => [fh, f.ino, f.flags]);
  }

  /** Takes saved handles back (their backend restored them under the same numbers). */
  restoreFiles(files: readonly (readonly [Handle, Ino, number])[]): void {
    for (const [fh, ino, flags] of files) this.files.set(fh, { ino, flags });
  }

  /** The file a handle opened here is open on, until it is released. */
  file(fh: Handle): OpenFile | undefined {
    return this.files.get(fh);
  }

  open(ino: Ino, flags: number): Awaitable<Handle> {
    return run(this.opened(ino, flags));
  }

  private *opened(ino: Ino, flags: number): Op<Handle> {
    const op = () => this.fs.open(ino, flags);
    const fh = yield* wait(flags & O_TRUNC ? this.mappings.resize(ino, op) : op());
    this.files.set(fh, { ino, flags });
    return fh;
  }

  create(parent: Ino, name: string, mode: number, flags: number, cred: Cred): Awaitable<{ attr: FileAttr; fh: Handle }> {
    return run(this.created(this.fs.create(parent, name, mode, flags, cred), flags));
  }

  tmpfile(parent: Ino, mode: number, flags: number, cred: Cred): Awaitable<{ attr: FileAttr; fh: Handle }> {
    return run(this.created(this.fs.tmpfile(parent, mode, flags, cred), flags));
  }

  private *created(made: Awaitable<{ attr: FileAttr; fh: Handle }>, flags: number): Op<{ attr: FileAttr; fh: Handle }> {
    const created = yield* wait(made);
    this.files.set(created.fh, { ino: created.attr.ino, flags });
    // An existing file, truncated: its stores went with its bytes.
    if (flags & O_TRUNC) yield* wait(this.mappings.truncated(created.attr.ino));
    return created;
  }

  release(fh: Handle): Awaitable<void> {
    return run(this.released(fh));
  }

  private *released(fh: Handle): Op<void> {
    try {
      yield* this.sync(fh);
    } finally {
      this.files.delete(fh);
      yield* wait(this.fs.release(fh));
    }
  }

  read(fh: Handle, offset: number, length: number): Awaitable<Uint8Array> {
    return this.mappings.io({ read: this.range(fh, offset, length) }, () => this.fs.read(fh, offset, length));
  }

  write(fh: Handle, offset: number, data: Uint8Array): Awaitable<number> {
    return this.mappings.io({ change: this.range(fh, offset, data.length) }, () => this.fs.write(fh, offset, data));
  }

  fallocate(fh: Handle, mode: number, offset: number, length: number): Awaitable<void> {
    return this.mappings.io({ change: this.range(fh, offset, length) }, () => this.fs.fallocate(fh, mode, offset, length));
  }

  copyFileRange(fhIn: Handle, offIn: number, fhOut: Handle, offOut: number, length: number): Awaitable<number> {
    const access = { read: this.range(fhIn, offIn, length), change: this.range(fhOut, offOut, length) };
    return this.mappings.io(access, () => this.fs.copyFileRange(fhIn, offIn, fhOut, offOut, length));
  }

  /** Where data lies depends on stores still in the window. */
  lseek(fh: Handle, offset: number, whence: number): Awaitable<number> {
    return this.mappings.io({ read: this.range(fh, offset, Number.MAX_SAFE_INTEGER - offset) }, () => this.fs.lseek(fh, offset, whence));
  }

  setattr(ino: Ino, a: SetAttr, fh?: Handle): Awaitable<FileAttr> {
    const op = () => this.fs.setattr(ino, a, fh);
    return a.size === undefined ? op() : this.mappings.resize(ino, op);
  }

  fsync(fh: Handle, datasync: boolean): Awaitable<void> {
    return run(this.afterSync(fh, () => this.fs.fsync(fh, datasync)));
  }

  /** Always there: close(2) makes the window's stores durable even when the backend has nothing to do. */
  flush(fh: Handle): Awaitable<void> {
    return run(this.afterSync(fh, () => this.fs.flush?.(fh)));
  }

  async syncfs(): Promise<void> {
    await this.mappings.syncAll();
    await this.fs.syncfs();
  }

  /** The file range of a handle opened here; a handle that is not (EBADF from the backend) touches no window. */
  private range(fh: Handle, offset: number, length: number): FileRange | undefined {
    const file = this.files.get(fh);
    return file && { ino: file.ino, offset, length };
  }

  /** The file's stores reach the backend, then `op` runs. */
  private *afterSync(fh: Handle, op: () => Awaitable<void>): Op<void> {
    yield* this.sync(fh);
    yield* wait(op());
  }

  private *sync(fh: Handle): Op<void> {
    const file = this.files.get(fh);
    if (file) yield* wait(this.mappings.sync(file.ino));
  }

  // Names, attributes, directories and extended attributes: no file bytes, straight to the backend.
  lookup(parent: Ino, name: string): Awaitable<FileAttr> {
    return this.fs.lookup(parent, name);
  }
  forget(ino: Ino, nlookup: number): Awaitable<void> {
    return this.fs.forget(ino, nlookup);
  }
  getattr(ino: Ino): Awaitable<FileAttr> {
    return this.fs.getattr(ino);
  }
  readlink(ino: Ino): Awaitable<string> {
    return this.fs.readlink(ino);
  }
  access(ino: Ino, mask: number): Awaitable<void> {
    return this.fs.access(ino, mask);
  }
  statfs(ino: Ino): Awaitable<StatFs> {
    return this.fs.statfs(ino);
  }
  opendir(ino: Ino): Awaitable<Handle> {
    return this.fs.opendir(ino);
  }
  readdir(dh: Handle, cookie: number, maxEntries?: number): Awaitable<DirEntry[]> {
    return this.fs.readdir(dh, cookie, maxEntries);
  }
  releasedir(dh: Handle): Awaitable<void> {
    return this.fs.releasedir(dh);
  }
  fsyncdir(dh: Handle, datasync: boolean): Awaitable<void> {
    return this.fs.fsyncdir(dh, datasync);
  }
  mknod(parent: Ino, name: string, mode: number, rdev: number, cred: Cred): Awaitable<FileAttr> {
    return this.fs.mknod(parent, name, mode, rdev, cred);
  }
  mkdir(parent: Ino, name: string, mode: number, cred: Cred): Awaitable<FileAttr> {
    return this.fs.mkdir(parent, name, mode, cred);
  }
  symlink(parent: Ino, name: string, target: string, cred: Cred): Awaitable<FileAttr> {
    return this.fs.symlink(parent, name, target, cred);
  }
  link(ino: Ino, newParent: Ino, newName: string): Awaitable<FileAttr> {
    return this.fs.link(ino, newParent, newName);
  }
  unlink(parent: Ino, name: string): Awaitable<void> {
    return this.fs.unlink(parent, name);
  }
  rmdir(parent: Ino, name: string): Awaitable<void> {
    return this.fs.rmdir(parent, name);
  }
  rename(parent: Ino, name: string, newParent: Ino, newName: string, flags: number): Awaitable<void> {
    return this.fs.rename(parent, name, newParent, newName, flags);
  }
  getxattr(ino: Ino, name: string): Awaitable<Uint8Array> {
    return this.fs.getxattr(ino, name);
  }
  setxattr(ino: Ino, name: string, value: Uint8Array, flags: number): Awaitable<void> {
    return this.fs.setxattr(ino, name, value, flags);
  }
  listxattr(ino: Ino): Awaitable<string[]> {
    return this.fs.listxattr(ino);
  }
  removexattr(ino: Ino, name: string): Awaitable<void> {
    return this.fs.removexattr(ino, name);
  }
}
