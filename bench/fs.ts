// File-system workloads timed inside one guest that has this device (memfs backend, one device per cache
// mode) and v86's own virtio-9p (in memory) attached side by side, plus the guest's tmpfs as the limit.
// Every figure is the median of its repetitions, interleaved between targets so all see the same load.
// Runs in Node (bench/run.ts) and in a browser Worker (bench/browser/), so it imports nothing Node-only.
import { Guest, MemFs, text, type CacheMode, type GuestRuntime } from "../src/index.ts";
import { Ledger, type LedgerEntry } from "./ledger.ts";

export interface Target {
  name: string;
  /** What --targets calls it. */
  id: string;
  dir: string;
  /** Runs once in the booted guest before any workload's prepare (not timed); $D is the target directory. */
  prepare?: string;
}

interface VfsTarget extends Target {
  cache: CacheMode;
  writeback: boolean;
  /** A DAX window of this size, mounted dax=always. */
  daxMiB?: number;
  /** Mounted dax=inode instead (shareMountOptions): the files of at least this many bytes use the window. */
  daxInodeMinSize?: number;
}

/** The guest maps the window into vmalloc space: 256 MiB fits beside 512 MiB of RAM, not beside 1 GiB. */
const DAX_MIB = 256;
/** The dax=inode target's window: beside the other one, in what vmalloc space is left. */
const DAX_INODE_MIB = 128;
const DAX_INODE_MIN_SIZE = 1 << 20;
const MEMORY_MIB = 512;

const VFS: VfsTarget[] = [
  { name: "virtio-fs never", id: "never", dir: "/b/vfs-never", cache: "never", writeback: false },
  { name: "virtio-fs auto", id: "auto", dir: "/b/vfs-auto", cache: "auto", writeback: false },
  { name: "virtio-fs auto+wb", id: "auto+wb", dir: "/b/vfs-auto-wb", cache: "auto", writeback: true },
  { name: "virtio-fs always", id: "always", dir: "/b/vfs-always", cache: "always", writeback: false },
  {
    name: "virtio-fs dax",
    id: "dax",
    dir: "/b/vfs-dax",
    cache: "auto",
    writeback: false,
    daxMiB: DAX_MIB,
    prepare: primeWindow(DAX_MIB),
  },
  {
    // Big files in the window, small ones through the page cache (the server's FUSE_ATTR_DAX by size).
    name: "virtio-fs dax=inode",
    id: "dax-inode",
    dir: "/b/vfs-dax-inode",
    cache: "auto",
    writeback: false,
    daxMiB: DAX_INODE_MIB,
    daxInodeMinSize: DAX_INODE_MIN_SIZE,
    prepare: primeWindow(DAX_INODE_MIB),
  },
];
/**
 * The host commits a window's memory as the device first fills each page, once per process (on the 2-core
 * bench VM ~5 ms per 2 MiB range, against 0.1 ms for a later fill), while the other targets' caches reuse
 * guest RAM long touched. So a sparse file the window's size is read through it first.
 */
function primeWindow(mib: number): string {
  return `truncate -s ${mib}M $D/prime && cat $D/prime > /dev/null && rm $D/prime`;
}
/** 9p at its fastest in Linux 6.1: the largest msize the virtio transport takes, and the loose cache. */
export const NINEP: Target = { name: "9p (msize=512000, cache=loose)", id: "9p", dir: "/b/9p" };
export const TMPFS: Target = { name: "tmpfs", id: "tmpfs", dir: "/b/tmpfs" };
export const TARGETS: Target[] = [...VFS, NINEP, TMPFS];

/** The targets named by id, in TARGETS order; all of them for none. */
export function selectTargets(ids: readonly string[]): Target[] {
  for (const id of ids) if (!TARGETS.some((t) => t.id === id)) throw new Error(`unknown target '${id}' (have: ${TARGETS.map((t) => t.id).join(", ")})`);
  return ids.length ? TARGETS.filter((t) => ids.includes(t.id)) : TARGETS;
}

export interface Workload {
  name: string;
  /** Builds what the timed part needs, once per target (not timed). */
  prepare?: string;
  /** Runs before each timed part (not timed). */
  before?: string;
  /** The timed part; $D is the target directory. */
  run: string;
  /** Runs after each timed part (not timed). */
  after?: string;
  /** Drop the guest's page and dentry caches again after `before`, right before the timed part. */
  cold?: boolean;
  /** File bytes the timed part reads, for a guest-side MiB/s. */
  bytes?: number;
  /** Targets (ids) the workload cannot run on, and why. */
  unsupported?: { targets: string[]; why: string };
  /** The requests a virtio-fs guest must send for the timed part with names and attributes cached (cache=auto), and which. */
  floor: { requests: number; what: string };
}

