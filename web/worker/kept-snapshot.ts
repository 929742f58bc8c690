// The snapshot the page keeps in OPFS: the latest Save, one file per share backend and DAX window size (a
// memfs snapshot and an OPFS one, or one with a 64 MiB window and one without, do not evict each other), at
// the OPFS root beside the OPFS share's "share" directory, so the share never sees it. Runs in the emulator
// Worker.
import type { Backend } from "../protocol.ts";

/** Which guest a kept snapshot is for: the share's backend and its DAX window, if any. */
export interface KeptFor {
  backend: Backend;
  daxMiB?: number;
}

const fileName = ({ backend, daxMiB }: KeptFor): string => `kept-snapshot.${backend}${daxMiB === undefined ? "" : `.dax${daxMiB}`}.vfsw`;

/** The kept snapshot for this guest, or undefined when there is none. */
export async function readKept(which: KeptFor): Promise<Uint8Array | undefined> {
  try {
    const handle = await (await navigator.storage.getDirectory()).getFileHandle(fileName(which));
    return new Uint8Array(await (await handle.getFile()).arrayBuffer());
  } catch (e) {
    if (e instanceof DOMException && e.name === "NotFoundError") return undefined;
    throw e;
  }
}

/** Replaces the kept snapshot: createWritable writes a swap file, so an interrupted save keeps the last one. */
export async function keep(which: KeptFor, bytes: Uint8Array<ArrayBuffer>): Promise<void> {
  const handle = await (await navigator.storage.getDirectory()).getFileHandle(fileName(which), { create: true });
  const out = await handle.createWritable();
  await out.write(bytes);
  await out.close();
}

export async function dropKept(which: KeptFor): Promise<void> {
  try {
    await (await navigator.storage.getDirectory()).removeEntry(fileName(which));
  } catch (e) {
    if (!(e instanceof DOMException && e.name === "NotFoundError")) throw e;
  }
}
