import { describe, expect, it } from "vitest";
import { CmdlineError, COMMAND_LINE_SIZE, kernelCmdline, randomNonce } from "../../src/machine/cmdline.ts";

describe("kernelCmdline", () => {
  it("names mounts, mode and nonce for guest/init", () => {
    const line = kernelCmdline({
      nonce: "n0",
      mode: { kind: "agent" },
      mounts: [
        { fstype: "virtiofs", tag: "share", dir: "/mnt" },
        { fstype: "9p", tag: "host9p", dir: "/mnt9p", options: "cache=loose,msize=512000" },
      ],
      append: "loglevel=7",
    });
    expect(line.split(" ")).toEqual(
      expect.arrayContaining(["console=ttyS0", "vfsw.nonce=n0", "vfsw.fs=share:/mnt", "vfsw.9p=host9p:/mnt9p:cache=loose,msize=512000", "vfsw.agent"]),
    );
    expect(line.endsWith(" loglevel=7")).toBe(true);
  });

  it("carries an exec command as base64 of its UTF-8 bytes", () => {
    const cmd = "echo 'ünïcode' \"$HOME\" | wc -c";
    const line = kernelCmdline({ nonce: "n", mode: { kind: "exec", command: cmd } });
    const b64 = /vfsw\.exec=(\S+)/.exec(line)?.[1] ?? "";
    expect(Buffer.from(b64, "base64").toString("utf8")).toBe(cmd);
  });

  it("rejects a line the kernel would truncate", () => {
    expect(() => kernelCmdline({ nonce: "n", mode: { kind: "exec", command: "x".repeat(COMMAND_LINE_SIZE) } })).toThrow(CmdlineError);
  });

  it("rejects tags and mount points that would break the parameter syntax", () => {
    expect(() => kernelCmdline({ nonce: "n", mode: { kind: "shell" }, mounts: [{ fstype: "virtiofs", tag: "a b", dir: "/mnt" }] })).toThrow(/spaces/);
    expect(() => kernelCmdline({ nonce: "n", mode: { kind: "shell" }, mounts: [{ fstype: "virtiofs", tag: "t", dir: "/m:x" }] })).toThrow(CmdlineError);
  });

  it("makes a mount on / the root, once", () => {
    const line = kernelCmdline({ nonce: "n", mode: { kind: "agent" }, mounts: [{ fstype: "virtiofs", tag: "root", dir: "/", options: "dax=always" }, { fstype: "virtiofs", tag: "share", dir: "/mnt" }] });
    expect(line.split(" ")).toEqual(expect.arrayContaining(["vfsw.root=root:dax=always", "vfsw.fs=share:/mnt"]));
    expect(line).not.toContain("vfsw.fs=root");
    const root = { fstype: "virtiofs" as const, tag: "a", dir: "/" };
    expect(() => kernelCmdline({ nonce: "n", mode: { kind: "shell" }, mounts: [root, { ...root, tag: "b" }] })).toThrow(/one root/);
    expect(() => kernelCmdline({ nonce: "n", mode: { kind: "shell" }, mounts: [{ fstype: "9p", tag: "h", dir: "/" }, root] })).toThrow(/one root/);
    expect(kernelCmdline({ nonce: "n", mode: { kind: "shell" }, mounts: [{ fstype: "9p", tag: "host9p", dir: "/", options: "cache=loose" }] })).toContain(" vfsw.root9p=host9p:cache=loose");
  });

  it("makes a fresh nonce each time", () => {
    const a = randomNonce();
    expect(a).toMatch(/^vfsw[0-9a-f]{16}$/);
    expect(randomNonce()).not.toBe(a);
  });
});
