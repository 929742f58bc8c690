// The backends the demo can share as the guest's /mnt: the in-memory sample tree, OPFS (persistent across
// reloads), or a folder the user picked. Runs in the emulator Worker.
import { createSampleTree, MemFs, OpfsFs, type FileSystem } from "../../src/index.ts";
import type { Backend } from "../protocol.ts";
import { writeFile } from "./files.ts";

export interface Share {
  fs: FileSystem;
  /** What the page shows as the share's source. */
  label: string;
}

const OPFS_README = `This directory lives in your browser's origin private file system (OPFS).

What you write here survives a reload of the page: run \`sync\` first, and the guest finds
exactly what it left. Files are plain OPFS files (see DevTools → Application → Storage);
modes, owners, symlinks, hard links and xattrs are kept in a metadata file beside them.
`;

/**
 * Opens the share. `forRestore`: a backend as a snapshot's restore takes it, untouched: memfs empty (the
 * snapshot holds the tree), OPFS unseeded (the snapshot names its files).
 */
export async function openShare(backend: Backend, folder: FileSystemDirectoryHandle | undefined, forRestore = false): Promise<Share> {
  switch (backend) {
    case "memfs": {
      const fs = new MemFs();
      if (forRestore) return { fs, label: "memfs: the tree of the snapshot, in memory" };
      await createSampleTree(fs);
      return { fs, label: "memfs: the sample tree, in memory (a reload starts afresh, or where the last Save left it)" };
    }
    case "opfs": {
      const root = await navigator.storage.getDirectory();
      const tree = await root.getDirectoryHandle("share", { create: true });
      const fs = await OpfsFs.open(tree, { meta: await root.getDirectoryHandle("share.meta", { create: true }) });
      if (!forRestore && (await isEmpty(tree))) await seed(fs);
      return { fs, label: "OPFS: persistent across reloads (run sync before leaving)" };
    }
    case "local": {
      if (!folder) throw new Error("no folder was picked");
      // Metadata of a picked folder stays in OPFS, one directory per folder name: the folder itself only
      // ever sees the files the guest makes.
      const metaRoot = await (await navigator.storage.getDirectory()).getDirectoryHandle("local.meta", { create: true });
      const fs = await OpfsFs.open(folder, { meta: await metaRoot.getDirectoryHandle(folder.name || "folder", { create: true }), syncAccess: false });
      return { fs, label: `your folder "${folder.name}" (File System Access API)` };
    }
  }
}

async function isEmpty(dir: FileSystemDirectoryHandle): Promise<boolean> {
  for await (const _ of dir.keys()) return false;
  return true;
}

/** A fresh OPFS share starts with something to cat. */
async function seed(fs: FileSystem): Promise<void> {
  const enc = new TextEncoder();
  await writeFile(fs, "", "README", enc.encode(OPFS_README));
  await writeFile(fs, "", "hello.txt", enc.encode("Hello from OPFS!\n"));
  await fs.syncfs();
}
