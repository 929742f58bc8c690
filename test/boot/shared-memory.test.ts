// v86 with its wasm memory shared: guest RAM is a SharedArrayBuffer, the JIT's modules link to it, and
// what JS stores in it the guest reads.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bootGuest, text, type Guest } from "../../src/node.ts";

describe("a guest on a shared wasm memory", () => {
  let guest: Guest;
  beforeAll(async () => {
    guest = await bootGuest({ sharedMemory: true });
  });
  afterAll(() => guest?.shutdown());

  it("runs i686 Linux with all of guest RAM in a SharedArrayBuffer", async () => {
    const r = await guest.run("uname -m");
    expect(text(r.stdout)).toBe("i686\n");
    const ram = guest.guestMemory();
    expect(ram.shared).toBe(true);
    expect(ram.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(ram.size).toBe(256 * 1024 * 1024);
    expect(ram.base + ram.size).toBeLessThanOrEqual(ram.buffer.byteLength);
  });

  it("runs JIT-compiled code linked to the shared memory", async () => {
    const before = guest.sharedJitModules;
    const n = 200_000;
    const r = await guest.run(`i=0; s=0; while [ $i -lt ${n} ]; do i=$((i + 1)); s=$(((s + i * i) % 1000003)); done; echo $s`);
    let s = 0;
    for (let i = 1; i <= n; i++) s = (s + i * i) % 1000003;
    expect(text(r.stdout)).toBe(`${s}\n`);
    expect(before).toBeGreaterThan(0); // booting compiles plenty
    expect(guest.sharedJitModules).toBeGreaterThan(before);
  });

  it("lets JS store into guest RAM through the shared buffer, and the guest reads it", async () => {
    // /dev/mem is not in the guest kernel (tinyconfig): find a tmpfs file's page-cache page by its content
    // instead. The marker is assembled in the guest so that the command line does not contain it.
    await guest.run("printf '%s%s' shared-memory-marker- 7c1e9a > /tmp/marker");
    const ram = guest.guestMemory();
    const bytes = Buffer.from(ram.buffer, ram.base, ram.size);
    const marker = Buffer.from("shared-memory-marker-7c1e9a");
    const found: number[] = [];
    for (let at = bytes.indexOf(marker); at >= 0; at = bytes.indexOf(marker, at + 1)) found.push(at);
    expect(found.length).toBeGreaterThan(0);
    // Copies in freed memory (printf's buffer) may match too: overwrite every one.
    for (const at of found) bytes.write("SHARED", at + marker.length - 6);
    const r = await guest.run("cat /tmp/marker");
    expect(text(r.stdout)).toBe("shared-memory-marker-SHARED");
  });
});

describe("a guest with shared memory turned off", () => {
  it("boots on v86's own unshared memory and says so", async () => {
    const guest = await bootGuest({ sharedMemory: false });
    try {
      expect(text((await guest.run("uname -m")).stdout)).toBe("i686\n");
      const ram = guest.guestMemory();
      expect(ram.shared).toBe(false);
      expect(ram.buffer).not.toBeInstanceOf(SharedArrayBuffer);
      expect(guest.sharedJitModules).toBe(0);
    } finally {
      await guest.shutdown();
    }
  });
});
