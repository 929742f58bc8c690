// The page: an xterm.js terminal on the guest's serial console; the emulator runs in a Worker.
import { Terminal } from "@xterm/xterm";
import { FitAddon } from "@xterm/addon-fit";
import type { FromWorker, ToWorker } from "./protocol.ts";

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const status = $("status");
const progress = $<HTMLProgressElement>("progress");

if (!globalThis.crossOriginIsolated) $("isolation").hidden = false;

const term = new Terminal({ convertEol: false, cursorBlink: true, fontSize: 14, scrollback: 5000 });
const fit = new FitAddon();
term.loadAddon(fit);
term.open($("terminal"));
fit.fit();
new ResizeObserver(() => fit.fit()).observe($("terminal"));

const worker = new Worker(new URL("./emulator.worker.ts", import.meta.url), { type: "module" });
const send = (m: ToWorker): void => worker.postMessage(m);
const encoder = new TextEncoder();
term.onData((s) => send({ type: "input", data: encoder.encode(s) }));

worker.onmessage = (e: MessageEvent<FromWorker>) => {
  const m = e.data;
  switch (m.type) {
    case "progress":
      progress.value = m.phase === "download" ? (0.8 * m.loaded) / m.total : 0.9;
      status.textContent = m.phase === "download" ? `downloading guest ${(m.loaded / 2 ** 20).toFixed(1)} MiB` : "booting…";
      break;
    case "serial":
      term.write(m.data);
      break;
    case "ready":
      progress.value = 1;
      progress.hidden = true;
      status.textContent = `shell ready · guest uptime ${m.uptime.toFixed(2)} s · page ${(m.bootMs / 1000).toFixed(1)} s`;
      document.body.dataset.state = "ready";
      document.body.dataset.uptime = String(m.uptime);
      term.focus();
      break;
    case "halted":
      status.textContent = "guest halted";
      document.body.dataset.state = "halted";
      break;
    case "error":
      $("error").textContent = `error: ${m.message}`;
      $("error").hidden = false;
      status.textContent = "failed";
      document.body.dataset.state = "error";
      break;
  }
};

const params = new URLSearchParams(location.search);
send({ type: "start", memoryMiB: Number(params.get("memory") ?? 256), append: params.get("append") ?? undefined });
