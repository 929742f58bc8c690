// Crash safety on OPFS: the demo page (?backend=opfs) runs bench/crash.ts's workload in its terminal and
// is reloaded at a random moment, which ends the emulator's Worker wherever it was. After the reload the
// guest checks, on the same OPFS tree, that every file whose fsync or sync the terminal showed returning
// is there with at least that sequence number and whole, and that no file renamed into place is torn.
// The workload and the check live as scripts on the share itself, so they survive the reloads.
import type { Page } from "@playwright/test";
import { seeded, workloadScript } from "./crash.ts";

const DIR = "/mnt/crash";

/** The check, run in the guest with the newest report per name as NAME=SEQ arguments. */
const CHECK = `cd ${DIR} || exit 1
whole() {
  sz=$(stat -c %s "$1"); h=x; t=y
  if [ "$sz" -gt 65 ]; then h=$(head -c $((sz - 65)) "$1" | sha256sum); h=\${h%% *}; t=$(tail -c 65 "$1"); fi
  [ "$h" = "$t" ]
}
bad=0
for f in r*; do
  [ -f "$f" ] || continue
  whole "$f" || { echo "BAD $f torn"; bad=$((bad + 1)); }
done
n=0
for e in "$@"; do
  f=\${e%=*}; s=\${e#*=}; n=$((n + 1))
  if [ ! -f "$f" ]; then echo "BAD $f gone"; bad=$((bad + 1)); continue; fi
  case $f in u*) whole "$f" || { echo "BAD $f torn"; bad=$((bad + 1)); continue; } ;; esac
  got=$(head -n 1 "$f")
  [ "$got" -ge "$s" ] 2>/dev/null || { echo "BAD $f went back from $s to $got"; bad=$((bad + 1)); }
  case $f in r*) [ "$(stat -c %a "$f")" = 640 ] || { echo "BAD $f mode"; bad=$((bad + 1)); } ;; esac
done
echo "CHECKED $n BAD $bad"`;

export interface ReloadOptions {
  reloads: number;
  seed: number;
  /** The reload comes this long after the workload started, uniformly (default 1 to 20 s: a round takes seconds in the page). */
  minMs?: number;
  maxMs?: number;
  log?(line: string): void;
}

export interface ReloadReport {
  reloads: number;
  /** Reports seen before the reloads, and the names checked after each (all cycles summed). */
  reported: number;
  checked: number;
  meanCycleMs: number;
  problems: string[];
}

// Generous: the soak runs for an hour beside other work on a shared machine.
const READY_MS = 180_000;

async function waitReady(page: Page): Promise<void> {
  await page.waitForSelector("body[data-state=ready]", { timeout: READY_MS });
  await page.waitForFunction(() => document.querySelector("#terminal .xterm-rows")?.textContent?.includes("# "), undefined, { timeout: 10_000 });
}

const rowsText = (page: Page): Promise<string> => page.locator("#terminal .xterm-rows").innerText();

let commands = 0;
/** Types a command into the terminal and resolves to its output (as test/e2e/page.ts does). */
async function run(page: Page, command: string, timeout = 180_000): Promise<string> {
  const marker = `end-of-${++commands}-${Date.now() % 100_000}`;
  await page.locator("#terminal .xterm").click();
  // Split by quotes on the command line, so only the echo's output matches the marker.
  await page.keyboard.type(`${command}; echo "${marker.slice(0, 4)}""${marker.slice(4)}"\n`);
  await page.waitForFunction((m) => document.querySelector("#terminal .xterm-rows")?.textContent?.includes(m), marker, { timeout });
  const text = await rowsText(page);
  return text.slice(Math.max(0, text.lastIndexOf(command.slice(0, 20))), text.lastIndexOf(marker));
}

/**
 * Writes a script onto the share in typed lines of base64 (the shell sees none of its characters), in
 * pieces: busybox's line editor takes 1,024 characters a line.
 */
async function install(page: Page, path: string, script: string): Promise<void> {
  const b64 = Buffer.from(script).toString("base64");
  await run(page, `: > ${path}.b64`);
  for (let at = 0; at < b64.length; at += 800) await run(page, `echo ${b64.slice(at, at + 800)} >> ${path}.b64`);
  await run(page, `base64 -d ${path}.b64 > ${path} && rm ${path}.b64`);
}

/** The workload's reports the terminal shows now (a line scrolled away only makes the check smaller). */
function reports(text: string): Map<string, number> {
  const seen = new Map<string, number>();
  for (const m of text.matchAll(/\b(?:F?SYNCED) ([ru]\d+) (\d+) /g)) {
    const [, name, seq] = m;
    if (name && seq) seen.set(name, Math.max(seen.get(name) ?? 0, Number(seq)));
  }
  return seen;
}

/** Reloads the page at `url` (the demo) `reloads` times during the workload, checking after each; see the file's head. */
export async function runOpfsReloads(page: Page, url: string, opts: ReloadOptions): Promise<ReloadReport> {
  const log = opts.log ?? (() => {});
  const rnd = seeded(opts.seed);
  const minMs = opts.minMs ?? 1_000;
  const maxMs = opts.maxMs ?? 20_000;
  const problems: string[] = [];
  let reported = 0;
  let checked = 0;
  await page.goto(`${url}?backend=opfs`);
  await waitReady(page);
  await run(page, `rm -rf ${DIR} && mkdir ${DIR}`);
  await install(page, `${DIR}/.work.sh`, workloadScript(DIR, "$1"));
  await install(page, `${DIR}/.check.sh`, CHECK);
  // The newest durable sequence number per renamed name, carried across reloads.
  const renamed = new Map<string, number>();
  const t0 = performance.now();
  for (let i = 1; i <= opts.reloads && problems.length === 0; i++) {
    await page.locator("#terminal .xterm").click();
    await page.keyboard.type(`sh ${DIR}/.work.sh ${i * 1_000_000}\n`);
    const delay = minMs + rnd() * (maxMs - minMs);
    await page.waitForTimeout(delay);
    const seen = reports(await rowsText(page));
    await page.reload();
    await waitReady(page);
    reported += seen.size;
    for (const [name, seq] of seen) if (name.startsWith("r") && (renamed.get(name) ?? 0) < seq) renamed.set(name, seq);
    const expected = [...renamed, ...[...seen].filter(([name]) => name.startsWith("u"))].map(([name, seq]) => `${name}=${seq}`);
    const out = await run(page, `sh ${DIR}/.check.sh ${expected.join(" ")}`);
    const summary = /CHECKED (\d+) BAD (\d+)/.exec(out);
    if (!summary) problems.push(`reload ${i}: the check printed no summary: ${out.slice(-300)}`);
    for (const m of out.matchAll(/^BAD \S+ .+$/gm)) problems.push(`reload ${i} after ${delay.toFixed(0)} ms: ${m[0].trim()}`);
    checked += Number(summary?.[1] ?? 0);
    // The in-place files were checked; removing them (and torn temporaries) keeps the next check short.
    await run(page, `rm -f ${DIR}/u* ${DIR}/.t*`);
    log(`reload ${i}/${opts.reloads} after ${(delay / 1000).toFixed(1)} s: ${seen.size} reports seen, ${summary?.[1] ?? "?"} checked, ${summary?.[2] ?? "?"} bad`);
  }
  return { reloads: opts.reloads, reported, checked, meanCycleMs: (performance.now() - t0) / opts.reloads, problems };
}