/**
 * READDIRPLUS requests to list `entries` names of `nameLen` bytes: 4 KiB pages of fuse_direntplus (152
 * bytes and the name, 8-aligned), "." and ".." included, and one more that comes back empty.
 */
function listing(entries: number, nameLen: number): number {
  return Math.ceil((entries + 2) / Math.floor(4096 / (152 + Math.ceil(nameLen / 8) * 8))) + 1;
}

/**
 * Twice: the first pass only clears the referenced bit of a dentry used since the last one (Linux rotates
 * such a dentry rather than free it), and its inode stays; a DAX file keeps its window ranges until its
 * inode goes, so one pass left every other "cold" DAX read with the whole file still mapped.
 */
const DROP = "sync; echo 3 > /proc/sys/vm/drop_caches; echo 3 > /proc/sys/vm/drop_caches";
/** The 64 MiB file the read workloads share, made once whichever of them run. */
const BIG = "[ -e $D/big ] || dd if=/dev/zero of=$D/big bs=1M count=64 2> /dev/null";
const BIG_BYTES = 64 << 20;

export const WORKLOADS: Workload[] = [
  {
    name: "tiny-files",
    floor: { requests: 2500 + listing(2500, 4), what: "READ per file, the listing" },
    prepare: 'mkdir -p $D/tiny && for i in $(seq 2500); do echo "tiny $i" > $D/tiny/$i; done',
    cold: true,
    run: "cat $D/tiny/* > /dev/null",
  },
  {
    name: "create-stat-unlink",
    // The guest creates a name it has not looked up without looking it up first (guest/patches/0008).
    floor: { requests: 6000 + listing(2000, 5), what: "CREATE, UNLINK, FORGET per file; rm's listing" },
    before: "mkdir -p $D/csu",
    // Shell builtins create and stat; one rm unlinks all 2,000 (an rm per file timed 2,000 execs, ~3 ms each).
    run: "cd $D/csu && for i in $(seq 2000); do : > f$i; done && for i in $(seq 2000); do [ -e f$i ]; done && rm f*",
    after: "cd / && rmdir $D/csu",
  },
  {
    name: "readdir",
    floor: { requests: 1 + listing(5000, 10), what: "LOOKUP of the directory, the listing" },
    prepare: "mkdir -p $D/rd && cd $D/rd && for i in $(seq 5000); do : > entry-$i; done",
    cold: true,
    // busybox ls has no -f: it reads the directory and lstats every entry, as `ls` does.
    run: "ls $D/rd > /dev/null",
  },
  {
    name: "find",
    floor: { requests: 1 + listing(100, 4) + 100 * listing(100, 4), what: "LOOKUP of the top, 101 listings" },
    prepare: "for d in $(seq 100); do mkdir -p $D/tree/d$d; for f in $(seq 100); do : > $D/tree/d$d/f$f; done; done",
    cold: true,
    run: "find $D/tree > /dev/null",
  },
  {
    name: "untar",
    floor: { requests: 2 * 50 + 4 * 1000, what: "LOOKUP, MKDIR per directory; LOOKUP, CREATE, WRITE, SETATTR (mtime) per file" },
    before: "mkdir -p $D/untar",
    run: "tar xf /tmp/src.tar -C $D/untar",
    after: "rm -rf $D/untar",
  },
  {
    name: "seq-write",
    floor: { requests: 2 + 64, what: "CREATE, 64 WRITEs of 1 MiB, FSYNC" },
    run: "dd if=/dev/zero of=$D/seq bs=1M count=64 conv=fsync 2> /dev/null",
    after: "rm -f $D/seq",
  },
  {
    name: "seq-read-cold",
    floor: { requests: 1 + 64, what: "LOOKUP, 64 READs of 1 MiB" },
    prepare: BIG,
    cold: true,
    run: "dd if=$D/big of=/dev/null bs=1M 2> /dev/null",
    bytes: BIG_BYTES,
  },
  {
    name: "seq-read-warm",
    floor: { requests: 0, what: "none: the page cache holds the file" },
    prepare: BIG,
    before: "dd if=$D/big of=/dev/null bs=1M 2> /dev/null",
    run: "dd if=$D/big of=/dev/null bs=1M 2> /dev/null",
    bytes: BIG_BYTES,
  },
  {
    // Loads every 32-bit word of the file through a read-only private mapping (guest/mapsum): what a
    // program that maps its data pays; with the window the loads go to it, without, to the page cache.
    name: "mmap-seq-read",
    floor: { requests: 1 + 64, what: "LOOKUP, 64 READs of 1 MiB (the page cache's fault-around reads)" },
    prepare: BIG,
    cold: true,
    run: "vfsw-mapsum $D/big > /dev/null",
    bytes: BIG_BYTES,
  },
  {
    // One dd per read: busybox has no single-process random reader, so exec costs are in every figure.
    name: "rand-read",
    floor: { requests: 1 + 200, what: "LOOKUP, READ per 4 KiB block" },
    prepare: BIG,
    run: "for s in $RANDOM_BLOCKS; do dd if=$D/big of=/dev/null bs=4096 count=1 skip=$s 2> /dev/null; done",
  },
  {
    // rand-read's pages, each loaded through a mapping of the file. The image's one program that maps a file
    // is busybox devmem (MAP_SHARED, one 32-bit load per run), which maps /dev/mem: here that is the file,
    // bound over it in a private mount namespace. One exec per page, as rand-read.
    name: "mmap-rand-read",
    floor: { requests: 1 + 200, what: "LOOKUP, READ per 4 KiB block" },
    prepare: BIG,
    run: `unshare -m --propagation private sh -c 'mount -t tmpfs none /dev && : > /dev/mem && mount --bind "$1" /dev/mem && for s in $2; do devmem $((s * 4096)) 32 > /dev/null; done' sh $D/big "$RANDOM_BLOCKS"`,
    unsupported: { targets: ["never"], why: "cache=never opens files FOPEN_DIRECT_IO, and Linux refuses MAP_SHARED on them (ENODEV)" },
  },
  {
    // A stat with cache=never is one LOOKUP round trip; the builtin test execs nothing.
    name: "null-request",
    floor: { requests: 0, what: "none: the name is cached; cache=never: a LOOKUP per stat" },
    prepare: ": > $D/null",
    run: "for i in $(seq 2000); do [ -e $D/null ]; done",
  },
];

