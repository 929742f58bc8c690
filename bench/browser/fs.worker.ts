// bench/fs.ts in a Worker, where the demo runs its guest: the same guest, devices and scripts as in Node;
// only the images are fetched and v86.wasm comes by URL.
import wasmUrl from "v86/build/v86.wasm?url";
import { fetchGuestImages } from "../../src/index.ts";
import { runFsBench, selectTargets, WORKLOADS } from "../fs.ts";
import type { FsBenchMessage, FsBenchRequest } from "./protocol.ts";

const post = (m: FsBenchMessage): void => postMessage(m);

onmessage = async (e: MessageEvent<FsBenchRequest>) => {
  const { workloads, targets, reps } = e.data;
  try {
    const images = await fetchGuestImages(new URL("guest/", new URL(import.meta.env.BASE_URL, location.origin)).href, () => {});
    const results = await runFsBench(
      WORKLOADS.filter((w) => workloads.includes(w.name)),
      selectTargets(targets),
      reps,
      (line) => post({ type: "log", line }),
      { images, wasmPath: wasmUrl },
    );
    post({ type: "done", results });
  } catch (err) {
    post({ type: "error", message: err instanceof Error ? err.message : String(err) });
  }
};
