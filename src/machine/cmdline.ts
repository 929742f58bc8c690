// The kernel command line that tells guest/init what to mount and what to run.

/** x86 COMMAND_LINE_SIZE, including the terminating NUL. */
export const COMMAND_LINE_SIZE = 2048;

export interface GuestMount {
  fstype: "virtiofs" | "9p";
  tag: string;
  /** Where the guest mounts it; "/" makes a virtio-fs share the root the guest boots from. */
  dir: string;
  options?: string;
}

export type GuestMode = { kind: "shell" } | { kind: "agent" } | { kind: "exec"; command: string };

export interface CmdlineOptions {
  nonce: string;
  mode: GuestMode;
  mounts?: GuestMount[];
  /** Extra kernel parameters from the user, appended last. */
  append?: string;
}

export class CmdlineError extends Error {}

// Serial console; quiet keeps it clean for framed output. The rest saves boot time: crypto self-tests,
// the TSC watchdog (emulated TSC and PIT drift apart, and falling back to the PIT clocksource is slow),
// probing UARTs that are not there. random.trust_cpu: v86's RDRAND comes from the host's
// crypto.getRandomValues, so it may seed the kernel's CRNG at boot; otherwise the first getrandom() (python3
// starting, for one) blocks while the kernel gathers timer jitter: ~450 million guest instructions, seconds.
const BASE = "console=ttyS0 quiet cryptomgr.notests noisapnp tsc=reliable 8250.nr_uarts=1 random.trust_cpu=on";

export function utf8Base64(s: string): string {
  let bin = "";
  for (const b of new TextEncoder().encode(s)) bin += String.fromCharCode(b);
  return btoa(bin);
}

export function kernelCmdline(o: CmdlineOptions): string {
  const parts = [BASE, `vfsw.nonce=${o.nonce}`];
  for (const m of o.mounts ?? []) {
    const fields: [string, string][] = [["tag", m.tag], ["mount point", m.dir], ["mount options", m.options ?? ""]];
    for (const [what, v] of fields) {
      if (/[\s:]/.test(v)) throw new CmdlineError(`${what} ${JSON.stringify(v)} may not contain spaces or ':'`);
    }
    if (m.dir === "/") {
      // The root: init mounts it first and moves into it; every other mount lands inside it.
      if (parts.some((p) => p.startsWith("vfsw.root"))) throw new CmdlineError("two mounts on /: one root only");
      parts.push(`${m.fstype === "virtiofs" ? "vfsw.root" : "vfsw.root9p"}=${m.tag}${m.options ? `:${m.options}` : ""}`);
      continue;
    }
    const key = m.fstype === "virtiofs" ? "vfsw.fs" : "vfsw.9p";
    parts.push(`${key}=${m.tag}:${m.dir}${m.options ? `:${m.options}` : ""}`);
  }
  if (o.mode.kind === "agent") parts.push("vfsw.agent");
  if (o.mode.kind === "exec") parts.push(`vfsw.exec=${utf8Base64(o.mode.command)}`);
  if (o.append) parts.push(o.append);
  const line = parts.join(" ");
  if (line.length >= COMMAND_LINE_SIZE) {
    throw new CmdlineError(`kernel command line is ${line.length} bytes; the limit is ${COMMAND_LINE_SIZE - 1} (shorten --exec or --append)`);
  }
  return line;
}

export function randomNonce(): string {
  const b = crypto.getRandomValues(new Uint8Array(8));
  return "vfsw" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