/** Guest-side helpers: a microsecond clock (busybox date has no %N; adjtimex shows tv_usec). */
const PRELUDE = `
now() { adjtimex | awk '/tv_sec/ { s = $2 } /tv_usec/ { u = $2 } END { printf "%.0f\\n", s * 1000000 + u }'; }
RANDOM_BLOCKS="${Array.from({ length: 200 }, (_, i) => (i * 7919) % 16384).join(" ")}"
`;

/** A tree of about 1,000 files (50 directories of 20, 100 B to 40 KiB) for untar, made with builtins. */
const MAKE_TARBALL = `
rm -rf /tmp/src && mkdir /tmp/src && cd /tmp/src
for d in $(seq 50); do mkdir d$d; for f in $(seq 20); do printf "%0$(( (d * 37 + f * 101) % 40000 + 100 ))d" 0 > d$d/f$f.c; done; done
tar cf /tmp/src.tar . && cd / && rm -rf /tmp/src
`;

export interface FsResults {
  reps: number;
  /** workload → target name → microseconds of each repetition. */
  samples: Record<string, Record<string, number[]>>;
  /** workload name → its `bytes`, for those that have them. */
  bytes: Record<string, number>;
  /** target name → growth of the guest's `Cached:` (KiB) while it reads the 64 MiB file cold, once after the reps. */
  pageCacheKiB?: Record<string, number>;
  /** workload → target name → the request ledger of each repetition (bench/ledger.ts). */
  ledger?: Record<string, Record<string, LedgerEntry[]>>;
  /** workload name → its floor. */
  floors?: Record<string, Workload["floor"]>;
}

/** Runs a script in the guest after PRELUDE and returns its stdout; throws unless it exits with 0. */
type Shell = (script: string) => Promise<string>;

/**
 * Boots the bench guest, runs the workloads and shuts it down: the same in Node and in a browser Worker;
 * only where `runtime` (the images and v86.wasm) comes from differs.
 */
