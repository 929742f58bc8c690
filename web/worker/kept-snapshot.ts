// The snapshot the page keeps in OPFS: the latest Save, one file per share backend (a memfs snapshot and an
// OPFS one do not evict each other), at the OPFS root beside the OPFS share's "share" directory, so the
// share never sees it. Runs in the emulator Worker.
import type { Backend } from "../protocol.ts";

const fileName = (backend: Backend): string => `kept-snapshot.${backend}.vfsw`;

/** The kept snapshot for `backend`, or undefined when there is none. */
export async function readKept(backend: Backend): Promise<Uint8Array | undefined> {
  try {
    const handle = await (await navigator.storage.getDirectory()).getFileHandle(fileName(backend));
    return new Uint8Array(await (await handle.getFile()).arrayBuffer());
  } catch (e) {
    if (e instanceof DOMException && e.name === "NotFoundError") return undefined;
    throw e;
  }
}

/** Replaces the kept snapshot: createWritable writes a swap file, so an interrupted save keeps the last one. */
export async function keep(backend: Backend, bytes: Uint8Array<ArrayBuffer>): Promise<void> {
  const handle = await (await navigator.storage.getDirectory()).getFileHandle(fileName(backend), { create: true });
  const out = await handle.createWritable();
  await out.write(bytes);
  await out.close();
}

export async function dropKept(backend: Backend): Promise<void> {
  try {
    await (await navigator.storage.getDirectory()).removeEntry(fileName(backend));
  } catch (e) {
    if (!(e instanceof DOMException && e.name === "NotFoundError")) throw e;
  }
}
