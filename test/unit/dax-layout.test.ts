// Where the machine puts DAX windows, and how the guest is told to use them.
import { describe, expect, it } from "vitest";
import { parseCli } from "../../src/machine/cli.ts";
import { kernelCmdline } from "../../src/machine/cmdline.ts";
import { shareMountOptions } from "../../src/machine/guest.ts";
import { daxWindowAddress, daxWindowSize, v86MemorySize } from "../../src/machine/attach.ts";

const MiB = 1 << 20;

describe("DAX window placement", () => {
  it("sizes windows in MiB, powers of two from 16 to 512", () => {
    expect(daxWindowSize(16)).toBe(16 * MiB);
    expect(daxWindowSize(512)).toBe(512 * MiB);
    for (const bad of [0, 2, 8, 3, 48, 1024, 2.5, -16, NaN]) expect(() => daxWindowSize(bad)).toThrow(RangeError);
  });

  it("sizes v86's memory as guest RAM with the windows stacked above it, each aligned to its size", () => {
    expect(v86MemorySize(256)).toBe(256 * MiB);
    expect(v86MemorySize(256, [128])).toBe(384 * MiB);
    expect(v86MemorySize(256, [64, 128])).toBe(448 * MiB);
    expect(v86MemorySize(200, [128])).toBe(384 * MiB); // the window starts at 256 MiB, aligned
    expect(v86MemorySize(96, [16, 16])).toBe(128 * MiB);
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

  it("carves windows from the top of v86's memory: where v86MemorySize left room, above the guest's RAM", () => {
    expect(place([128 * MiB], v86MemorySize(256, [128]))).toEqual([256 * MiB]);
    expect(place([64 * MiB, 128 * MiB], v86MemorySize(256, [64, 128]))).toEqual([384 * MiB, 256 * MiB]);
    expect(place([128 * MiB, 64 * MiB], v86MemorySize(256, [64, 128]))).toEqual([256 * MiB, 384 * MiB]);
    expect(place([16 * MiB, 16 * MiB, 16 * MiB], v86MemorySize(96, [16, 16, 16]))).toEqual([128 * MiB, 112 * MiB, 96 * MiB]);
  });

  it("fills a hole a detached window left", () => {
    expect(daxWindowAddress(16 * MiB, 512 * MiB, [[496 * MiB, 512 * MiB], [464 * MiB, 480 * MiB]])).toBe(480 * MiB);
  });

  it("leaves the guest at least 32 MiB of RAM below the windows", () => {
    expect(daxWindowAddress(32 * MiB, 64 * MiB, [])).toBe(32 * MiB);
    expect(daxWindowAddress(64 * MiB, 64 * MiB, [])).toBeUndefined();
    expect(daxWindowAddress(16 * MiB, 64 * MiB, [[32 * MiB, 64 * MiB]])).toBeUndefined();
  });
});

describe("mounting a share with a window", () => {
  it("adds dax=always, or dax=inode with a size line, unless the options choose a dax mode", () => {
    expect(shareMountOptions({ daxMiB: 64 })).toBe("dax=always");
    expect(shareMountOptions({ daxMiB: 64, daxInodeMinSize: 1 << 20 })).toBe("dax=inode");
    expect(shareMountOptions({ daxMiB: 64, mountOptions: "rootmode=040000" })).toBe("rootmode=040000,dax=always");
    expect(shareMountOptions({ daxMiB: 64, mountOptions: "dax=inode" })).toBe("dax=inode");
    expect(shareMountOptions({ daxMiB: 64, mountOptions: "dax=never" })).toBe("dax=never");
    expect(shareMountOptions({ mountOptions: "ro" })).toBe("ro");
    expect(shareMountOptions({})).toBeUndefined();
    expect(kernelCmdline({ nonce: "n", mode: { kind: "shell" }, mounts: [{ fstype: "virtiofs", tag: "share", dir: "/mnt", options: shareMountOptions({ daxMiB: 16 }) }] })).toContain(
      "vfsw.fs=share:/mnt:dax=always",
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
    expect(dax("--dax=16", "--memory", "1024")).toBe(16);
    expect(dax("--dax", "128")).toBe(128);
  });

  it.each([["--dax", "3"], ["--dax", "8"], ["--dax", "1024"], ["--dax=1"], ["--dax=lots"]])("rejects %s", (...args) => {
    expect(() => parseCli(["run", ...args])).toThrow(/--dax takes a power of two from 16 to 512 MiB/);
  });

  it("rejects RAM and window together beyond v86's 2 GiB of memory", () => {
    expect(() => parseCli(["run", "--memory", "1800", "--dax", "256"])).toThrow(/--memory 1800 --dax 256: .* need 2304 MiB of v86 memory; it has at most 2047/);
    expect(() => parseCli(["run", "--memory", "2048"])).toThrow(/--memory takes a whole number of MiB from 96 to 2047/);
    expect(dax("--memory", "1536", "--dax", "256")).toBe(256);
  });
});
