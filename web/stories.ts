// More stories for "How it works", beside the cat (walkthrough.ts): a write made durable with fsync, and a
// read through the DAX window. A run starts when its button types the command; each step lights as a
// request of its opcode crosses the device, with what it carried and what came back. Steps the guest's
// caches make unnecessary stay dark.
import type { TraceEvent } from "./trace.ts";

interface Step {
  /** The step's li[data-step]. */
  step: string;
  /** fuse.h's opcode that makes the step, and which of its requests. */
  op: string;
  match?(e: TraceEvent): boolean;
  /** A step that sends nothing: marked with `quiet` once the step `after` has its reply. */
  after?: string;
  quiet?: string;
}

interface Story {
  command: string;
  /** Only with the DAX window on. */
  dax?: boolean;
  steps: Step[];
}

const NOTE = "note.txt";

const STORIES: Record<string, Story> = {
  write: {
    command: `rm -f /mnt/${NOTE}; echo hello > /mnt/${NOTE}; sync /mnt/${NOTE}; cat /mnt/${NOTE}\n`,
    steps: [
      { step: "w-create", op: "FUSE_CREATE", match: (e) => e.args.name === NOTE },
      { step: "w-xattr", op: "FUSE_GETXATTR", match: (e) => e.args.name === "security.capability" },
      { step: "w-write", op: "FUSE_WRITE" },
      { step: "w-close", op: "FUSE_FLUSH" },
      { step: "w-close", op: "FUSE_RELEASE" },
      { step: "w-fsync", op: "FUSE_FSYNC" },
    ],
  },
  dax: {
    command: "echo 3 > /proc/sys/vm/drop_caches; cat /mnt/hello.txt\n",
    dax: true,
    steps: [
      { step: "d-remove", op: "FUSE_REMOVEMAPPING" },
      { step: "d-lookup", op: "FUSE_LOOKUP", match: (e) => e.args.name === "hello.txt" },
      { step: "d-map", op: "FUSE_SETUPMAPPING" },
      { step: "d-load", op: "FUSE_READ", after: "d-map", quiet: "no FUSE_READ: the guest's loads read the file's bytes straight from the window" },
    ],
  },
};

export class Stories {
  private story: Story | undefined;
  /** The running story's section of the page. */
  private section: HTMLElement | undefined;
  /** This run's requests and their steps, for replies to find them. */
  private readonly seen = new Map<string, Step>();

  constructor(
    root: HTMLElement,
    run: (command: string) => void,
    daxOn: () => boolean,
  ) {
    for (const button of root.querySelectorAll<HTMLButtonElement>("button[data-story]")) {
      const story = STORIES[button.dataset.story!]!;
      const section = button.closest("section")!;
      button.addEventListener("click", () => {
        const note = section.querySelector(".story-note")!;
        if (story.dax && !daxOn()) {
          note.textContent = "tick “DAX window” above first: the guest restarts with the share mounted -o dax=always";
          return;
        }
        note.textContent = "";
        this.begin(story, section);
        run(story.command);
      });
    }
  }

  observe(events: TraceEvent[]): void {
    if (!this.story) return;
    for (const e of events) {
      if (e.guest !== 0) continue;
      const k = `${e.guest}:${e.seq}`;
      const step = this.seen.get(k) ?? this.story.steps.find((s) => s.op === e.op && (!s.match || s.match(e)));
      if (!step) continue;
      if (!this.seen.has(k)) {
        this.seen.set(k, step);
        for (const li of this.items()) li.classList.toggle("lit", li.dataset.step === step.step);
        this.item(step.step)?.classList.add("done");
        this.item(step.step)?.scrollIntoView({ block: "nearest" });
      }
      const r = e.reply;
      this.mark(step.step, `${e.op.replace("FUSE_", "")} ${e.text}${r ? ` → ${r.errno}, ${r.bytes} bytes in ${r.ms.toFixed(2)} ms` : ""}`);
      if (r?.error !== 0) continue;
      for (const quiet of this.story.steps.filter((s) => s.after === step.step && !this.item(s.step)?.classList.contains("done"))) {
        this.item(quiet.step)?.classList.add("done");
        this.mark(quiet.step, quiet.quiet!);
      }
    }
  }

  private begin(story: Story, section: HTMLElement): void {
    this.story = story;
    this.seen.clear();
    this.section = section;
    for (const li of this.items()) {
      li.classList.remove("lit", "done");
      li.querySelector(".live")?.replaceChildren();
    }
  }

  private mark(step: string, text: string): void {
    const live = this.item(step)?.querySelector(".live");
    if (live) live.textContent = text;
  }

  private item(step: string): HTMLElement | null | undefined {
    return this.section?.querySelector<HTMLElement>(`li[data-step="${step}"]`);
  }

  private items(): HTMLElement[] {
    return [...(this.section?.querySelectorAll<HTMLElement>("li[data-step]") ?? [])];
  }
}
