// bench/fs.ts and bench/root.ts in a Worker, where the demo runs its guest: the same guest, devices and
// scripts as in Node; only the images and the root's files are fetched and v86.wasm comes by URL.
import wasmUrl from "v86/build/v86.wasm?url";
import { fetchGuestImages, Guest, httpBlobSource, INDEX_NAME } from "../../src/index.ts";
import { runFsBench, selectTargets, WORKLOADS } from "../fs.ts";
import { rootTargets, runRootBench } from "../root.ts";
import type { BenchMessage, BenchRequest, BenchResults } from "./protocol.ts";

const post = (m: BenchMessage): void => postMessage(m);
const log = (line: string) => post({ type: "log", line });

onmessage = async (e: MessageEvent<BenchRequest>) => {
  const request = e.data;
  try {
    const base = new URL(import.meta.env.BASE_URL, location.origin);
    const runtime = { images: await fetchGuestImages(new URL("guest/", base).href, () => {}), wasmPath: wasmUrl };
    let results: BenchResults;
    if (request.kind === "fs") {
      const workloads = WORKLOADS.filter((w) => request.workloads.includes(w.name));
      results = { kind: "fs", fs: await runFsBench(workloads, selectTargets(request.targets), request.reps, log, runtime) };
    } else {
      // The image as the page's ?root=debian reads it (vite.rootfs.ts); v86 fetches its basefs itself.
      const image = new URL("rootfs/debian/", base);
      const v86 = new URL(`/@fs${request.v86Dir}/`, location.origin).href;
      const targets = rootTargets({
        index: async () => {
          const r = await fetch(new URL(INDEX_NAME, image));
          if (!r.ok) throw new Error(`${image.href}${INDEX_NAME}: HTTP ${r.status}`);
          return r.text();
        },
        blobs: httpBlobSource(image),
        ninep: { basefs: `${v86}fs.json`, baseurl: v86 },
        boot: (opts) => Guest.boot({ ...opts, runtime }),
      });
      results = { kind: "root", root: await runRootBench(targets, request.reps, log) };
    }
    post({ type: "done", results });
  } catch (err) {
    post({ type: "error", message: err instanceof Error ? err.message : String(err) });
  }
};
