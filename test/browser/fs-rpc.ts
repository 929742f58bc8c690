// A FileSystem whose calls run in a dedicated Worker (where OPFS has sync access handles), over
// postMessage: the conformance suite runs on the page and drives the backend in the Worker.
import { FsError, type FileSystem } from "../../src/vfs/filesystem.ts";

export interface RpcCall {
  id: number;
  method: string;
  args: unknown[];
}

export type RpcResult = { id: number; ok: true; value: unknown } | { id: number; ok: false; errno: number | undefined; message: string };

/** The Worker side: answers each call on `fs` (or on `extra`, for methods beyond the interface such as close). */
export function serve(fs: object, post: (r: RpcResult) => void): (call: RpcCall) => void {
  return ({ id, method, args }) => {
    const target = fs as Record<string, (...a: unknown[]) => unknown>;
    Promise.resolve()
      .then(() => target[method]!(...args))
      .then(
        (value) => post({ id, ok: true, value }),
        (e: unknown) => post({ id, ok: false, errno: e instanceof FsError ? e.errno : undefined, message: e instanceof Error ? e.message : String(e) }),
      );
  };
}

/** The page side: every method of `FileSystem` (and `close`) forwarded to the Worker. */
export function remote(worker: Worker, props: Pick<FileSystem, "rootIno" | "capabilities">): FileSystem & { close(): Promise<void> } {
  let next = 1;
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: unknown): void }>();
  worker.addEventListener("message", (e: MessageEvent<RpcResult>) => {
    const p = pending.get(e.data.id);
    if (!p) return;
    pending.delete(e.data.id);
    if (e.data.ok) p.resolve(e.data.value);
    else p.reject(e.data.errno === undefined ? new Error(e.data.message) : new FsError(e.data.errno, e.data.message));
  });
  const call = (method: string, args: unknown[]): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const id = next++;
      pending.set(id, { resolve, reject });
      worker.postMessage({ id, method, args } satisfies RpcCall);
    });
  return new Proxy(props, {
    get: (target, prop) => (prop in target ? target[prop as keyof typeof target] : (...args: unknown[]) => call(String(prop), args)),
  }) as FileSystem & { close(): Promise<void> };
}
