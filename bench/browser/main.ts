// The bench page: starts the Worker, passes it the URL's request, logs its progress to the console (which
// bench/chromium.ts relays) and exposes its results as window.fsBench.
import type { FsResults } from "../fs.ts";
import type { FsBenchMessage, FsBenchRequest, FsBenchWindow } from "./protocol.ts";

const params = new URLSearchParams(location.search);
const list = (name: string) => (params.get(name) ?? "").split(",").filter(Boolean);
const request: FsBenchRequest = { workloads: list("workloads"), targets: list("targets"), reps: Number(params.get("reps") ?? 1) };
const worker = new Worker(new URL("./fs.worker.ts", import.meta.url), { type: "module" });

(window as unknown as FsBenchWindow).fsBench = new Promise<FsResults>((resolve, reject) => {
  worker.onmessage = (e: MessageEvent<FsBenchMessage>) => {
    const m = e.data;
    if (m.type === "log") console.log(m.line);
    else if (m.type === "done") resolve(m.results);
    else reject(new Error(m.message));
  };
  worker.onerror = (e) => reject(new Error(`the bench Worker failed: ${e.message}`));
});
worker.postMessage(request);
