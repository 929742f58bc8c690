// vfsw-fsx (guest/fsx/vfsw-fsx.c) in the guest: random pwrite, pread, MAP_SHARED loads and stores,
// msync, ftruncate, fallocate, copy_file_range, fsync and reopen on one file, every byte read checked
// against the program's own model. One guest, one share per backend and cache mode (and DAX), and the guest's
// tmpfs as the control (the program's own mistakes would show there too). After each run the host
// checks that the backend holds what the guest sees.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Volume } from "memfs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bootGuest, HostDirFs, MemFs, text, type CacheMode, type Guest, type GuestShare } from "../../src/node.ts";

const OPS = 3000;
const SEEDS = [1, 2];
/** Per run: 3000 operations take 1-7 s in the emulated CPU (the whole file ~100 s); room for a loaded machine. */
const RUN_TIMEOUT_MS = 60_000;

const MODES: { cache: CacheMode; writeback?: boolean; daxMiB?: number }[] = [
  { cache: "never" },
  { cache: "metadata" },
  { cache: "auto" },
  { cache: "always" },
  { cache: "auto", writeback: true },
  // A 16 MiB window mounted dax=always: reads, writes and mmap all go through the window.
  { cache: "auto", daxMiB: 16 },
];
const modeName = (m: (typeof MODES)[number]) => `cache=${m.cache}${m.writeback ? " + writeback" : ""}${m.daxMiB ? " + DAX" : ""}`;

interface Target {
  name: string;
  dir: string;
  backend?: "memfs" | "hostdir";
  mode?: (typeof MODES)[number];
}
const TARGETS: Target[] = [
  { name: "tmpfs (control)", dir: "/tmp/fsx" },
  ...MODES.map((mode, i): Target => ({ name: `memfs ${modeName(mode)}`, dir: `/mem${i}`, backend: "memfs", mode })),
  ...MODES.map((mode, i): Target => ({ name: `hostdir ${modeName(mode)}`, dir: `/host${i}`, backend: "hostdir", mode })),
];

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

describe("vfsw-fsx on each backend and cache mode", () => {
  let guest: Guest;
  let hostRoot: string;
  const hostFs: HostDirFs[] = [];
  /** The backend's bytes of a file, by the share's mount point. */
  const readers = new Map<string, (file: string) => Uint8Array>();
  const summaries: string[] = [];

  beforeAll(async () => {
    hostRoot = await mkdtemp(join(tmpdir(), "vfsw-fsx-"));
    const shares: GuestShare[] = [];
    for (const t of TARGETS) {
      if (!t.backend) continue;
      const tag = t.dir.slice(1);
      if (t.backend === "memfs") {
        const vol = new Volume();
        shares.push({ tag, fs: new MemFs(vol), ...t.mode, mountPoint: t.dir });
        readers.set(t.dir, (f) => vol.readFileSync(`/${f}`) as Uint8Array);
      } else {
        const root = join(hostRoot, tag);
        await mkdir(root);
        const fs = await HostDirFs.open(root);
        hostFs.push(fs);
        shares.push({ tag, fs, ...t.mode, mountPoint: t.dir });
        readers.set(t.dir, (f) => readFileSync(join(root, f)));
      }
    }
    guest = await bootGuest({ shares });
    const r = await guest.run("mkdir -p /tmp/fsx && grep -c ' virtiofs ' /proc/mounts");
    expect(text(r.stdout).trim(), "every share mounted").toBe(String(shares.length));
  });

  afterAll(async () => {
    if (summaries.length) console.log(summaries.join("\n"));
    await guest?.shutdown();
    for (const fs of hostFs) await fs.close();
    if (hostRoot) await rm(hostRoot, { recursive: true, force: true });
  });

  const cases = SEEDS.flatMap((seed) => TARGETS.map((t) => [t.name, seed, t] as const));
  it.each(cases)("%s, seed %i", async (_, seed, target) => {
    const file = `fsx.${seed}`;
    const r = await guest.run(`vfsw-fsx -N -n ${OPS} -s ${seed} ${target.dir}/${file} && sync && sha256sum ${target.dir}/${file}`);
    const out = `${text(r.stdout)}${text(r.stderr)}`;
    expect(r.status, `vfsw-fsx -N -n ${OPS} -s ${seed} on ${target.name} (${target.dir}):\n${out}`).toBe(0);
    const [summary = "", sum = ""] = text(r.stdout).split("\n");
    summaries.push(`${target.name}: ${summary}`);
    const read = readers.get(target.dir);
    if (read) expect(sha256(read(file)), `the backend's ${file} on ${target.name}`).toBe(sum.split(" ")[0]);
    else expect(summary, "tmpfs supports every operation").not.toContain("unsupported");
    await guest.run(`rm -f ${target.dir}/${file}`);
  }, RUN_TIMEOUT_MS);
});
