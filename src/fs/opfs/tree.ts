// Moves and probes on OPFS directory handles, which have no rename of their own for directories.

import { isNotFound, type OpfsFileHandle } from "./data.ts";

/** The kind of entry `name` is, trying the likelier kind first; undefined if absent (or a name OPFS refuses). */
export async function probe(dir: FileSystemDirectoryHandle, name: string, first: FileSystemHandleKind): Promise<FileSystemHandleKind | undefined> {
  const is = async (kind: FileSystemHandleKind): Promise<boolean | undefined> => {
    try {
      if (kind === "file") await dir.getFileHandle(name);
      else await dir.getDirectoryHandle(name);
      return true;
    } catch (e) {
      if (e instanceof DOMException && e.name === "TypeMismatchError") return false;
      if (isNotFound(e) || e instanceof TypeError) return undefined;
      throw e;
    }
  };
  const found = await is(first);
  if (found !== false) return found && first;
  const other: FileSystemHandleKind = first === "file" ? "directory" : "file";
  return (await is(other)) ? other : undefined;
}

/** Moves a file, replacing what `newName` holds; copies where `move()` cannot go (into OPFS from a picked folder). */
export async function moveFile(file: OpfsFileHandle, from: FileSystemDirectoryHandle, name: string, to: FileSystemDirectoryHandle, newName: string): Promise<void> {
  if (file.move) {
    try {
      await file.move(to, newName);
      return;
    } catch (e) {
      if (!(e instanceof DOMException) || !["NotSupportedError", "InvalidModificationError", "SecurityError", "AbortError"].includes(e.name)) throw e;
    }
  }
  await copyFile(file, to, newName);
  await from.removeEntry(name);
}

/** Copies a file's bytes to `newName`, replacing what that name holds in one step (a writable commits at close). */
export async function copyFile(file: FileSystemFileHandle, to: FileSystemDirectoryHandle, newName: string): Promise<void> {
  const copy = await (await to.getFileHandle(newName, { create: true })).createWritable();
  await copy.write(await file.getFile());
  await copy.close();
}

/** Empties a file in one step, as a placeholder whose data lives elsewhere. */
export async function emptyFile(file: FileSystemFileHandle): Promise<void> {
  await (await file.createWritable()).close();
}

/** Moves a directory entry by entry (OPFS directory handles cannot move). */
export async function moveTree(from: FileSystemDirectoryHandle, name: string, to: FileSystemDirectoryHandle, newName: string): Promise<void> {
  const src = await from.getDirectoryHandle(name);
  const dst = await to.getDirectoryHandle(newName, { create: true });
  for await (const [child, h] of src.entries()) {
    if (h.kind === "directory") await moveTree(src, child, dst, child);
    else await moveFile(h as OpfsFileHandle, src, child, dst, child);
  }
  await from.removeEntry(name);
}
