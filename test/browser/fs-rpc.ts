// The OPFS backend in a dedicated Worker (where OPFS has sync access handles), driven from the page over
// postMessage with src/fs/remote.ts: the conformance suite runs on the page.
import { remoteFileSystem, type RemoteAnswer, type RemoteCall, type RemoteInfo } from "../../src/fs/remote.ts";
import type { FileSystem } from "../../src/vfs/filesystem.ts";

export type RpcCall = RemoteCall & { id: number };
export type RpcResult = RemoteAnswer & { id: number };

/** The page side: the Worker's FileSystem (and its close), each call one message. */
export function remote(worker: Worker, info: RemoteInfo): FileSystem & { close(): Promise<void> } {
  let next = 1;
  const pending = new Map<number, (a: RemoteAnswer) => void>();
  worker.addEventListener("message", (e: MessageEvent<RpcResult>) => {
    pending.get(e.data.id)?.(e.data);
    pending.delete(e.data.id);
  });
  return remoteFileSystem(info, (call) => {
    const id = next++;
    worker.postMessage({ id, ...call } satisfies RpcCall);
    return new Promise((resolve) => pending.set(id, resolve));
  });
}
