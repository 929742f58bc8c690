// attachVirtioFs as an embedder uses it: on a plain V86, more than once, with wrong options, across a
// guest reboot, detached again, and saved beside v86's own state.
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { Volume } from "memfs";
import { V86 } from "v86";
import { encodeState } from "../../src/vfs/state.ts";
import { attachVirtioFs, v86MemorySize, bootGuest, createSampleTree, MemFs, nodeRuntime, StateError, text, type Guest, type VirtioFsAttachment } from "../../src/node.ts";

/** A V86 that has not run: what an embedder has right after `new V86({ autostart: false })`, with room for two windows. */
async function freshEmulator(memorySize = v86MemorySize(128, [256, 128])): Promise<V86> {
  const { images, wasmPath } = await nodeRuntime();
  return new V86({ wasm_path: wasmPath, memory_size: memorySize, vga_memory_size: 2 << 20, bios: { buffer: images["bios.bin"] }, autostart: false, disable_keyboard: true, disable_mouse: true, disable_speaker: true });
}

const sh = async (guest: Guest, script: string): Promise<string> => {
  const r = await guest.run(script);
  if (r.status !== 0) throw new Error(`${script}: exit ${r.status}: ${text(r.stderr)}`);
  return text(r.stdout);
};

describe("attachVirtioFs on a V86 that has not run", () => {
  let emulator: V86;
  beforeAll(async () => {
    emulator = await freshEmulator();
  });
  afterAll(() => emulator?.destroy());

  it("waits for emulator-loaded when called right after new V86, and may be called again", async () => {
    const first = await attachVirtioFs(emulator, { tag: "one", fs: new MemFs() });
    const second = await attachVirtioFs(emulator, [{ tag: "two", fs: new MemFs() }]);
    expect(first.shares.map((s) => s.tag)).toEqual(["one"]);
    expect(second.shares.map((s) => s.tag)).toEqual(["two"]);
    await first.detach();
    await second.detach();
  });

  it.each([
    [{ tag: "" }, /^shares\[0\]\.tag: /],
    [{ tag: "x".repeat(37) }, /^shares\[0\]\.tag: 1 to 36 bytes/],
    [{ daxMiB: 3 }, /^shares\[0\]\.daxMiB: a DAX window is a power of two/],
    [{ cache: "sometimes" }, /^shares\[0\]\.cache: one of never, metadata, auto, always/],
    [{ locks: "kernel" }, /^shares\[0\]\.locks: one of guest, device, auto/],
    [{ numRequestQueues: 0 }, /^shares\[0\]\.numRequestQueues: /],
    [{ daxInodeMinSize: 4096 }, /^shares\[0\]\.daxInodeMinSize: chooses files for a DAX window, and the share has no daxMiB/],
    [{ daxMiB: 16, daxInodeMinSize: -1 }, /^shares\[0\]\.daxInodeMinSize: a whole number of bytes, not -1/],
    [{ fs: {} }, /^shares\[0\]\.fs: not a FileSystem/],
  ])("throws an Error naming the field for %j", async (wrong, message) => {
    await expect(attachVirtioFs(emulator, { tag: "ok", fs: new MemFs(), ...(wrong as object) })).rejects.toThrow(message);
  });

  it("refuses a tag already attached, and frees it on detach", async () => {
    const a = await attachVirtioFs(emulator, { tag: "dup", fs: new MemFs() });
    await expect(attachVirtioFs(emulator, [{ tag: "other", fs: new MemFs() }, { tag: "dup", fs: new MemFs() }])).rejects.toThrow(/^shares\[1\]\.tag: "dup" is already attached/);
    await a.detach();
    await (await attachVirtioFs(emulator, { tag: "dup", fs: new MemFs() })).detach();
  });

  it("places windows across calls at the top of v86's memory, says when there is no room, and reuses a detached window's place", async () => {
    const cmosRamMiB = () => {
      const cmos = (emulator as unknown as { v86: { cpu: { devices: { rtc: { cmos_data: Uint8Array } } } } }).v86.cpu.devices.rtc.cmos_data;
      return ((cmos[0x34]! | (cmos[0x35]! << 8)) >> 4) + 16; // 64 KiB blocks above 16 MiB, as SeaBIOS reads them
    };
    const big = await attachVirtioFs(emulator, { tag: "w1", fs: new MemFs(), daxMiB: 256 });
    const mid = await attachVirtioFs(emulator, { tag: "w2", fs: new MemFs(), daxMiB: 128 });
    // 640 MiB of v86 memory: the 256 MiB window at 256 MiB, the 128 MiB one above it, and RAM below both.
    expect(cmosRamMiB()).toBe(256);
    await expect(attachVirtioFs(emulator, { tag: "w3", fs: new MemFs(), daxMiB: 256 })).rejects.toThrow(/^shares\[0\]\.daxMiB: no room for a 256 MiB DAX window in v86's 640 MiB of memory/);
    await big.detach();
    expect(cmosRamMiB()).toBe(512);
    const again = await attachVirtioFs(emulator, { tag: "w3", fs: new MemFs(), daxMiB: 256 });
    expect(again.shares[0]!.window?.size).toBe(256 << 20);
    expect(cmosRamMiB()).toBe(256);
    await Promise.all([mid.detach(), again.detach()]);
    expect(cmosRamMiB()).toBe(640);
  });
});

describe("devices from several attach calls in a booted guest", () => {
  let guest: Guest;
  let second: VirtioFsAttachment;
  const secondFs = new MemFs();
  beforeAll(async () => {
    const sample = new MemFs();
    await createSampleTree(sample);
    guest = await bootGuest({
      shares: [{ tag: "share", fs: sample, mountPoint: "/mnt" }],
      mounts: [{ fstype: "virtiofs", tag: "second", dir: "/second" }],
      beforeRun: async (emulator) => {
        second = await attachVirtioFs(emulator, { tag: "second", fs: secondFs });
        // Attached and taken off again before the guest ever saw it.
        await (await attachVirtioFs(emulator, { tag: "gone", fs: new MemFs() })).detach();
      },
    });
  });
  afterAll(() => guest?.shutdown());

  it("mounts the devices of both calls and not the detached one", async () => {
    expect(await sh(guest, "grep virtiofs /proc/mounts | cut -d' ' -f1,2")).toBe("share /mnt\nsecond /second\n");
    expect(await sh(guest, "ls /sys/bus/virtio/drivers/virtiofs | grep -c virtio")).toBe("2\n");
    expect((await guest.run("mkdir -p /x && mount -t virtiofs gone /x")).status).not.toBe(0);
  });

  it("refuses to attach to an emulator that has run", async () => {
    await expect(attachVirtioFs(guest.emulator, { tag: "late", fs: new MemFs() })).rejects.toThrow(/has already run/);
  });

  it("resets every attached device when the guest reboots, and both work after it", async () => {
    await sh(guest, "echo before > /second/f; cat /mnt/hello.txt > /dev/null");
    // A reset as the machine reboots, not only when the next kernel probes: requests still in flight must
    // never complete into memory the BIOS and the next kernel own (the device test shows reset drops them).
    const resets = [...guest.shares, ...second.shares].map((s) => vi.spyOn(s.device, "reset"));
    await guest.reboot();
    for (const spy of resets) expect(spy).toHaveBeenCalledTimes(1);
    expect(await sh(guest, "cat /second/f; cat /mnt/hello.txt")).toBe("before\nHello from the browser!\n");
    expect(await sh(guest, "dmesg | grep -ci 'virtio.*err' || true")).toBe("0\n");
  });

  it("detach() ends the device's session: every inode reference goes back to the backend", async () => {
    await sh(guest, "ls -R /second > /dev/null");
    expect(second.shares[0]!.server.nodeCount).toBeGreaterThan(1);
    await second.detach();
    expect(second.shares[0]!.server.nodeCount).toBe(1);
  });

  it("Guest.shutdown() ends the sessions of the devices it attached", async () => {
    await sh(guest, "ls -R /mnt > /dev/null");
    expect(guest.shares[0]!.server.nodeCount).toBeGreaterThan(1);
    await guest.shutdown();
    expect(guest.shares[0]!.server.nodeCount).toBe(1);
  });
});

describe("an embedder's snapshot: attachment.saveState beside v86's save_state", () => {
  it("resumes the device, its session and its tree in a new V86: a file held open keeps its offset", { timeout: 600_000 }, async () => {
    let attachment: VirtioFsAttachment | undefined;
    let console1 = "";
    const guest = await bootGuest({
      interactive: true,
      mounts: [{ fstype: "virtiofs", tag: "emb", dir: "/emb" }],
      onConsole: (b) => (console1 += text(b)),
      beforeRun: async (emulator) => {
        attachment = await attachVirtioFs(emulator, { tag: "emb", fs: new MemFs() });
      },
    });
    guest.send("mkdir /emb/d && echo kept > /emb/d/f && exec 3>/emb/held && echo one >&3 && echo emb-$((6*7))\n");
    await until(() => console1, "emb-42");

    guest.emulator.stop();
    const state = await attachment!.saveState();
    const v86State = await guest.emulator.save_state();
    await guest.shutdown();

    const vol = new Volume();
    const again = await freshEmulator(v86MemorySize(256));
    let console2 = "";
    again.add_listener("serial0-output-byte", (b: number) => (console2 += String.fromCharCode(b)));
    try {
      const restored = await attachVirtioFs(again, { tag: "emb", fs: new MemFs(vol) });
      await again.restore_state(v86State);
      await restored.restoreState(state);
      void again.run();
      again.serial0_send("echo two >&3; exec 3>&-; cat /emb/d/f; echo emb-$((6*8))\n");
      await until(() => console2, "emb-48");
      expect(console2).toContain("kept\r\n");
      expect(String(vol.readFileSync("/held"))).toBe("one\ntwo\n");
    } finally {
      again.destroy();
    }
  });

  it("refuses state that does not fit the attached shares", async () => {
    const emulator = await freshEmulator();
    try {
      const attachment = await attachVirtioFs(emulator, { tag: "emb", fs: new MemFs() });
      await expect(attachment.restoreState(new Uint8Array([1, 2, 3]))).rejects.toThrow(StateError);
      await expect(attachment.restoreState(encodeState([]))).rejects.toThrow(/holds 0 shares; 1 are attached/);
    } finally {
      emulator.destroy();
    }
  });
});

/** Waits until `read()` holds `mark` (a command's output on the console). */
async function until(read: () => string, mark: string): Promise<void> {
  for (const end = Date.now() + 120_000; !read().includes(mark); await new Promise((r) => setTimeout(r, 50))) {
    if (Date.now() > end) throw new Error(`no ${mark} on the console:\n${read().slice(-2000)}`);
  }
}
