// Crash safety: a guest writes files, fsyncs them, renames them into place and syncs, and reports each
// file whose fsync or sync returned; the process serving it is killed (SIGKILL, for a host directory)
// or its page reloaded (OPFS) at a random moment. After the restart the backend must open, every
// reported file must hold what was reported (or a later version of it), and no file renamed into place
// may be half-written. Every file the workload writes describes itself: its sequence number on the
// first line, random bytes, then the SHA-256 of all that as a last line of 64 hex digits, so a torn or
// stale file shows without knowing what the guest meant to write.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { HostDirFs, STORE_DIR } from "../src/node.ts";

/** Names renamed into place: a few, so most renames replace a file. */
const RENAMED = 8;

/**
 * The guest's workload from sequence number base+1 on (a number, or a shell word such as "$1"), in busybox sh: each round writes a file under a
 * temporary name with fsync, chmods it, renames it over r<seq % RENAMED> and syncs ("SYNCED name seq
 * sha"), then writes u<seq> in place with fsync ("FSYNCED name seq sha").
 */
export function workloadScript(dir: string, base: number | string, rounds = 100_000): string {
  return `s=${base}; end=$((s + ${rounds}))
while [ $s -lt $end ]; do
  s=$((s + 1)); n=r$((s % ${RENAMED}))
  { echo $s; dd if=/dev/urandom bs=1k count=$((s % 24 + 1)) 2>/dev/null; } > /tmp/b || exit 1
  h=$(sha256sum < /tmp/b) || exit 1
  h=\${h%% *}; echo $h >> /tmp/b || exit 1
  dd if=/tmp/b of=${dir}/.t$s bs=64k conv=fsync 2>/dev/null && chmod 640 ${dir}/.t$s && mv ${dir}/.t$s ${dir}/$n && sync || exit 1
  echo "SYNCED $n $s $h"
  dd if=/tmp/b of=${dir}/u$s bs=64k conv=fsync 2>/dev/null || exit 1
  echo "FSYNCED u$s $s $h"
done`;
}

/** A file the guest reported durable. */
export interface Durable {
  name: string;
  seq: number;
  sha: string;
}

/** Parses a workload line; undefined for anything else. */
export function parseReport(line: string): Durable | undefined {
  const m = /^(?:SYNCED|FSYNCED) (\S+) (\d+) ([0-9a-f]{64})$/.exec(line.trim());
  const [, name, seq, sha] = m ?? [];
  return name && seq && sha ? { name, seq: Number(seq), sha } : undefined;
}

/** What a file holds: its sequence number and digest if it is whole, undefined if torn. */
export function parseFile(bytes: Uint8Array): { seq: number; sha: string } | undefined {
  if (bytes.length < 66 || bytes[bytes.length - 1] !== 0x0a) return undefined;
  const body = bytes.subarray(0, bytes.length - 65);
  const sha = new TextDecoder().decode(bytes.subarray(bytes.length - 65, bytes.length - 1));
  if (createHash("sha256").update(body).digest("hex") !== sha) return undefined;
  const nl = body.indexOf(0x0a);
  const seq = Number(new TextDecoder().decode(body.subarray(0, nl)));
  return nl > 0 && Number.isInteger(seq) ? { seq, sha } : undefined;
}

/**
 * Checks what a restarted backend shows against the reports: `files` maps each final name present to
 * what parseFile made of it (plus its mode for renamed files). Returns the problems found.
 */
export function judge(reported: Iterable<Durable>, files: Map<string, { seq: number; sha: string; mode?: number } | undefined>): string[] {
  const problems: string[] = [];
  // A file renamed into place is whole or absent; one written in place may be torn until its fsync returned.
  for (const [name, f] of files) if (!f && name.startsWith("r")) problems.push(`${name} is visible half-written`);
  // The newest report per name: a renamed name is replaced by later rounds.
  const last = new Map<string, Durable>();
  for (const d of reported) if ((last.get(d.name)?.seq ?? -1) < d.seq) last.set(d.name, d);
  for (const d of last.values()) {
    const f = files.get(d.name);
    if (!files.has(d.name)) problems.push(`${d.name} (seq ${d.seq}) was reported durable and is gone`);
    else if (!f) {
      if (!d.name.startsWith("r")) problems.push(`${d.name} (seq ${d.seq}) was reported durable and is torn`);
    }
    else if (f.seq < d.seq) problems.push(`${d.name} went back from seq ${d.seq} to ${f.seq}`);
    else if (f.seq === d.seq && f.sha !== d.sha) problems.push(`${d.name} (seq ${d.seq}) holds other bytes than reported`);
    else if (d.name.startsWith("r") && f.mode !== undefined && (f.mode & 0o7777) !== 0o640) problems.push(`${d.name} has mode ${(f.mode & 0o7777).toString(8)}, 640 was synced`);
  }
  return problems;
}

