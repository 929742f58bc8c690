// run() and wait(): one generator serves a backend that answers at once and one that makes it wait.
import { describe, expect, it } from "vitest";
import { run, wait, type Awaitable, type Op } from "../../src/vfs/awaitable.ts";

/** Adds what two calls give, keeping a log; the second call's failure is caught and counted as 0. */
function* sum(a: () => Awaitable<number>, b: () => Awaitable<number>, log: string[]): Op<number> {
  try {
    const x = yield* wait(a());
    let y: number;
    try {
      y = yield* wait(b());
    } catch (e) {
      log.push(`caught ${(e as Error).message}`);
      y = 0;
    }
    return x + y;
  } finally {
    log.push("finally");
  }
}

const fail = (message: string) => () => {
  throw new Error(message);
};

describe("run", () => {
  it("returns a plain value, not a Promise, while every value is plain", () => {
    const log: string[] = [];
    expect(run(sum(() => 1, () => 2, log))).toBe(3);
    expect(log).toEqual(["finally"]);
  });

  it("returns a Promise from the first value that is one, and resolves to the same result", async () => {
    const log: string[] = [];
    const result = run(sum(() => 1, () => Promise.resolve(2), log));
    expect(result).toBeInstanceOf(Promise);
    expect(log).toEqual([]); // suspended at the wait
    expect(await result).toBe(3);
    expect(log).toEqual(["finally"]);
  });

  it("throws a rejection into the generator at its wait, where try/catch takes it", async () => {
    const log: string[] = [];
    expect(await run(sum(() => Promise.resolve(1), () => Promise.reject(new Error("late")), log))).toBe(1);
    expect(log).toEqual(["caught late", "finally"]);
  });

  it("catches a synchronous throw the same way", () => {
    const log: string[] = [];
    expect(run(sum(() => 5, fail("now"), log))).toBe(5);
    expect(log).toEqual(["caught now", "finally"]);
  });

  it("throws what escapes before the first wait, and rejects with what escapes after it", async () => {
    const log: string[] = [];
    expect(() => run(sum(fail("early"), () => 2, log))).toThrow("early");
    expect(log).toEqual(["finally"]);
    const escaped = run(
      (function* () {
        yield* wait(Promise.resolve());
        throw new Error("after");
      })(),
    );
    await expect(escaped).rejects.toThrow("after");
  });
});
