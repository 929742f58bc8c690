// Two guests on one tree: two PCs, each with its own virtio-fs device and FUSE session, over the same
// FileSystem (a memfs volume, then a host directory), with the device keeping the locks. The guests use
// util-linux's flock(1) and vfsw-lock (fcntl) as programs would.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Volume } from "memfs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bootGuest, HostDirFs, MemFs, text, type FileSystem, type Guest, type RunResult } from "../../src/node.ts";

const APPENDS = 100; // per guest

interface Tree {
  fs: FileSystem;
  read(path: string): Promise<string>;
  cleanup(): Promise<void>;
}

const trees: { name: string; make(): Promise<Tree> }[] = [
  {
    name: "memfs",
    make: async () => {
      const vol = new Volume();
      return { fs: new MemFs(vol), read: async (p) => String(vol.readFileSync(`/${p}`)), cleanup: async () => {} };
    },
  },
  {
    name: "hostdir",
    make: async () => {
      const dir = await mkdtemp(join(tmpdir(), "vfsw-guests-"));
      return { fs: await HostDirFs.open(dir), read: (p) => readFile(join(dir, p), "utf8"), cleanup: () => rm(dir, { recursive: true, force: true }) };
    },
  },
];

const boot = (fs: FileSystem, n: number) =>
  bootGuest({ shares: [{ tag: "share", fs, mountPoint: "/mnt", cache: "never", locks: "device" }], append: `vfsw.guest=${n}` });

/** Runs a script, failing the test on a non-zero status. */
async function sh(g: Guest, script: string): Promise<string> {
  const r: RunResult = await g.run(script);
  if (r.status !== 0) throw new Error(`${script}\nexit ${r.status}: ${text(r.stderr)}${text(r.stdout)}`);
  return text(r.stdout);
}

/** Waits in the guest until a file of the share exists (cache=never: another guest's create shows at once). */
const waitFor = (path: string, tenths = 300) => `i=0; while [ ! -e ${path} ] && [ $i -lt ${tenths} ]; do sleep 0.1; i=$((i+1)); done; [ -e ${path} ]`;