/** A small seeded PRNG (mulberry32) for the kill moments. */
export function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

export interface KillOptions {
  kills: number;
  seed: number;
  /** The kill comes this long after the workload started, uniformly (default 200 to 8,000 ms). */
  minMs?: number;
  maxMs?: number;
  log?(line: string): void;
}

export interface KillReport {
  kills: number;
  /** Reports checked after the kills (each name's newest), and all reports received. */
  checked: number;
  reported: number;
  /** Bytes of reported files found intact after restarts. */
  bytesIntact: number;
  meanCycleMs: number;
  problems: string[];
}

const CHILD = fileURLToPath(new URL("crash-child.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The host directory as a restarted backend shows it: open (the metadata store included), then read. */
async function observe(dir: string): Promise<{ files: Map<string, { seq: number; sha: string; mode?: number } | undefined>; bytes: Map<string, number> }> {
  const fs = await HostDirFs.open(dir, { ownership: "metadata" });
  const files = new Map<string, { seq: number; sha: string; mode?: number } | undefined>();
  const bytes = new Map<string, number>();
  try {
    for (const name of await readdir(dir)) {
      if (name === STORE_DIR || name.startsWith(".t")) continue; // temporaries are not final names
      const attr = await fs.lookup(fs.rootIno, name);
      try {
        const fh = await fs.open(attr.ino, 0);
        const data = await fs.read(fh, 0, attr.size);
        await fs.release(fh);
        const f = parseFile(data);
        files.set(name, f && { ...f, mode: attr.mode });
        bytes.set(name, data.length);
      } finally {
        await fs.forget(attr.ino, 1);
      }
    }
  } finally {
    await fs.close();
  }
  return { files, bytes };
}

/** Starts the child serving `dir` and resolves when its guest has started the workload. */
function startChild(dir: string, base: number, onReport: (d: Durable) => void): { ready: Promise<void>; exited: Promise<string>; kill(): void } {
  const child = spawn(process.execPath, ["--import", "tsx", CHILD, dir, String(base)], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (b: Buffer) => (stderr += b.toString()).length > 4096 && (stderr = stderr.slice(-4096)));
  let markReady!: () => void;
  let fail!: (e: Error) => void;
  const ready = new Promise<void>((res, rej) => ((markReady = res), (fail = rej)));
  const exited = new Promise<string>((res) =>
    child.on("exit", (code, signal) => {
      fail(new Error(`the child exited (${signal ?? code}) before its guest was ready: ${stderr}`));
      res(signal === "SIGKILL" ? "" : `the child exited by itself (${signal ?? code}): ${stderr.trim()}`);
    }),
  );
  createInterface({ input: child.stdout }).on("line", (line) => {
    if (line === "READY") markReady();
    const d = parseReport(line);
    if (d) onReport(d);
  });
  return { ready, exited, kill: () => child.kill("SIGKILL") };
}

/** SIGKILLs a child serving a host directory `kills` times, checking the directory after each; see the file's head. */
export async function runHostdirKills(opts: KillOptions): Promise<KillReport> {
  const log = opts.log ?? (() => {});
  const rnd = seeded(opts.seed);
  const minMs = opts.minMs ?? 200;
  const maxMs = opts.maxMs ?? 8_000;
  const dir = await mkdtemp(join(tmpdir(), "vfsw-crash-"));
  const reported: Durable[] = [];
  const problems: string[] = [];
  let checked = 0;
  let bytesIntact = 0;
  const t0 = performance.now();
  try {
    for (let i = 1; i <= opts.kills && problems.length === 0; i++) {
      const child = startChild(dir, i * 1_000_000, (d) => reported.push(d));
      await child.ready;
      const delay = minMs + rnd() * (maxMs - minMs);
      const early = await Promise.race([child.exited, new Promise<undefined>((r) => setTimeout(r, delay))]);
      if (early !== undefined) {
        problems.push(`kill ${i}: ${early}`);
        break;
      }
      child.kill();
      const why = await child.exited;
      if (why) problems.push(`kill ${i}: ${why}`);
      const { files, bytes } = await observe(dir);
      const now = judge(reported, files).map((p) => `kill ${i} after ${delay.toFixed(0)} ms: ${p}`);
      problems.push(...now);
      const newest = new Map(reported.map((d) => [d.name, d]));
      checked = newest.size;
      bytesIntact = [...newest.keys()].reduce((n, name) => n + (bytes.get(name) ?? 0), 0);
      log(`kill ${i}/${opts.kills} after ${(delay / 1000).toFixed(1)} s: ${reported.length} reports so far, ${newest.size} files checked, ${now.length} problems`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return { kills: opts.kills, checked, reported: reported.length, bytesIntact, meanCycleMs: (performance.now() - t0) / opts.kills, problems };
}
