// Where the machine puts DAX windows, and how the guest is told to use them.
import { describe, expect, it } from "vitest";
import { parseCli } from "../../src/machine/cli.ts";
import { kernelCmdline } from "../../src/machine/cmdline.ts";
import { shareMountOptions } from "../../src/machine/guest.ts";
import { daxWindowAddress, daxWindowSize } from "../../src/machine/attach.ts";

const MiB = 1 << 20;

describe("DAX window placement", () => {
  it("sizes windows in MiB, powers of two from 2 to 256", () => {
    expect(daxWindowSize(2)).toBe(2 * MiB);
    expect(daxWindowSize(256)).toBe(256 * MiB);
    for (const bad of [0, 1, 3, 48, 512, 2.5, -2, NaN]) expect(() => daxWindowSize(bad)).toThrow(RangeError);
  });

  /** Places windows one after another, as successive attachments do. */
  const place = (sizes: number[], memoryBytes: number): (number | undefined)[] => {
    const taken: [number, number][] = [];
    return sizes.map((size) => {
      const at = daxWindowAddress(size, memoryBytes, taken);
      if (at !== undefined) taken.push([at, at + size]);
      return at;
    });
  };

  it("puts the first window at 0xD0000000 and the next ones after it, each aligned to its size", () => {
    expect(place([64 * MiB, 2 * MiB, 64 * MiB], 256 * MiB)).toEqual([0xd000_0000, 0xd400_0000, 0xd800_0000]);
  });

  it("fills a hole a detached window left", () => {
    expect(daxWindowAddress(2 * MiB, 256 * MiB, [[0xd020_0000, 0xd400_0000]])).toBe(0xd000_0000);
    expect(daxWindowAddress(4 * MiB, 256 * MiB, [[0xd000_0000, 0xd020_0000], [0xd080_0000, 0xd100_0000]])).toBe(0xd040_0000);
  });

  it("keeps clear of v86's VGA framebuffer at 0xE0000000 and of the I/O APIC at 0xFEC00000", () => {
    const at = place([256 * MiB, 128 * MiB, 64 * MiB, 256 * MiB], 256 * MiB);
    expect(at).toEqual([0xd000_0000, 0xf000_0000, 0xf800_0000, undefined]);
    for (const [i, a] of at.slice(0, 3).entries()) {
      const size = [256, 128, 64][i]! * MiB;
      expect(a! + size <= 0xe000_0000 || a! >= 0xf000_0000).toBe(true);
      expect(a! + size).toBeLessThanOrEqual(0xfec0_0000);
    }
  });

  it("never puts a window inside guest RAM", () => {
    expect(daxWindowAddress(16 * MiB, 0xd080_0000, [])).toBe(0xd100_0000);
    expect(daxWindowAddress(256 * MiB, 0xd080_0000, [])).toBeUndefined();
  });
});

describe("mounting a share with a window", () => {
  it("adds dax=inode unless the options choose a dax mode", () => {
    expect(shareMountOptions({ daxMiB: 64 })).toBe("dax=inode");
    expect(shareMountOptions({ daxMiB: 64, mountOptions: "rootmode=040000" })).toBe("rootmode=040000,dax=inode");
    expect(shareMountOptions({ daxMiB: 64, mountOptions: "dax=never" })).toBe("dax=never");
    expect(shareMountOptions({ mountOptions: "ro" })).toBe("ro");
    expect(shareMountOptions({})).toBeUndefined();
    expect(kernelCmdline({ nonce: "n", mode: { kind: "shell" }, mounts: [{ fstype: "virtiofs", tag: "share", dir: "/mnt", options: shareMountOptions({ daxMiB: 2 }) }] })).toContain(
      "vfsw.fs=share:/mnt:dax=inode",
    );
  });
});

describe("--dax", () => {
  const dax = (...args: string[]) => {
    const a = parseCli(["run", ...args]);
    if (a === "help") throw new Error("help");
    return a.daxMiB;
  };

  it("takes an optional size, defaulting by guest RAM (the guest maps the window into vmalloc space)", () => {
    expect(dax()).toBeUndefined();
    expect(dax("--dax")).toBe(256);
    expect(dax("--dax", "--exec", "true")).toBe(256);
    expect(dax("--memory", "1024", "--dax")).toBe(64);
    expect(dax("--dax", "32")).toBe(32);
    expect(dax("--dax=8", "--memory", "1024")).toBe(8);
  });

  it.each([["--dax", "3"], ["--dax", "512"], ["--dax=1"], ["--dax=lots"]])("rejects %s", (...args) => {
    expect(() => parseCli(["run", ...args])).toThrow(/--dax takes a power of two from 2 to 256 MiB/);
  });
});
