// The bench page: starts the Worker, passes it the URL's request, logs its progress to the console (which
// bench/chromium.ts relays) and exposes its results as window.bench.
import type { BenchMessage, BenchRequest, BenchResults, BenchWindow } from "./protocol.ts";

const params = new URLSearchParams(location.search);
const list = (name: string) => (params.get(name) ?? "").split(",").filter(Boolean);
const reps = Number(params.get("reps") ?? 1);
const request: BenchRequest = params.has("root") ? { kind: "root", v86Dir: params.get("v86") ?? "", reps } : { kind: "fs", workloads: list("workloads"), targets: list("targets"), reps };
const worker = new Worker(new URL("./bench.worker.ts", import.meta.url), { type: "module" });

(window as unknown as BenchWindow).bench = new Promise<BenchResults>((resolve, reject) => {
  worker.onmessage = (e: MessageEvent<BenchMessage>) => {
    const m = e.data;
    if (m.type === "log") console.log(m.line);
    else if (m.type === "done") resolve(m.results);
    else reject(new Error(m.message));
  };
  worker.onerror = (e) => reject(new Error(`the bench Worker failed: ${e.message}`));
});
worker.postMessage(request);
