// The process bench/crash.ts kills: serves a host directory to a guest that runs the crash workload, and
// passes the guest's reports to stdout (a pipe, written synchronously: every report the parent got was
// made before the kill; one still on the serial line is lost, which only makes the check smaller).
// Usage: crash-child.ts DIR BASE
import { bootGuest, HostDirFs } from "../src/node.ts";
import { workloadScript } from "./crash.ts";

const [dir, base] = process.argv.slice(2);
if (!dir || !base) throw new Error("usage: crash-child.ts DIR BASE");
const fs = await HostDirFs.open(dir, { ownership: "metadata" });
const guest = await bootGuest({ shares: [{ tag: "share", fs, mountPoint: "/mnt" }] });
process.stdout.write("READY\n");
const r = await guest.run(workloadScript("/mnt", Number(base)), (b) => process.stdout.write(b));
process.stderr.write(`the workload ended with status ${r.status}: ${new TextDecoder().decode(r.stderr)}\n`);
process.exit(1);
