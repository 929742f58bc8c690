import { describe, expect, it, vi } from "vitest";
import type { V86 } from "v86";
import { sameThreadResume } from "../../src/machine/v86-yield.ts";

function fakeLoop(worker: object | null) {
  const timed = vi.fn<(t: number, tick: number) => void>();
  const loop = { worker, yield: timed as (t: number, tick: number) => void, yield_callback: vi.fn<(tick: number) => void>() };
  return { loop, timed, emulator: { v86: loop } as unknown as V86 };
}

const nextTask = () => new Promise((r) => setTimeout(r, 0));

describe("sameThreadResume", () => {
  it("resumes 'now' through a channel in this thread and leaves timed yields to v86's Worker", async () => {
    const { loop, timed, emulator } = fakeLoop({});
    const undo = sameThreadResume(emulator);
    loop.yield(0, 7);
    expect(loop.yield_callback).not.toHaveBeenCalled(); // a task later, as v86 expects of a yield
    // Node orders a port's message against timers as it likes: wait for it, not for one timer.
    await vi.waitFor(() => expect(loop.yield_callback).toHaveBeenCalledWith(7));
    expect(timed).not.toHaveBeenCalled();
    loop.yield(5, 8);
    expect(timed).toHaveBeenCalledWith(5, 8);
    undo();
    expect(loop.yield).toBe(timed);
    loop.yield(0, 9);
    expect(timed).toHaveBeenCalledWith(0, 9);
    await nextTask();
    expect(loop.yield_callback).toHaveBeenCalledTimes(1);
  });

  it("undoing keeps a resume already posted (v86's stop() waits for the tick it runs)", async () => {
    const { loop, emulator } = fakeLoop({});
    const undo = sameThreadResume(emulator);
    loop.yield(0, 3);
    undo();
    await vi.waitFor(() => expect(loop.yield_callback).toHaveBeenCalledWith(3));
  });

  it("changes nothing where v86 has no Worker (Node)", () => {
    const { loop, timed, emulator } = fakeLoop(null);
    sameThreadResume(emulator)();
    expect(loop.yield).toBe(timed);
  });
});
