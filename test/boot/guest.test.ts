import { execFile, spawn } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bootGuest, MemFs, text, type Guest } from "../../src/node.ts";

describe("the guest in v86 under Node", () => {
  let guest: Guest;
  beforeAll(async () => {
    guest = await bootGuest({ shares: [{ tag: "share", fs: new MemFs(), mountPoint: "/mnt" }] });
  });
  afterAll(() => guest?.shutdown());

  it("reaches init and reports its uptime", () => {
    expect(guest.uptimeAtReady).toBeGreaterThan(0);
    expect(guest.uptimeAtReady).toBeLessThan(30);
  });

  it("runs i686 Linux 6.1", async () => {
    const r = await guest.run("uname -m; uname -r");
    expect(r.status).toBe(0);
    expect(text(r.stdout)).toMatch(/^i686\n6\.1\.\d+/);
  });

  it("has the virtio-fs driver loaded by /init, by the device's modalias", async () => {
    const r = await guest.run("cat /proc/filesystems; echo; cat /proc/modules; cat /sys/bus/virtio/devices/*/modalias");
    expect(text(r.stdout)).toMatch(/^virtio:d0000001Av00001AF4$/m); // device id 26: virtio-fs
    expect(text(r.stdout)).toMatch(/^nodev\tvirtiofs$/m);
    expect(text(r.stdout)).toMatch(/^nodev\t9p$/m);
    expect(text(r.stdout)).toMatch(/^virtiofs /m);
    expect(text(r.stdout)).toMatch(/^fuse /m);
  });

  it("reads ahead one READ's worth (1 MiB) on a virtio-fs mount, and lets it hold all of the dirty threshold", async () => {
    const r = await guest.run("while read -r _ _ mm _ mp _; do [ \"$mp\" = /mnt ] && cat /sys/class/bdi/$mm/read_ahead_kb /sys/class/bdi/$mm/max_ratio; done < /proc/self/mountinfo");
    expect(text(r.stdout)).toBe("1024\n100\n");
  });

  it("has its CRNG seeded at boot (from v86's RDRAND): the first getrandom() does not wait for jitter entropy", async () => {
    // Linux 6.1 reports the bits credited to its input pool, up to the 256 that make the CRNG ready.
    const r = await guest.run("dmesg | grep -c 'crng init done'; cat /proc/sys/kernel/random/entropy_avail");
    expect(text(r.stdout)).toBe("1\n256\n");
  });

  it("returns a failing command's exit status and its stderr apart from stdout", async () => {
    const r = await guest.run("echo out; echo err >&2; exit 3");
    expect(r.status).toBe(3);
    expect(text(r.stdout)).toBe("out\n");
    expect(text(r.stderr)).toBe("err\n");
  });

  it("passes stdout through byte for byte", async () => {
    const r = await guest.run("printf 'a\\r\\nb\\n\\001\\377no-newline'");
    expect(Array.from(r.stdout)).toEqual([0x61, 0x0d, 0x0a, 0x62, 0x0a, 0x01, 0xff, ...Buffer.from("no-newline")]);
  });

  it("takes a script longer than a tty line", async () => {
    const script = Array.from({ length: 300 }, (_, i) => `echo line${i}`).join("\n");
    const r = await guest.run(script);
    expect(text(r.stdout).split("\n")).toHaveLength(301);
    expect(text(r.stdout)).toContain("line299\n");
  });
});

describe("virtiofs-web run --exec", () => {
  const bin = new URL("../../bin/virtiofs-web.js", import.meta.url).pathname;
  const run = async (...args: string[]) => {
    try {
      const { stdout } = await promisify(execFile)(process.execPath, [bin, "run", ...args]);
      return { code: 0, stdout };
    } catch (e) {
      return e as { code: number; stdout: string };
    }
  };

  it("prints only the command's output and exits 0", async () => {
    expect(await run("--exec", "uname -m")).toEqual({ code: 0, stdout: "i686\n" });
  });

  it("exits with the command's status", async () => {
    expect((await run("--exec", "exit 3")).code).toBe(3);
  });
});

describe("virtiofs-web run (interactive console)", () => {
  it("keeps working across a guest reboot: the share is mounted again", async () => {
    const bin = new URL("../../bin/virtiofs-web.js", import.meta.url).pathname;
    const cli = spawn(process.execPath, [bin, "run"], { stdio: ["pipe", "pipe", "inherit"] });
    let out = "";
    cli.stdout.on("data", (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((resolve) => cli.on("exit", resolve));
    /** Waits until the console shows `pattern` after what was seen so far. */
    let seen = 0;
    const expectOutput = async (pattern: RegExp) => {
      for (let waited = 0; waited < 120_000; waited += 100) {
        const m = pattern.exec(out.slice(seen));
        if (m) {
          seen += m.index + m[0].length;
          return;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`no ${pattern} in the console:\n${out.slice(seen)}`);
    };
    try {
      await expectOutput(/~ # /);
      cli.stdin.write("reboot -f\n");
      await expectOutput(/~ # /); // the prompt of the next boot
      cli.stdin.write("cat /mnt/hello.txt; grep -c ' /mnt virtiofs' /proc/mounts\n");
      await expectOutput(/Hello from the browser!\r?\n1\r?\n/);
      cli.stdin.write("\x01x"); // Ctrl-A x quits
      expect(await exited).toBe(0);
    } finally {
      cli.kill();
    }
  });
});
