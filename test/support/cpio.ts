// Reads one file out of a newc cpio archive (the guest's initramfs): enough to give a test tree the
// guest's own busybox, without a cpio program on the test machine.

const HEADER = 110;
const align4 = (n: number) => (n + 3) & ~3;

export function cpioFile(archive: Uint8Array, path: string): Uint8Array {
  const ascii = new TextDecoder("latin1");
  // newc stores a hard-linked file's data once, with its last name: a name before it has size 0.
  let linkOf: string | undefined;
  for (let at = 0; at + HEADER <= archive.length; ) {
    const head = ascii.decode(archive.subarray(at, at + HEADER));
    if (!head.startsWith("070701")) throw new Error(`not a newc cpio header at ${at}`);
    const field = (i: number) => parseInt(head.slice(6 + i * 8, 14 + i * 8), 16);
    const [ino, nlink, size, devMajor, devMinor, nameSize] = [field(0), field(4), field(6), field(7), field(8), field(11)];
    const inode = `${devMajor}:${devMinor}:${ino}`;
    const name = ascii.decode(archive.subarray(at + HEADER, at + HEADER + nameSize - 1));
    const data = align4(at + HEADER + nameSize);
    if (name === "TRAILER!!!") break;
    if (name === path || name === `./${path}` || inode === linkOf) {
      if (size > 0 || nlink < 2) return archive.slice(data, data + size);
      linkOf = inode;
    }
    at = align4(data + size);
  }
  throw new Error(`${path} is not in the archive`);
}
