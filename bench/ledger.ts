// The request ledger: what each workload's timed part asks of the device, per opcode, and what the guest
// executes meanwhile. The timed part is bracketed by two LOOKUPs of names that do not exist
// (`.ledger-on-N`, `.ledger-off-N`, on the first virtio-fs share: unique, so no cache answers them);
// between them every share's FuseObserver counts requests by opcode, a tap on v86's virtio-9p counts 9P
// messages, and v86's instruction counter is read at both ends.
import type { V86 } from "v86";
import { fuseOpcodeName, type FuseObserver } from "../src/index.ts";

/** Requests per opcode name in one timed part, and the guest instructions it took. */
export interface LedgerEntry {
  requests: Record<string, number>;
  instructions: number;
}

const MARK = /^\.ledger-(on|off)-\d+$/;
const utf8 = new TextDecoder();

// 9P2000.L message names by T-message type (BuildReply gets the request's type; 6 for an Rlerror, which
// answers a request of any type: mostly Twalk of a name that is not there).
const NINEP_NAMES: Record<number, string> = {
  6: "Rlerror", 8: "Tstatfs", 12: "Tlopen", 14: "Tlcreate", 16: "Tsymlink", 18: "Tmknod", 20: "Trename", 22: "Treadlink",
  24: "Tgetattr", 26: "Tsetattr", 30: "Txattrwalk", 32: "Txattrcreate", 40: "Treaddir", 50: "Tfsync", 52: "Tlock",
  54: "Tgetlock", 70: "Tlink", 72: "Tmkdir", 74: "Trenameat", 76: "Tunlinkat", 100: "Tversion", 104: "Tattach",
  108: "Tflush", 110: "Twalk", 116: "Tread", 118: "Twrite", 120: "Tclunk", 122: "Tremove",
};

/** v86's virtio-9p device, as far as the tap needs it: every reply is built by BuildReply(type, tag, size). */
interface Virtio9p {
  BuildReply(type: number, tag: number, size: number): void;
}

export class Ledger {
  private seq = 0;
  private on = false;
  private counts = new Map<string, Map<string, number>>();
  private startInstructions = 0;
  private total = 0;
  private last = 0;
  private timer: ReturnType<typeof setInterval> | undefined;
  private emulator: V86 | undefined;
  private window: { counts: Map<string, Map<string, number>>; instructions: number } | undefined;

  /** The observer for the share serving `target` (by target id); `marks` for the share the markers go to. */
  observer(target: string, marks: boolean): FuseObserver {
    return {
      request: (t) => {
        const name = fuseOpcodeName(t.opcode) ?? `opcode ${t.opcode}`;
        if (marks && name === "FUSE_LOOKUP") {
          const m = MARK.exec(utf8.decode(t.args).replace(/\0[^]*$/, ""));
          if (m) return m[1] === "on" ? this.start() : this.stop();
        }
        if (this.on) this.count(target, name);
      },
      reply: () => {},
    };
  }

  /** Starts counting the guest's instructions and, if it has one, its virtio-9p messages (for `ninepTarget`). */
  attach(emulator: V86, ninepTarget?: string): void {
    this.emulator = emulator;
    this.last = emulator.get_instruction_counter();
    // The counter is 32 bits: sampled often enough that it never wraps twice between two samples.
    this.timer = setInterval(() => this.sample(), 20);
    const p9 = (emulator as unknown as { v86?: { cpu?: { devices?: { virtio_9p?: Virtio9p } } } }).v86?.cpu?.devices?.virtio_9p;
    if (p9 && ninepTarget) {
      const build = p9.BuildReply.bind(p9);
      p9.BuildReply = (type, tag, size) => {
        if (this.on) this.count(ninepTarget, NINEP_NAMES[type] ?? `type ${type}`);
        build(type, tag, size);
      };
    }
  }

  detach(): void {
    clearInterval(this.timer);
  }

  /** Shell lines that open and close the ledger's window around a timed part; `dir` is on the marked share. */
  brackets(dir: string): { open: string; close: string } {
    const n = ++this.seq;
    return { open: `[ -e ${dir}/.ledger-on-${n} ] || :`, close: `[ -e ${dir}/.ledger-off-${n} ] || :` };
  }

  /** The last window's counts for `target` (by id; none for a target that sent nothing), undefined if no window closed. */
  take(target: string): LedgerEntry | undefined {
    const w = this.window;
    this.window = undefined;
    return w && { requests: Object.fromEntries(w.counts.get(target) ?? []), instructions: w.instructions };
  }

  private count(target: string, name: string): void {
    let m = this.counts.get(target);
    if (!m) this.counts.set(target, (m = new Map()));
    m.set(name, (m.get(name) ?? 0) + 1);
  }

  private sample(): number {
    if (!this.emulator) return 0;
    const now = this.emulator.get_instruction_counter();
    this.total += (now - this.last) >>> 0;
    this.last = now;
    return this.total;
  }

  private start(): void {
    this.counts = new Map();
    this.startInstructions = this.sample();
    this.on = true;
  }

  private stop(): void {
    this.on = false;
    this.window = { counts: this.counts, instructions: this.sample() - this.startInstructions };
  }
}
