// npm run soak -- [--reboots N] [--remounts N] [--kills N] [--reloads N] [--seed S]
// The lifecycle soak (bench/lifecycle.ts): one guest rebooted N times and its shares unmounted and
// mounted again N times, every table back at its baseline after each cycle. Crash safety
// (bench/crash.ts): the process serving a host directory SIGKILLed N times while its guest writes,
// renames and syncs, every reported file intact after each; the demo page on OPFS reloaded N times in
// headless Chromium during the same (bench/opfs-reload.ts). Exits 1 on any deviation.
import { parseArgs } from "node:util";
import { withPage } from "./chromium.ts";
import { runHostdirKills } from "./crash.ts";
import { runOpfsReloads } from "./opfs-reload.ts";
import { runLifecycle } from "./lifecycle.ts";

const { values } = parseArgs({
  options: {
    reboots: { type: "string", default: "1000" },
    remounts: { type: "string", default: "1000" },
    kills: { type: "string", default: "100" },
    reloads: { type: "string", default: "100" },
    seed: { type: "string", default: String(Date.now() % 1_000_000) },
  },
});
const count = (name: string, v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} takes a non-negative integer`);
  return n;
};
const reboots = count("reboots", values.reboots);
const remounts = count("remounts", values.remounts);
const kills = count("kills", values.kills);
const reloads = count("reloads", values.reloads);
const seed = count("seed", values.seed);
const log = (line: string) => console.log(line);

let failed = false;
if (reboots || remounts) {
  log(`lifecycle: ${reboots} reboots, ${remounts} remounts, seed ${seed}`);
  const r = await runLifecycle({ reboots, remounts, seed, every: Math.max(1, Math.round((reboots + remounts) / 50)), log });
  log(
    `lifecycle: ${r.reboots} reboots (${(r.rebootMs / 1000).toFixed(2)} s each), ${r.remounts} remounts (${(r.remountMs / 1000).toFixed(2)} s each); ` +
      `baseline nodes ${r.baseline.nodes.join("/")}, handles ${r.baseline.handles.join("/")}, host fds ${r.baseline.fds}; ` +
      `heap ${r.heapStartMiB.toFixed(1)} → ${r.heapEndMiB.toFixed(1)} MiB (max ${r.heapMaxMiB.toFixed(1)}); ${r.deviations.length} deviations`,
  );
  const ends = (xs: number[], f: (x: number) => string) => (xs.length ? `${f(xs[0] ?? NaN)} first, ${f(xs.at(-1) ?? NaN)} last` : "none");
  log(`lifecycle: reboot alone ${ends(r.rebootWallMs, (ms) => `${(ms / 1000).toFixed(1)} s`)}; guest uptime at ready ${ends(r.rebootUptime, (s) => `${s.toFixed(2)} s`)}`);
  for (const d of r.deviations) log(`  DEVIATION ${d}`);
  failed ||= r.deviations.length > 0;
}
if (kills) {
  log(`hostdir kills: ${kills}, seed ${seed}`);
  const r = await runHostdirKills({ kills, seed, log });
  log(
    `hostdir kills: ${r.kills} SIGKILLs (${(r.meanCycleMs / 1000).toFixed(1)} s each, boot included), ${r.reported} files reported durable, ` +
      `the newest of ${r.checked} names checked after the last (${(r.bytesIntact / 1024).toFixed(0)} KiB intact); ${r.problems.length} problems`,
  );
  for (const p of r.problems) log(`  LOST ${p}`);
  failed ||= r.problems.length > 0;
}
if (reloads) {
  log(`OPFS reloads: ${reloads}, seed ${seed}`);
  const r = await withPage({}, (page, url) => runOpfsReloads(page, url, { reloads, seed, log }));
  log(
    `OPFS reloads: ${r.reloads} reloads (${(r.meanCycleMs / 1000).toFixed(1)} s each, boot included), ${r.reported} files seen reported durable, ` +
      `${r.checked} checks after reloads; ${r.problems.length} problems`,
  );
  for (const p of r.problems) log(`  LOST ${p}`);
  failed ||= r.problems.length > 0;
}
process.exit(failed ? 1 : 0);
