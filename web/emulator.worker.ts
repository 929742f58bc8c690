// The emulator Worker: downloads the guest images, runs v86, and bridges the serial console to the
// page. Running here keeps the page responsive while the CPU loop spins.
import wasmUrl from "v86/build/v86.wasm?url";
import { ConsoleFrames } from "../src/machine/console-frames.ts";
import { kernelCmdline, randomNonce } from "../src/machine/cmdline.ts";
import { fetchImages } from "../src/machine/fetch-images.ts";
import { startMachine, type Machine } from "../src/machine/machine.ts";
import type { FromWorker, ToWorker } from "./protocol.ts";

const post = (m: FromWorker, transfer: Transferable[] = []): void => postMessage(m, { transfer });
let machine: Machine | undefined;

async function start(memoryMiB: number, append: string | undefined): Promise<void> {
  const t0 = performance.now();
  const images = await fetchImages(new URL("guest/", new URL(import.meta.env.BASE_URL, location.origin)).href, (p) =>
    post({ type: "progress", phase: "download", ...p }),
  );
  post({ type: "progress", phase: "boot", loaded: 0, total: 1 });
  const nonce = randomNonce();
  const frames = new ConsoleFrames(nonce, {
    console: (data) => post({ type: "serial", data }, [data.buffer]),
    ready: (uptime) => post({ type: "ready", uptime, bootMs: performance.now() - t0 }),
    halt: () => post({ type: "halted" }),
  });
  machine = await startMachine({
    images,
    cmdline: kernelCmdline({ nonce, mode: { kind: "shell" }, append }),
    memoryMiB,
    wasmPath: wasmUrl,
    onSerial: (b) => frames.push(b),
  });
}

onmessage = (e: MessageEvent<ToWorker>) => {
  const m = e.data;
  if (m.type === "start" && !machine) {
    start(m.memoryMiB, m.append).catch((err: unknown) => post({ type: "error", message: err instanceof Error ? err.message : String(err) }));
  } else if (m.type === "input") {
    machine?.send(m.data);
  }
};
