// STORE_DIR, the hidden directory at the hostdir backend's root: the metadata journal (metadata.ts keeps
// its contents) and the files of unnamed O_TMPFILE inodes.

import { constants } from "node:fs";
import { mkdir, open, readdir, rename, unlink, type FileHandle } from "node:fs/promises";
import type { JournalStorage } from "./metadata.ts";
import { absentIfENOENT, at, DIR_FLAGS, rethrowHost, writeAll } from "./host.ts";

/** The hidden directory at the root: the metadata journal and the files of unnamed O_TMPFILE inodes. */
export const STORE_DIR = ".virtiofs-web";
export const JOURNAL = "metadata.jsonl";
const JOURNAL_TMP = "metadata.jsonl.tmp";
/** Names in STORE_DIR of O_TMPFILE inodes not linked yet; gone with their last handle, or at the next open. */
export const TMPFILE_PREFIX = "tmpfile-";

/**
 * STORE_DIR and the metadata journal in it, made on first need (a read-only or never-written export stays
 * untouched). Replacing the journal writes a temporary file, syncs it, renames it over the journal and
 * syncs the directory.
 */
export class StoreDir implements JournalStorage {
  private journal: FileHandle | undefined;
  /** The directory, once it exists or is being made. */
  private dir: Promise<FileHandle> | undefined;

  private constructor(
    private readonly root: FileHandle,
    found: FileHandle | undefined,
  ) {
    this.dir = found === undefined ? undefined : Promise.resolve(found);
  }

  static async open(root: FileHandle): Promise<StoreDir> {
    return new StoreDir(root, await open(at(root.fd, STORE_DIR), DIR_FLAGS).catch(absentIfENOENT));
  }

  get exists(): boolean {
    return this.dir !== undefined;
  }

  /** The directory, made (once, however many ask at the same time) if it does not exist yet. */
  directory(): Promise<FileHandle> {
    this.dir ??= this.make().catch((e: unknown) => {
      this.dir = undefined; // the next call tries again
      throw e;
    });
    return this.dir;
  }

  private async make(): Promise<FileHandle> {
    await mkdir(at(this.root.fd, STORE_DIR), 0o700).catch(rethrowHost);
    const dir = await open(at(this.root.fd, STORE_DIR), DIR_FLAGS).catch(rethrowHost);
    await this.root.sync().catch(rethrowHost); // the directory's name must survive a crash
    return dir;
  }

  async read(): Promise<Uint8Array | undefined> {
    if (this.dir === undefined) return undefined;
    const file = await open(at((await this.dir).fd, JOURNAL), constants.O_RDONLY | constants.O_NOFOLLOW).catch(absentIfENOENT);
    if (file === undefined) return undefined;
    try {
      return await file.readFile();
    } finally {
      await file.close();
    }
  }

  async append(bytes: Uint8Array): Promise<void> {
    if (this.journal === undefined) {
      const dir = await this.directory();
      this.journal = await open(at(dir.fd, JOURNAL), constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, 0o600).catch(rethrowHost);
      await dir.sync().catch(rethrowHost); // the journal's own name must survive a crash too
    }
    await writeAll(this.journal, bytes, null);
  }

  async sync(): Promise<void> {
    await this.journal?.datasync().catch(rethrowHost);
  }

  async replace(bytes: Uint8Array): Promise<void> {
    const dir = await this.directory();
    const tmp = await open(at(dir.fd, JOURNAL_TMP), constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o600).catch(rethrowHost);
    try {
      await writeAll(tmp, bytes, 0);
      await tmp.sync().catch(rethrowHost);
    } finally {
      await tmp.close();
    }
    await rename(at(dir.fd, JOURNAL_TMP), at(dir.fd, JOURNAL)).catch(rethrowHost);
    await dir.sync().catch(rethrowHost);
    await this.journal?.close(); // it holds the replaced file: reopen on the next append
    this.journal = undefined;
  }

  /** Unnamed O_TMPFILE inodes of an earlier run are gone, as Linux's are after a crash. */
  async removeTmpfiles(): Promise<void> {
    if (this.dir === undefined) return;
    const dir = await this.dir;
    for (const name of await readdir(at(dir.fd, ".")).catch(rethrowHost)) {
      if (name.startsWith(TMPFILE_PREFIX)) await unlink(at(dir.fd, name)).catch(rethrowHost);
    }
  }

  async close(): Promise<void> {
    await this.journal?.close();
    const dir = await this.dir?.catch(() => undefined); // one that could not be made has nothing to close
    await dir?.close();
  }
}