describe.each(trees)("two guests on one $name tree", ({ make }) => {
  let tree: Tree;
  let a: Guest;
  let b: Guest;
  beforeAll(async () => {
    tree = await make();
    [a, b] = await Promise.all([boot(tree.fs, 0), boot(tree.fs, 1)]);
  }, 120_000);
  afterAll(async () => {
    await Promise.all([a?.shutdown(), b?.shutdown()]);
    await tree?.cleanup();
  });

  it("each guest knows its number", async () => {
    expect([await sh(a, "echo $GUEST"), await sh(b, "echo $GUEST")]).toEqual(["0\n", "1\n"]);
  });

  it(`${2 * APPENDS} interleaved appends under an exclusive flock lose no line, and a counter under it counts every increment`, async () => {
    const script = `i=0
      while [ $i -lt ${APPENDS} ]; do
        flock -x /mnt/log sh -c 'echo "$GUEST $0" >>/mnt/log; n=$(cat /mnt/count); echo $((n + 1)) >/mnt/count' $i
        i=$((i + 1))
      done`;
    await sh(a, "echo 0 >/mnt/count; : >/mnt/log");
    await Promise.all([sh(a, script), sh(b, script)]);
    const lines = (await tree.read("log")).split("\n").filter(Boolean);
    expect(lines).toHaveLength(2 * APPENDS);
    for (const g of ["0", "1"]) expect(lines.filter((l) => l.startsWith(`${g} `))).toEqual(Array.from({ length: APPENDS }, (_, i) => `${g} ${i}`));
    expect(lines.slice(0, APPENDS).every((l) => l.startsWith("0 "))).toBe(false); // they did interleave
    expect((await tree.read("count")).trim()).toBe(String(2 * APPENDS));
  }, 300_000);

  it("an fcntl write lock in A makes B's F_SETLK fail with EAGAIN and B's F_SETLKW wait until A unlocks", async () => {
    await sh(a, `rm -f /mnt/held /mnt/release /mnt/got; echo data >/mnt/f
      vfsw-lock -w -s 0 -l 10 /mnt/f sh -c 'touch /mnt/held; while [ ! -e /mnt/release ]; do sleep 0.1; done' >/dev/null 2>&1 &
      ${waitFor("/mnt/held")}`);
    const nb = await b.run("vfsw-lock -n -w -s 5 -l 1 /mnt/f true");
    expect(nb.status).toBe(1);
    expect(text(nb.stderr)).toMatch(/Resource temporarily unavailable/);
    expect(await sh(b, "vfsw-lock -g -r -s 0 -l 100 /mnt/f")).toBe("write 0 10 0\n"); // another guest's lock: pid 0
    expect(await sh(b, "vfsw-lock -n -w -s 10 -l 5 /mnt/f true && echo outside")).toBe("outside\n");
    await sh(b, `vfsw-lock -w -s 5 -l 1 /mnt/f touch /mnt/got >/dev/null 2>&1 & sleep 2; [ ! -e /mnt/got ]`);
    await sh(a, "touch /mnt/release");
    await sh(b, waitFor("/mnt/got"));
  }, 120_000);

  it("A's reboot releases A's locks, and wakes B's waiter", async () => {
    await sh(a, `rm -f /mnt/held /mnt/got; : >/mnt/r
      vfsw-lock -w /mnt/r sh -c 'touch /mnt/held; exec sleep 100000' >/dev/null 2>&1 &
      flock -x /mnt/r sleep 100000 >/dev/null 2>&1 &
      ${waitFor("/mnt/held")}; sleep 1`);
    expect((await b.run("vfsw-lock -n -w /mnt/r true")).status).toBe(1);
    expect((await b.run("flock -n -x /mnt/r true")).status).toBe(1);
    await sh(b, `vfsw-lock -w /mnt/r touch /mnt/got >/dev/null 2>&1 & sleep 1; [ ! -e /mnt/got ]`);
    await a.reboot();
    await sh(b, `${waitFor("/mnt/got")}; flock -n -x /mnt/r true`);
    expect(await sh(a, "echo $GUEST; cat /mnt/f")).toBe("0\ndata\n"); // A is back on the share
  }, 180_000);
});

describe("virtiofs-web run --guests 4", () => {
  it("runs the command in four guests on one directory at once: prefixed output, the first non-zero status, locks across all four", async () => {
    const dir = await mkdtemp(join(tmpdir(), "vfsw-guests4-"));
    await writeFile(join(dir, "count"), "0\n");
    const bin = new URL("../../bin/virtiofs-web.js", import.meta.url).pathname;
    const exec = `i=0; while [ $i -lt 25 ]; do flock -x /mnt/count sh -c 'n=$(cat /mnt/count); echo $((n + 1)) >/mnt/count'; i=$((i + 1)); done
      echo "guest $GUEST done"; echo "note $GUEST" >&2; exit $((GUEST == 2 ? 5 : 0))`;
    const r = await promisify(execFile)(process.execPath, [bin, "run", "--guests", "4", "--share", dir, "--exec", exec]).then(
      (ok) => ({ code: 0, ...ok }),
      (e: { code: number; stdout: string; stderr: string }) => e,
    );
    expect(r.code).toBe(5);
    expect(r.stdout.split("\n").filter(Boolean).sort()).toEqual(["[0] guest 0 done", "[1] guest 1 done", "[2] guest 2 done", "[3] guest 3 done"]);
    expect(r.stderr.split("\n").filter(Boolean).sort()).toEqual(["[0] note 0", "[1] note 1", "[2] note 2", "[3] note 3"]);
    expect(await readFile(join(dir, "count"), "utf8")).toBe("100\n");
    await rm(dir, { recursive: true, force: true });
  }, 240_000);
});