export async function runFsBench(workloads: Workload[], targets: Target[], reps: number, log: (line: string) => void, runtime: GuestRuntime): Promise<FsResults> {
  const ninep = targets.includes(NINEP);
  const ledger = new Ledger();
  const vfs = VFS.filter((t) => targets.includes(t));
  const guest = await Guest.boot({
    runtime,
    memoryMiB: MEMORY_MIB,
    ninep,
    shares: vfs.map((t, i) => ({ tag: `vfs${i}`, fs: new MemFs(), cache: t.cache, writeback: t.writeback, daxMiB: t.daxMiB, daxInodeMinSize: t.daxInodeMinSize, mountPoint: t.dir, observer: ledger.observer(t.id, i === 0) })),
    mounts: ninep ? [{ fstype: "9p", tag: "host9p", dir: NINEP.dir, options: "msize=512000,cache=loose" }] : [],
  });
  ledger.attach(guest.emulator, ninep ? NINEP.id : undefined);
  try {
    return await runWorkloads(
      async (script) => {
        const r = await guest.run(PRELUDE + script);
        if (r.status !== 0) throw new Error(`guest script failed (${r.status}): ${text(r.stderr)}\n${script}`);
        return text(r.stdout);
      },
      workloads,
      targets,
      reps,
      log,
      vfs[0] && { ledger, dir: vfs[0].dir },
    );
  } finally {
    ledger.detach();
    await guest.shutdown();
  }
}

/** Prepares every target, then times each workload on each target, `reps` rounds, interleaved. */
async function runWorkloads(sh: Shell, workloads: Workload[], targets: Target[], reps: number, log: (line: string) => void, book?: { ledger: Ledger; dir: string }): Promise<FsResults> {
  if (targets.includes(TMPFS)) await sh(`mkdir -p ${TMPFS.dir} && mount -t tmpfs -o size=512m tmpfs ${TMPFS.dir}`);
  if (workloads.some((w) => w.name === "untar")) await sh(MAKE_TARBALL);
  for (const t of targets.filter((x) => x.prepare)) {
    log(`prepare ${t.name}`);
    await sh(`D=${t.dir}; ${t.prepare}`);
  }
  const runsOn = (w: Workload, t: Target) => !w.unsupported?.targets.includes(t.id);
  for (const w of workloads) {
    for (const t of targets) {
      if (w.prepare && runsOn(w, t)) {
        log(`prepare ${w.name} on ${t.name}`);
        await sh(`D=${t.dir}; ${w.prepare}`);
      } else if (!runsOn(w, t)) log(`${w.name} skips ${t.name}: ${w.unsupported!.why}`);
    }
  }
  const samples: FsResults["samples"] = {};
  const ledger: NonNullable<FsResults["ledger"]> = {};
  for (let rep = 0; rep < reps; rep++) {
    for (const w of workloads) {
      for (const t of targets.filter((x) => runsOn(w, x))) {
        // Every timed part starts from empty caches: the seven targets' 64 MiB files do not fit in the
        // guest's page cache together, so what one left there would decide how "warm" the next one is.
        // The ledger's brackets are inside the timing, so the instructions counted are the workload's.
        const marks = book?.ledger.brackets(book.dir);
        const us = Number(
          await sh(`D=${t.dir}
${DROP}
${w.before ?? ":"}
${w.cold ? DROP : "sync"}
t0=$(now)
${marks?.open ?? ":"}
( set -e; ${w.run} ) || exit 99
${marks?.close ?? ":"}
t1=$(now)
${w.after ?? ":"}
echo $t0 $t1 | awk '{ printf "%.0f", $2 - $1 }'`),
        );
        ((samples[w.name] ??= {})[t.name] ??= []).push(us);
        const entry = book?.ledger.take(t.id);
        if (entry) ((ledger[w.name] ??= {})[t.name] ??= []).push(entry);
        log(`rep ${rep + 1}/${reps} ${w.name} on ${t.name}: ${(us / 1000).toFixed(1)} ms`);
      }
    }
  }
  const bytes = Object.fromEntries(workloads.flatMap((w) => (w.bytes ? [[w.name, w.bytes]] : [])));
  const pageCacheKiB = workloads.some((w) => w.name === "seq-read-cold") ? await pageCacheGrowth(sh, targets, log) : undefined;
  const floors = Object.fromEntries(workloads.map((w) => [w.name, w.floor]));
  return { reps, samples, bytes, pageCacheKiB, ledger: book && ledger, floors };
}

/** The growth of the guest's `Cached:` while each target's 64 MiB file is read from dropped caches. */
async function pageCacheGrowth(sh: Shell, targets: Target[], log: (line: string) => void): Promise<Record<string, number>> {
  const cached = "awk '/^Cached:/ { print $2 }' /proc/meminfo";
  const out: Record<string, number> = {};
  for (const t of targets) {
    out[t.name] = Number(await sh(`D=${t.dir}; ${DROP}; a=$(${cached}); dd if=$D/big of=/dev/null bs=1M 2> /dev/null; b=$(${cached}); echo $((b - a))`));
    log(`Cached: grew ${out[t.name]} KiB reading 64 MiB on ${t.name}`);
  }
  return out;
}
