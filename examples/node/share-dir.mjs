// Shares a directory of this machine with a Linux guest in v86 and runs one command on it:
//   node share-dir.mjs DIR ['COMMAND']        (default: ls -la /mnt)
import { bootGuest, HostDirFs } from "virtiofs-web/node";

const [dir = ".", command = "ls -la /mnt"] = process.argv.slice(2);
const guest = await bootGuest({
  // The guest mounts the share on /mnt with virtiofs.ko; the directory is confined, host symlinks never followed.
  shares: [{ tag: "share", fs: await HostDirFs.open(dir), mountPoint: "/mnt" }],
});
const { stdout, stderr, status } = await guest.run(command);
process.stdout.write(stdout);
process.stderr.write(stderr);
await guest.shutdown();
process.exit(status);
