// The benchmarks' request ledger (bench/ledger.ts): counts only between its two marker LOOKUPs, never the
// markers, per share and per 9P message type, and guest instructions across the 32-bit counter's wrap.
import { afterEach, describe, expect, it, vi } from "vitest";
import type { V86 } from "v86";
import { FuseOpcode, type RequestTrace } from "../../src/index.ts";
import { Ledger } from "../../bench/ledger.ts";

const enc = new TextEncoder();
const trace = (opcode: number, name = ""): RequestTrace => ({ queue: 1, opcode, unique: 1n, nodeid: 1n, header: new Uint8Array(40), args: enc.encode(`${name}\0`), chain: [] });

/** An emulator with an instruction counter the test moves, and a virtio-9p device whose replies are recorded. */
function fakeEmulator() {
  let counter = 0;
  const built: number[] = [];
  const virtio_9p = { BuildReply: (type: number, _tag: number, _size: number) => void built.push(type) };
  const emulator = { get_instruction_counter: () => counter, v86: { cpu: { devices: { virtio_9p } } } } as unknown as V86;
  return { emulator, virtio_9p, built, set: (n: number) => (counter = n >>> 0) };
}

describe("the request ledger", () => {
  afterEach(() => vi.useRealTimers());

  const markName = (line: string) => /\/(\.ledger-[a-z]+-\d+) \]/.exec(line)![1]!;

  it("counts each share's requests and the 9P messages between the markers, and no marker", () => {
    vi.useFakeTimers();
    const ledger = new Ledger();
    const { emulator, virtio_9p, built } = fakeEmulator();
    ledger.attach(emulator, "9p");
    const marked = ledger.observer("never", true);
    const other = ledger.observer("auto", false);
    const window = (during: () => void) => {
      const { open, close } = ledger.brackets("/b/vfs-never");
      other.request(trace(FuseOpcode.FUSE_READ)); // before the window
      marked.request(trace(FuseOpcode.FUSE_LOOKUP, markName(open)));
      during();
      marked.request(trace(FuseOpcode.FUSE_LOOKUP, markName(close)));
      other.request(trace(FuseOpcode.FUSE_READ)); // after it
    };
    const during = () => {
      marked.request(trace(FuseOpcode.FUSE_LOOKUP, "f"));
      marked.request(trace(FuseOpcode.FUSE_GETATTR));
      other.request(trace(FuseOpcode.FUSE_READ));
      other.request(trace(FuseOpcode.FUSE_LOOKUP, markName(ledger.brackets("/x").open))); // a marker's name, but not on the marked share
      virtio_9p.BuildReply(110, 1, 0); // Twalk
      virtio_9p.BuildReply(6, 2, 4); // an error reply
    };
    window(during);
    expect(ledger.take("never")?.requests).toEqual({ FUSE_LOOKUP: 1, FUSE_GETATTR: 1 });
    expect(ledger.take("never")).toBeUndefined(); // a window is taken once
    window(during);
    expect(ledger.take("auto")?.requests).toEqual({ FUSE_READ: 1, FUSE_LOOKUP: 1 });
    window(during);
    expect(ledger.take("9p")?.requests).toEqual({ Twalk: 1, Rlerror: 1 });
    window(() => {});
    expect(ledger.take("tmpfs")).toEqual({ requests: {}, instructions: 0 });
    expect(built).toEqual([110, 6, 110, 6, 110, 6]); // the device still builds its replies
    ledger.detach();
  });

  it("adds up guest instructions across the 32-bit counter's wrap", () => {
    vi.useFakeTimers();
    const ledger = new Ledger();
    const fake = fakeEmulator();
    fake.set(2 ** 32 - 1000);
    ledger.attach(fake.emulator);
    const marked = ledger.observer("never", true);
    const { open, close } = ledger.brackets("/d");
    marked.request(trace(FuseOpcode.FUSE_LOOKUP, markName(open)));
    // 5 billion instructions in steps the sampler sees, the counter wrapping on the way.
    for (let i = 1; i <= 5; i++) {
      fake.set(2 ** 32 - 1000 + i * 1e9);
      vi.advanceTimersByTime(20);
    }
    fake.set(2 ** 32 - 1000 + 5e9 + 7);
    marked.request(trace(FuseOpcode.FUSE_LOOKUP, markName(close)));
    expect(ledger.take("never")?.instructions).toBe(5e9 + 7);
    ledger.detach();
  });
});
