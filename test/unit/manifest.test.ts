import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { IMAGE_NAMES, ImageError, parseManifest, sha256Hex, verifyImage } from "../../src/machine/images.ts";
import { DEFAULT_IMAGES_DIR, loadImages } from "../../src/machine/node-images.ts";

const manifestText = await readFile(join(DEFAULT_IMAGES_DIR, "manifest.json"), "utf8");
const manifest = parseManifest(manifestText);

describe("guest image manifest", () => {
  it.each(IMAGE_NAMES)("%s matches its size and sha256", async (name) => {
    const buf = await readFile(join(DEFAULT_IMAGES_DIR, name));
    const entry = manifest.files.find((f) => f.name === name);
    expect(entry?.size).toBe(buf.length);
    expect(entry?.sha256).toBe(await sha256Hex(new Uint8Array(buf).buffer));
  });

  it("names the Debian packages, their versions and licences", () => {
    const byName = new Map(manifest.packages.map((p) => [p.name, p]));
    expect(byName.get("linux-source-6.1")).toMatchObject({ source: "linux", licence: "GPL-2.0-only", version: expect.stringMatching(/^6\.1\.\d+/) });
    expect(byName.get("busybox-static")).toMatchObject({ source: "busybox", licence: "GPL-2.0-only", arch: "i386", version: expect.stringMatching(/^1:1\.\d+/) });
    expect(byName.get("seabios")).toMatchObject({ licence: "LGPL-3.0-only", version: expect.stringMatching(/^1\.\d+/) });
    expect(manifest.kernel_config).toBe("guest/kernel.config");
  });

  it("lists every kernel patch that exists in guest/patches", async () => {
    for (const p of manifest.patches) await expect(readFile(p)).resolves.toBeInstanceOf(Buffer);
  });

  it("loadImages verifies all images", async () => {
    const images = await loadImages();
    expect(Object.keys(images).sort()).toEqual([...IMAGE_NAMES].sort());
  });

  it("rejects a corrupted image with its name, sizes equal", async () => {
    const buf = new Uint8Array(await readFile(join(DEFAULT_IMAGES_DIR, "bzImage")));
    buf[1000]! ^= 0xff;
    await expect(verifyImage(manifest, "bzImage", buf.buffer)).rejects.toThrow(/bzImage has sha256 [0-9a-f]{64}, the manifest says/);
  });

  it("rejects a truncated image and a manifest without entries", async () => {
    await expect(verifyImage(manifest, "bios.bin", new ArrayBuffer(10))).rejects.toThrow(ImageError);
    expect(() => parseManifest('{"files": []}')).toThrow(/no valid entry for bios.bin/);
    expect(() => parseManifest("not json")).toThrow(ImageError);
  });
});
