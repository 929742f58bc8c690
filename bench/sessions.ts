// The cost of sharing a tree: one guest's requests when it is the tree's only client (locks kept by its
// kernel) against the same guest while a second guest has a session on the same backend (locks kept by
// the device, so every close(2) sends a FLUSH). Timed inside guest A with builtins only (no fork per
// request): a null request, `[ -e /mnt/f ]` (LOOKUP with cache=never), and an open and close, `: </mnt/f`
// (LOOKUP, OPEN, FLUSH, RELEASE), each less the same loop on the guest's tmpfs.
import { bootGuest, MemFs, text, type Guest, type LockMode } from "../src/node.ts";
import { median } from "./report.ts";

const N = 2000;

export interface SessionsResult {
  /** Microseconds per request (the tmpfs loop subtracted), median of the reps. */
  alone: { nullRequest: number; openClose: number };
  shared: { nullRequest: number; openClose: number };
}

/** Microseconds per iteration of `body` on /mnt less the same on /tmp, measured in the guest. */
async function perRequest(g: Guest, body: (dir: string) => string): Promise<number> {
  const loop = (dir: string) => `read a _ </proc/uptime; i=0; while [ $i -lt ${N} ]; do ${body(dir)}; i=$((i + 1)); done; read b _ </proc/uptime; echo "$a $b"`;
  const seconds = async (dir: string) => {
    const r = await g.run(`: >${dir}/f; ${loop(dir)}`);
    const [a, b] = text(r.stdout).trim().split(" ").map(Number);
    if (r.status !== 0 || !(b! >= a!)) throw new Error(`sessions bench: ${text(r.stderr)}`);
    return b! - a!;
  };
  return (((await seconds("/mnt")) - (await seconds("/tmp"))) / N) * 1e6;
}

const boot = (fs: MemFs, locks: LockMode, n: number) => bootGuest({ shares: [{ tag: "share", fs, mountPoint: "/mnt", cache: "never", locks }], append: `vfsw.guest=${n}` });

async function measure(a: Guest) {
  return { nullRequest: await perRequest(a, (d) => `[ -e ${d}/f ]`), openClose: await perRequest(a, (d) => `: <${d}/f`) };
}

export async function runSessionsBench(reps: number, log: (line: string) => void): Promise<SessionsResult> {
  const alone: { nullRequest: number; openClose: number }[] = [];
  const shared: { nullRequest: number; openClose: number }[] = [];
  for (let i = 0; i < reps; i++) {
    // Side by side in each rep: the same guest image, alone and then with a second session beside it.
    const soloFs = new MemFs();
    const solo = await boot(soloFs, "guest", 0);
    alone.push(await measure(solo));
    await solo.shutdown();
    const fs = new MemFs();
    const [a, b] = await Promise.all([boot(fs, "device", 0), boot(fs, "device", 1)]);
    shared.push(await measure(a));
    await Promise.all([a.shutdown(), b.shutdown()]);
    log(`sessions: rep ${i + 1}/${reps}`);
  }
  const med = (xs: { nullRequest: number; openClose: number }[]) => ({ nullRequest: median(xs.map((x) => x.nullRequest)), openClose: median(xs.map((x) => x.openClose)) });
  return { alone: med(alone), shared: med(shared) };
}
