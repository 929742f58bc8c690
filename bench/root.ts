// Booting a Debian userland from a virtio-fs root against v86's own way, a 9p root from a basefs tree (its
// Arch and Debian demos): the same tree (npm run guest:rootfs writes both from one set of blobs), the same
// kernel, initramfs and v86, in one run. Each sample boots afresh (cold caches on both sides) and times,
// inside the guest, what a user does first: start python3 and perl, list the packages, walk the tree,
// read a library directory. In Node (bench/root-node.ts) and in a Worker of Chromium's bench page
// (bench/browser/), the image fetched over HTTP there as the demo's ?root=debian fetches it.
import { ImageFs, MemFs, OverlayFs, parseImageIndex, text, type BlobSource, type CacheMode, type Guest, type GuestOptions, type NinepTree } from "../src/index.ts";

export const ROOT_WORKLOADS: [name: string, command: string][] = [
  ["python3 -c pass", "python3 -c pass"],
  ["perl -e 1", "perl -e 1"],
  ["dpkg -l", "dpkg -l"],
  ["find / -xdev", "find / -xdev"],
  ["read /usr/lib/python3.11", "tar -C / -cf - usr/lib/python3.11 | cksum"],
];

export interface RootTarget {
  id: string;
  name: string;
  /** The guest, and for a lazy image the bytes read from it so far (index and stored blobs). */
  boot(): Promise<{ guest: Guest; imageBytes?: () => number }>;
}

export interface RootSample {
  /** Wall time to init ready, ms, and the guest's uptime then, s. */
  bootMs: number;
  uptime: number;
  /** Bytes read from the lazy image to reach the shell (virtio-fs targets). */
  imageBytes?: number;
  /** ms inside the guest, per workload, in ROOT_WORKLOADS order. */
  workloads: number[];
}

/** Where one host finds the tree (bench/root-node.ts: files; bench/browser/: the page's server). */
export interface RootSource {
  /** The lazy image's index (JSON). */
  index(): Promise<string>;
  blobs: BlobSource;
  /** v86's basefs of the same tree. */
  ninep: NinepTree;
  boot(opts: Omit<GuestOptions, "runtime">): Promise<Guest>;
}

export function rootTargets(src: RootSource): RootTarget[] {
  // dax: a window of `mib`, mounted dax=always, or dax=inode with files of at least `inodeMinSize` bytes in it.
  const virtiofs = (cache: CacheMode, dax?: { mib: number; inodeMinSize?: number }): RootTarget => {
    const min = dax?.inodeMinSize;
    const mode = min === undefined ? "dax=always" : `dax=inode, files of ${min >> 20} MiB and more`;
    return {
      id: `virtiofs-${cache}${dax ? (min === undefined ? "-dax" : "-dax-inode") : ""}`,
      name: `virtio-fs root, cache=${cache}${dax ? `, ${dax.mib} MiB DAX window (${mode})` : ""} (lazy image + memfs overlay)`,
      boot: async () => {
        const index = await src.index();
        let read = new TextEncoder().encode(index).length;
        const counted: BlobSource = {
          fetch: async (path) => {
            const bytes = await src.blobs.fetch(path);
            read += bytes.length;
            return bytes;
          },
        };
        const image = new ImageFs(parseImageIndex(index), counted);
        const guest = await src.boot({ shares: [{ tag: "root", fs: await OverlayFs.mount(image, new MemFs()), cache, daxMiB: dax?.mib, daxInodeMinSize: dax?.inodeMinSize, mountPoint: "/" }] });
        return { guest, imageBytes: () => read };
      },
    };
  };
  return [
    virtiofs("auto"),
    virtiofs("always"),
    virtiofs("auto", { mib: 256 }),
    virtiofs("auto", { mib: 256, inodeMinSize: 1 << 20 }),
    {
      id: "9p",
      name: "9p root, v86 basefs (msize=512000, cache=loose)",
      boot: async () => ({
        guest: await src.boot({ ninep: src.ninep, mounts: [{ fstype: "9p", tag: "host9p", dir: "/", options: "msize=512000,cache=loose" }] }),
      }),
    },
  ];
}

async function sample(target: RootTarget): Promise<RootSample> {
  const t0 = performance.now();
  const { guest, imageBytes } = await target.boot();
  const bootMs = performance.now() - t0;
  const read = imageBytes?.();
  try {
    const script = ROOT_WORKLOADS.map(([, cmd]) => `t0=$(date +%s%N); ${cmd} > /dev/null || exit 1; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000 ))`).join("\n");
    const r = await guest.run(script);
    if (r.status !== 0) throw new Error(`${target.name}: the workloads failed (${r.status}): ${text(r.stderr)}`);
    return { bootMs, uptime: guest.uptimeAtReady, imageBytes: read, workloads: text(r.stdout).trim().split("\n").map((us) => Number(us) / 1000) };
  } finally {
    await guest.shutdown();
  }
}

/** `reps` samples per target, interleaved so that every target sees the same machine load. */
export async function runRootBench(targets: RootTarget[], reps: number, log: (line: string) => void): Promise<Record<string, RootSample[]>> {
  const out: Record<string, RootSample[]> = Object.fromEntries(targets.map((t) => [t.id, []]));
  for (let i = 0; i < reps; i++) {
    for (const t of targets) {
      const s = await sample(t);
      out[t.id]!.push(s);
      log(`root ${i + 1}/${reps} ${t.id}: boot ${s.bootMs.toFixed(0)} ms, ${s.workloads.map((ms) => ms.toFixed(0)).join(" / ")} ms`);
    }
  }
  return out;
}
