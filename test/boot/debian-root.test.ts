// A real Debian userland booted from a virtio-fs root: the image `npm run guest:rootfs` builds (a lazy
// image: the index read at mount, each file's blob on first read), under an overlay that takes the
// guest's changes. Real programs on the root: dpkg, perl, python3, flock, the attr tools, tar.
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bootGuest, debianRootDir, fileBlobSource, ImageFs, INDEX_NAME, MemFs, OverlayFs, parseImageIndex, text, type Guest } from "../../src/node.ts";
import { opcodeCounter } from "../support/opcode-counter.ts";

const root = debianRootDir();
const imageDir = join(root, "image");
const absent = !existsSync(join(imageDir, INDEX_NAME));
if (absent) console.warn(`test/boot/debian-root.test.ts skipped: no Debian root image at ${imageDir} (run npm run guest:rootfs, as root on Debian 12)`);

describe.skipIf(absent)("a Debian 12 userland booted from a virtio-fs root (lazy image + overlay)", () => {
  let guest: Guest;
  let image: ImageFs;
  let upper: MemFs;
  beforeAll(async () => {
    image = new ImageFs(parseImageIndex(await readFile(join(imageDir, INDEX_NAME), "utf8")), fileBlobSource(imageDir));
    upper = new MemFs();
    const fs = await OverlayFs.mount(image, upper);
    guest = await bootGuest({ shares: [{ tag: "root", fs, mountPoint: "/" }] });
  }, 180_000);
  afterAll(() => guest?.shutdown());

  const run = async (cmd: string) => {
    const r = await guest.run(cmd);
    expect(text(r.stderr)).toBe("");
    expect(r.status).toBe(0);
    return text(r.stdout);
  };

  it("is the Debian the manifest names: every package installed", async () => {
    const manifest = JSON.parse(await readFile(join(root, "rootfs.manifest.json"), "utf8")) as { packages: { name: string; version: string }[] };
    const out = await run("cat /etc/debian_version; dpkg-query -W -f '${db:Status-Abbrev}${Package} ${Version}\\n'");
    const [version, ...lines] = out.trimEnd().split("\n");
    expect(version).toMatch(/^12\.\d+$/);
    const installed = lines.filter((l) => l.startsWith("ii ")).map((l) => l.slice(3).trim().replace(/:i386 /, " "));
    expect(installed.sort()).toEqual(manifest.packages.map((p) => `${p.name} ${p.version}`).sort());
  }, 60_000);

  it("runs perl and python3 from the root", async () => {
    expect(await run("perl -e 'print 6 * 7, qq(\\n)'; python3 -c 'import hashlib; print(hashlib.sha256(b\"abc\").hexdigest()[:16])'")).toBe("42\nba7816bf8f01cfea\n");
  }, 60_000);

  it("takes flock(1) locks and keeps xattrs (setfattr/getfattr) on the root", async () => {
    const out = await run("cd /root && touch f && setfattr -n user.colour -v blue f && getfattr --only-values -n user.colour f; echo; flock f -c 'echo locked'; flock -n f true && echo free");
    expect(out).toBe("blue\nlocked\nfree\n");
  }, 60_000);

  it("round-trips a tree through tar, byte for byte", async () => {
    // Every entry's type, mode, owner and link target, and every file's sha256, before and after.
    const list = "list() { (cd \"$1\" && find . -printf '%p %y %m %U %l\\n' | sort && find . -type f -exec sha256sum {} + | sort); }";
    const out = await run(`${list}; tar -C / -cf /root/etc.tar etc && mkdir /root/x && tar -C /root/x -xf /root/etc.tar && list /etc > /root/a && list /root/x/etc > /root/b && sha256sum < /root/a && sha256sum < /root/b && wc -l < /root/a`);
    const [before, after, lines] = out.trimEnd().split("\n");
    expect(after).toBe(before);
    expect(Number(lines)).toBeGreaterThan(200); // /etc: about 160 entries and 100 files
  }, 120_000);

  it("writes to the overlay and leaves the image as it was", async () => {
    await run("echo changed > /etc/motd && rm /etc/issue.net && echo new > /root/new.txt");
    // The image still holds the old files; the upper holds the change, a whiteout and the new file.
    const etc = await image.lookup(image.rootIno, "etc");
    await expect(image.lookup(etc.ino, "issue.net")).resolves.toMatchObject({ ino: expect.any(Number) });
    const upperEtc = await upper.lookup(upper.rootIno, "etc");
    const motd = await upper.lookup(upperEtc.ino, "motd");
    const fh = await upper.open(motd.ino, 0);
    expect(new TextDecoder().decode(await upper.read(fh, 0, 100))).toBe("changed\n");
    await upper.release(fh);
    expect(await run("cat /etc/motd /root/new.txt; test -e /etc/issue.net || echo gone")).toBe("changed\nnew\ngone\n");
  }, 60_000);
});

describe.skipIf(absent)("the Debian root with a DAX window (dax=always): programs and libraries run from the window", () => {
  let guest: Guest;
  const ops = opcodeCounter();
  beforeAll(async () => {
    const image = new ImageFs(parseImageIndex(await readFile(join(imageDir, INDEX_NAME), "utf8")), fileBlobSource(imageDir));
    guest = await bootGuest({ shares: [{ tag: "root", fs: await OverlayFs.mount(image, new MemFs()), mountPoint: "/", daxMiB: 256, observer: ops.observer }] });
  }, 180_000);
  afterAll(() => guest?.shutdown());

  it("execs perl and python3 and loads their libraries through the window: mappings, no READ", async () => {
    expect(text((await guest.run("grep ' / ' /proc/mounts")).stdout)).toMatch(/^root \/ virtiofs .*dax=always/);
    await guest.run("sync; echo 3 > /proc/sys/vm/drop_caches");
    ops.clear();
    const r = await guest.run("perl -e 'print 6 * 7, qq(\\n)'; python3 -c 'import hashlib; print(hashlib.sha256(b\"abc\").hexdigest()[:16])'");
    expect(text(r.stdout)).toBe("42\nba7816bf8f01cfea\n");
    expect(ops.count("FUSE_SETUPMAPPING")).toBeGreaterThan(0);
    expect(ops.count("FUSE_READ")).toBe(0);
  }, 120_000);
});
