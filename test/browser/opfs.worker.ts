// Hosts one OpfsFs in a dedicated Worker for the browser tests: the first message names the OPFS
// directories, every later one is a call (see fs-rpc.ts).
import { OpfsFs } from "../../src/fs/opfs/opfs.ts";
import { serveFileSystem } from "../../src/fs/remote.ts";
import type { RpcCall, RpcResult } from "./fs-rpc.ts";

export interface OpenShare {
  tree: string;
  meta: string;
  readOnly?: boolean;
}

let handle: ((call: RpcCall) => void) | undefined;

onmessage = async (e: MessageEvent<OpenShare | RpcCall>) => {
  if (handle) return handle(e.data as RpcCall);
  const { tree, meta, readOnly } = e.data as OpenShare;
  try {
    const root = await navigator.storage.getDirectory();
    const fs = await OpfsFs.open(await root.getDirectoryHandle(tree), { meta: await root.getDirectoryHandle(meta, { create: true }), readOnly });
    const server = serveFileSystem(fs, ["close", "saveState", "restoreState"]);
    handle = ({ id, ...call }) => void server.answer(call).then((a) => postMessage({ id, ...a } satisfies RpcResult));
    postMessage({ ready: true, info: server.info });
  } catch (err) {
    postMessage({ ready: false, message: err instanceof Error ? err.message : String(err) });
  }
};
