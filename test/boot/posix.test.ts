// The guest POSIX suite (guest/tests/*.sh, busybox sh; on a Debian root, dash and coreutils) run by the real virtiofs.ko on the share, over
// each backend; the host checks the backend's copy of what the guest wrote, and the guest checks
// what the host wrote before boot.
//
// The scripts reach the guest on a second, read-only virtio-fs share (a memfs volume built here):
// sending them through the serial console costs ~25 s of emulated shell, and putting them on the share
// under test would make them part of what is tested. /init mounts it; the guest copies the scripts to
// its tmpfs and unmounts it before any test runs.
//
// Each script has a budget; one that outlives it (a FUSE request never answered leaves it stuck in the
// kernel) fails its own test, and the next script runs in a freshly booted guest on the same backend.
//
// Output contract of a script (guest/tests/lib.sh): `ok NAME`, `FAIL NAME: why`, `skip NAME: why`,
// `# note`, `sum SHA256  PATH` (integrity.sh), and last `N passed, M failed`.
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Volume } from "memfs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bootGuest, DEBIAN_IMAGES_DIR, debianRootDir, fileBlobSource, HostDirFs, ImageFs, INDEX_NAME, MemFs, OverlayFs, parseImageIndex, text, type FileSystem, type Guest, type LockMode, type RunResult } from "../../src/node.ts";

const TESTS_DIR = new URL("../../guest/tests/", import.meta.url).pathname;
const GUEST_TESTS = "/tmp/tests";
const HOST_WRITTEN = "host-written";

/**
 * The scripts in running order, each with its budget in the emulated CPU (about 3× what it took over
 * hostdir: dirs.sh, with its 10,000 entries, ~100 s, up to 300 s through a DAX window on a loaded
 * machine; integrity.sh ~30 s; the others < 20 s).
 * integrity.sh has a test of its own: the host checks what it wrote.
 */
const AREAS: [area: string, budgetMs: number][] = [
  ["metadata", 60_000],
  ["nodes", 45_000],
  ["dirs", 450_000],
  ["links", 45_000],
  ["io", 90_000],
  ["times", 60_000],
  ["locks", 45_000],
  ["hostcheck", 45_000],
];
const INTEGRITY_BUDGET_MS = 120_000;
/** vitest's limit per test: a budget, plus a boot when an earlier script left the guest stuck. */
const testTimeout = (budgetMs: number) => budgetMs + 60_000;

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** Files the host writes before boot: sizes around page and request boundaries. */
const hostFiles: [string, Uint8Array][] = [0, 1, 4095, 4096, 4097, 65537, 1048579, 3 << 20].map((n) => [`h${n}`, randomBytes(n)]);
const hostSums = hostFiles.map(([name, data]) => `${sha256(data)}  ${name}\n`).join("");

interface Share {
  fs: FileSystem;
  /** Mount with a DAX window of this size (dax=always). */
  daxMiB?: number;
  /** Who keeps file locks (default: the guest kernel, the share being its only client). */
  locks?: LockMode;
  /** A file's bytes as the backend holds them (path relative to the directory under test). */
  read(path: string): Uint8Array;
  /** The share is the guest's root (a Debian userland: its sh and coreutils run the scripts), tested in this directory of it. */
  rootDir?: string;
  /** Other guest images (Debian's stock kernel). */
  imagesDir?: string;
  cleanup(): Promise<void>;
}

function memfsShare(daxMiB?: number, locks?: LockMode): Share {
  const vol = new Volume();
  vol.mkdirSync(`/${HOST_WRITTEN}`);
  for (const [name, data] of hostFiles) vol.writeFileSync(`/${HOST_WRITTEN}/${name}`, data);
  vol.writeFileSync(`/${HOST_WRITTEN}/SHA256SUMS`, hostSums);
  return { fs: new MemFs(vol), daxMiB, locks, read: (p) => vol.readFileSync(`/${p}`) as Uint8Array, cleanup: async () => {} };
}

const stockKernelAbsent = !existsSync(join(DEBIAN_IMAGES_DIR, "manifest.json"));
if (stockKernelAbsent) console.warn(`test/boot/posix.test.ts: no ${DEBIAN_IMAGES_DIR}, the suite on Debian's stock kernel is skipped (npm run guest:debian-kernel builds it)`);
const debianImage = join(debianRootDir(), "image");
const debianAbsent = !existsSync(join(debianImage, INDEX_NAME));
if (debianAbsent) console.warn(`test/boot/posix.test.ts: no Debian root image at ${debianImage}, the suite on a Debian root is skipped (npm run guest:rootfs builds it)`);

