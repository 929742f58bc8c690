import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bootGuest, MemFs, text, type Guest } from "../../src/node.ts";
import { DEBIAN_IMAGES_DIR } from "../../src/machine/node-images.ts";
import { parseManifest } from "../../src/machine/images.ts";
import { CACHE_MODES } from "../../src/fuse/session.ts";

const manifestPath = join(DEBIAN_IMAGES_DIR, "manifest.json");
const absent = !existsSync(manifestPath);
if (absent) console.warn(`test/boot/debian-kernel.test.ts skipped: no ${DEBIAN_IMAGES_DIR} (run npm run guest:debian-kernel)`);

describe.skipIf(absent)("the guest on Debian 12's stock i386 kernel", () => {
  let guest: Guest;
  // One share per cache mode, on one machine: a boot of this kernel costs tens of seconds.
  const shares = CACHE_MODES.map((cache) => ({ cache, tag: `cache-${cache}`, fs: new MemFs(), mountPoint: `/mnt/${cache}` }));
  beforeAll(async () => {
    guest = await bootGuest({
      imagesDir: DEBIAN_IMAGES_DIR,
      shares,
      ninep: true,
      mounts: [{ fstype: "9p", tag: "host9p", dir: "/9p" }],
    });
  });
  afterAll(() => guest?.shutdown());

  it("runs the kernel of the package the manifest names", async () => {
    const pkg = parseManifest(readFileSync(manifestPath, "utf8")).packages[0]!.name;
    const release = /^linux-image-(.+)-unsigned$/.exec(pkg)?.[1];
    expect(release).toMatch(/^6\.1\.0-\d+-686(-pae)?$/);
    const r = await guest.run("uname -r");
    expect(text(r.stdout)).toBe(`${release}\n`);
  });

  it("loads the virtio, virtio-fs and 9p drivers as modules", async () => {
    const r = await guest.run("cut -d' ' -f1 /proc/modules");
    const loaded = text(r.stdout).split("\n");
    for (const m of ["virtio_pci", "virtio", "virtio_ring", "fuse", "virtiofs", "9pnet_virtio", "9p"]) expect(loaded).toContain(m);
  });

  it("reads and writes a share in every cache mode", async () => {
    for (const s of shares) s.fs.vol.writeFileSync("/from-host", `host ${s.cache}\n`);
    const r = await guest.run(shares.map((s) => `cat ${s.mountPoint}/from-host && echo guest ${s.cache} > ${s.mountPoint}/from-guest`).join(" && "));
    expect(text(r.stderr)).toBe("");
    expect(text(r.stdout)).toBe(CACHE_MODES.map((c) => `host ${c}\n`).join(""));
    for (const s of shares) expect(s.fs.vol.readFileSync("/from-guest", "utf8")).toBe(`guest ${s.cache}\n`);
    const mounts = text((await guest.run("grep virtiofs /proc/mounts")).stdout);
    for (const s of shares) expect(mounts).toContain(`${s.tag} ${s.mountPoint} virtiofs rw`);
  });

  it("mounts v86's virtio-9p, its filesystem module loaded on demand", async () => {
    const r = await guest.run("echo nine > /9p/x && cat /9p/x && grep ' /9p ' /proc/mounts");
    expect(text(r.stdout)).toMatch(/^nine\nhost9p \/9p 9p /);
  });
});
