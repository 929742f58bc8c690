import { describe, expect, it } from "vitest";
import { ConsoleFrames } from "../../src/machine/console-frames.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

function collect(nonce: string) {
  const log: string[] = [];
  const out: string[] = [];
  const frames = new ConsoleFrames(nonce, {
    console: (b) => log.push(`console:${dec(b)}`),
    ready: (up) => log.push(`ready:${up}`),
    stdout: (b) => out.push(dec(b)),
    end: (err, status) => log.push(`end:${status}:${dec(err)}`),
    halt: () => log.push("halt"),
    fail: (reason) => log.push(`fail:${reason}`),
  });
  return { frames, log, out };
}

describe("ConsoleFrames", () => {
  const stream = "boot log\nN1:ready:1.25\nN1:out\nline1\nno newline at endN1:err\noops\nN1:end:3\nN1:halt\n";

  it("splits console, stdout, stderr and status from one chunk", () => {
    const { frames, log, out } = collect("N1");
    frames.push(enc(stream));
    expect(log).toEqual(["console:boot log\n", "ready:1.25", "end:3:oops\n", "halt"]);
    expect(out.join("")).toBe("line1\nno newline at end");
  });

  it("gives the same result when the stream arrives a byte at a time", () => {
    const { frames, log, out } = collect("N1");
    for (const b of enc(stream)) frames.push(Uint8Array.of(b));
    expect(log.filter((l) => !l.startsWith("console:"))).toEqual(["ready:1.25", "end:3:oops\n", "halt"]);
    expect(log.filter((l) => l.startsWith("console:")).map((l) => l.slice(8)).join("")).toBe("boot log\n");
    expect(out.join("")).toBe("line1\nno newline at end");
  });

  it("passes a failure's whole reason, colons and all, without the tty's \\r", () => {
    const { frames, log } = collect("N1");
    frames.push(enc("init: x\r\nN1:fail:mounting share on /mnt failed: Invalid argument (virtiofs)\r\nN1:halt\r\n"));
    expect(log).toEqual(["console:init: x\r\n", "fail:mounting share on /mnt failed: Invalid argument (virtiofs)", "halt"]);
  });

  it("streams stdout before the frame ends, holding back only a possible marker prefix", () => {
    const { frames, out } = collect("NONCE");
    frames.push(enc("NONCE:out\nhello world NON"));
    expect(out.join("")).toBe("hello world ");
    frames.push(enc("SENSE"));
    expect(out.join("")).toBe("hello world NONSENSE");
    frames.push(enc("!NONCE:err\nNONCE:end:0\n"));
    expect(out.join("")).toBe("hello world NONSENSE!");
  });

  it("passes bytes that merely resemble another nonce's markers through as data", () => {
    const { frames, log, out } = collect("N1");
    frames.push(enc("N1:out\nN2:end:9\n\u0000\xff\nN1:err\nN1:end:0\n"));
    expect(out.join("")).toBe("N2:end:9\n\u0000\xff\n");
    expect(log).toEqual(["end:0:"]);
  });
});