/** The Debian root under an overlay on memfs, the host's files already in the directory under test. */
async function debianRoot(): Promise<Share> {
  const vol = new Volume();
  const dir = "/srv/posix";
  vol.mkdirSync(`${dir}/${HOST_WRITTEN}`, { recursive: true });
  for (const [name, data] of hostFiles) vol.writeFileSync(`${dir}/${HOST_WRITTEN}/${name}`, data);
  vol.writeFileSync(`${dir}/${HOST_WRITTEN}/SHA256SUMS`, hostSums);
  const image = new ImageFs(parseImageIndex(readFileSync(join(debianImage, INDEX_NAME), "utf8")), fileBlobSource(debianImage));
  return { fs: await OverlayFs.mount(image, new MemFs(vol)), rootDir: dir, read: (p) => vol.readFileSync(`${dir}/${p}`) as Uint8Array, cleanup: async () => {} };
}

const backends: { name: string; make(): Promise<Share> }[] = [
  { name: "memfs", make: async () => memfsShare() },
  // As when guests share the tree: every lock request goes to the device, every close(2) sends a FLUSH.
  { name: "memfs with locks kept by the device", make: async () => memfsShare(undefined, "device") },
  // 16 ranges of 2 MiB: the integrity files alone need more, so the driver reclaims ranges as it goes.
  { name: "memfs with a 32 MiB DAX window (dax=always)", make: async () => memfsShare(32) },
  {
    name: "hostdir",
    make: async () => {
      const root = await mkdtemp(join(tmpdir(), "vfsw-posix-"));
      await mkdir(join(root, HOST_WRITTEN));
      for (const [name, data] of hostFiles) await writeFile(join(root, HOST_WRITTEN, name), data);
      await writeFile(join(root, HOST_WRITTEN, "SHA256SUMS"), hostSums);
      const fs = await HostDirFs.open(root);
      return {
        fs,
        read: (p) => readFileSync(join(root, p)),
        cleanup: async () => {
          await fs.close();
          await rm(root, { recursive: true, force: true });
        },
      };
    },
  },
  ...(stockKernelAbsent ? [] : [{ name: "memfs on Debian's stock kernel", make: async () => ({ ...memfsShare(), imagesDir: DEBIAN_IMAGES_DIR }) }]),
  ...(debianAbsent ? [] : [{ name: "a Debian root (an overlay over the lazy image; Debian's sh and coreutils)", make: debianRoot }]),
];

/** A read-only share holding guest/tests/*.sh. */
function scriptsShare(): MemFs {
  const vol = new Volume();
  for (const f of readdirSync(TESTS_DIR).filter((f) => f.endsWith(".sh"))) vol.writeFileSync(`/${f}`, readFileSync(join(TESTS_DIR, f)));
  return new MemFs(vol);
}

interface ScriptRun {
  lines: string[];
  sums: { sum: string; path: string }[];
}

/** Thrown when a script outlives its budget: a guest stuck in a file system call cannot be stopped. */
class Stuck extends Error {}

/**
 * One guest per backend, booted when first needed. A script that outlives its budget leaves the guest
 * stuck (a FUSE request never answered blocks the caller in the kernel for good): that guest is shut
 * down and the next script gets a fresh one on the same backend, so one hang fails one test.
 */
class Session {
  private guest: Guest | undefined;

  constructor(private readonly share: Share) {}

  async run(command: string, budgetMs: number): Promise<RunResult> {
    const guest = (this.guest ??= await this.boot());
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Stuck(`no answer within ${budgetMs / 1000} s: '${command}'`)), budgetMs);
    });
    try {
      return await Promise.race([guest.run(command), timeout]);
    } catch (e) {
      if (e instanceof Stuck) {
        this.guest = undefined;
        await guest.shutdown();
      }
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  async shutdown(): Promise<void> {
    await this.guest?.shutdown();
    this.guest = undefined;
  }

  private async boot(): Promise<Guest> {
    const { fs, daxMiB, locks, rootDir, imagesDir } = this.share;
    const guest = await bootGuest({
      imagesDir,
      shares: [
        rootDir ? { tag: "root", fs, mountPoint: "/" } : { tag: "share", fs, daxMiB, locks, mountOptions: daxMiB !== undefined ? "dax=always" : undefined, mountPoint: "/mnt" },
        { tag: "tests", fs: scriptsShare(), mountPoint: "/vfsw-tests" },
      ],
    });
    const r = await guest.run(`cp -r /vfsw-tests ${GUEST_TESTS} && umount /vfsw-tests && ls ${GUEST_TESTS}`);
    if (r.status !== 0 || !text(r.stdout).includes("lib.sh")) {
      await guest.shutdown();
      throw new Error(`copying the scripts into the guest failed: ${text(r.stderr)}`);
    }
    return guest;
  }
}

