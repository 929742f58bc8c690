// "How it works", its first story (stories.ts has the others): one `cat /mnt/hello.txt` step by step, each
// step lit as its request shows up in the inspector's stream, with the values it carried. The kernel's
// caches decide what is seen: a name looked up within the cache time sends no LOOKUP, pages already cached
// no READ.
import type { TraceEvent } from "./trace.ts";

type Step = "syscall" | "lookup" | "open" | "read" | "release" | "irq";

const FILE = "hello.txt";

export class Walkthrough {
  /** The node id of hello.txt's OPEN: a later OPEN of it without a LOOKUP starts a new run. */
  private nodeid: number | undefined;
  /** Between the LOOKUP and the OPEN (or, with zero-message open, the READ) that follows it. */
  private awaitingOpen = false;
  /** This run's open sent no OPEN (zero-message open), so its close sends no RELEASE. */
  private zeroOpen = false;
  /** This run's requests, for their replies (which may come in a later batch) to find their step. */
  private readonly seen = new Map<number, { step: Step; detail: string }>();

  constructor(
    private readonly root: HTMLElement,
    runCommand: (command: string) => void,
  ) {
    root.querySelector("#btn-run-cat")!.addEventListener("click", () => runCommand(`sync; echo 3 > /proc/sys/vm/drop_caches; cat /mnt/${FILE}\n`));
  }

  observe(events: TraceEvent[]): void {
    for (const e of events) {
      const earlier = this.seen.get(e.unique);
      if (earlier) {
        if (e.reply) this.reply(earlier.step, earlier.detail, e);
        continue;
      }
      const step = this.classify(e);
      if (!step) continue;
      const detail = this.detail(step, e);
      this.seen.set(e.unique, { step, detail });
      for (const li of this.items()) li.classList.toggle("lit", li.dataset.step === step);
      this.item(step).classList.add("done");
      this.item(step).scrollIntoView({ block: "nearest" });
      this.mark(step, detail);
      if (e.reply) this.reply(step, detail, e);
    }
  }

  /** Which step `e` is, starting a new run where it begins one. */
  private classify(e: TraceEvent): Step | undefined {
    if (e.op === "FUSE_LOOKUP" && e.nodeid === 1 && e.args.name === FILE) {
      this.begin();
      this.awaitingOpen = true;
      return "lookup";
    }
    if (e.op === "FUSE_OPEN" && (this.awaitingOpen || e.nodeid === this.nodeid)) {
      if (!this.awaitingOpen) {
        this.begin();
        this.mark("lookup", "cached: no request this time");
      }
      this.awaitingOpen = false;
      this.nodeid = e.nodeid;
      return "open";
    }
    // Zero-message open: after the LOOKUP, the first request on a node is its READ (or its FLUSH).
    if (this.awaitingOpen && (e.op === "FUSE_READ" || e.op === "FUSE_FLUSH")) {
      this.awaitingOpen = false;
      this.zeroOpen = true;
      this.nodeid = e.nodeid;
      this.item("open").classList.add("done");
      this.mark("open", "no request: zero-message open, fh 0");
    }
    if (e.nodeid !== this.nodeid) return undefined;
    if (e.op === "FUSE_READ") return "read";
    if (e.op === "FUSE_FLUSH" || e.op === "FUSE_RELEASE") return "release";
    return undefined;
  }

  private detail(step: Step, e: TraceEvent): string {
    switch (step) {
      case "lookup":
        return `unique ${e.unique}`;
      case "open":
        return `nodeid ${e.nodeid} · ${e.args.flags}`;
      case "read":
        return `fh ${e.args.fh} · offset ${e.args.offset} · size ${e.args.size}`;
      default:
        return `${e.op.replace("FUSE_", "")} · fh ${e.args.fh}`;
    }
  }

  private reply(step: Step, detail: string, e: TraceEvent): void {
    this.mark(step, `${detail} → ${e.reply!.errno}, ${e.reply!.bytes} bytes in ${e.reply!.ms.toFixed(2)} ms`);
    this.item("irq").classList.add("done"); // every reply comes back with an interrupt
    // A close after zero-message open sends no RELEASE, and no FLUSH where the device has nothing to
    // flush (it answered the first with ENOSYS): the READ's reply is the last request of the run.
    const zeroClose = step === "read" && this.zeroOpen;
    if (zeroClose && !this.item("release").classList.contains("done")) {
      this.item("release").classList.add("done");
      this.mark("release", "no request so far: no RELEASE after zero-message open, and FLUSH only where there is something to flush");
    }
    if (zeroClose || e.op === "FUSE_RELEASE") {
      this.item("irq").classList.add("lit");
      this.item("read").classList.remove("lit");
      this.item("release").classList.remove("lit");
    }
  }

  private begin(): void {
    this.seen.clear();
    this.zeroOpen = false;
    for (const li of this.items()) {
      li.classList.remove("lit", "done");
      li.querySelector(".live")?.replaceChildren();
    }
    this.item("syscall").classList.add("done");
  }

  private mark(step: Step, text: string): void {
    const live = this.item(step).querySelector(".live");
    if (live) live.textContent = text;
  }

  private item(step: Step): HTMLElement {
    return this.root.querySelector<HTMLElement>(`li[data-step="${step}"]`)!;
  }

  private items(): NodeListOf<HTMLElement> {
    return this.root.querySelectorAll<HTMLElement>("li[data-step]");
  }
}