const dirOf = (share: Share) => share.rootDir ?? "/mnt";

/** Runs one script on the share (/mnt, or its directory of a root) and asserts the harness's verdict: every test line `ok`, the summary, status 0. */
async function runScript(session: Session, backend: string, area: string, budgetMs: number, env = "", dax = false, dir = "/mnt"): Promise<ScriptRun> {
  const r = await session.run(`cd / && ${dax ? "VFSW_DAX=1 " : ""}${env} sh ${GUEST_TESTS}/${area}.sh ${dir}`, budgetMs);
  const out = text(r.stdout);
  const lines = out.split("\n").filter((l) => l !== "");
  const summary = lines.at(-1) ?? "";
  const context = `${area}.sh on ${backend} (exit status ${r.status})\n--- stdout:\n${out}--- stderr:\n${text(r.stderr)}`;

  const notOk = lines.slice(0, -1).filter((l) => !(l.startsWith("ok ") || l.startsWith("# ") || l.startsWith("sum ")));
  expect(notOk, `lines that are not ok in ${context}`).toEqual([]);

  const m = /^(\d+) passed, (\d+) failed$/.exec(summary);
  expect(m, `no summary line in ${context}`).not.toBeNull();
  const oks = lines.filter((l) => l.startsWith("ok ")).length;
  expect({ passed: Number(m![1]), failed: Number(m![2]) }, `summary of ${context}`).toEqual({ passed: oks, failed: 0 });
  expect(oks, `no test ran in ${context}`).toBeGreaterThan(0);
  expect(r.status, `exit status of ${context}`).toBe(0);

  const sums = lines.flatMap((l) => {
    const s = /^sum ([0-9a-f]{64}) {2}(.+)$/.exec(l);
    return s ? [{ sum: s[1]!, path: s[2]! }] : [];
  });
  return { lines, sums };
}

describe.each(backends)("POSIX suite in the guest over the $name backend", (backend) => {
  let share: Share;
  let session: Session;

  beforeAll(async () => {
    share = await backend.make();
    session = new Session(share);
  });

  afterAll(async () => {
    await session?.shutdown();
    await share?.cleanup();
  });

  it.each(AREAS)("%s.sh", async (area, budgetMs) => {
    await runScript(session, backend.name, area, budgetMs, "", share.daxMiB !== undefined, dirOf(share));
  }, testTimeout(Math.max(...AREAS.map(([, ms]) => ms))));

  it(
    "integrity.sh: the backend holds, byte for byte, what the guest wrote (sha256 after sync)",
    async () => {
      const { sums } = await runScript(session, backend.name, "integrity", INTEGRITY_BUDGET_MS, "VFSW_KEEP=1", share.daxMiB !== undefined, dirOf(share));
      expect(sums.length).toBeGreaterThanOrEqual(7);
      expect((await session.run("sync", 30_000)).status).toBe(0);
      for (const { sum, path } of sums) expect(sha256(share.read(path)), path).toBe(sum);
      const rm = await session.run(`rm -rf ${dirOf(share)}/integrity.*`, 30_000);
      expect(rm.status, text(rm.stderr)).toBe(0);
    },
    testTimeout(INTEGRITY_BUDGET_MS + 60_000),
  );

  it("the scripts left the share as they found it", async () => {
    const r = await session.run(`ls -A ${dirOf(share)}`, 30_000);
    expect(text(r.stdout)).toBe(`${HOST_WRITTEN}\n`);
    for (const [name, data] of hostFiles) expect(sha256(share.read(`${HOST_WRITTEN}/${name}`)), name).toBe(sha256(data));
  }, testTimeout(30_000));
});
