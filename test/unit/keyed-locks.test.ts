import { describe, expect, it } from "vitest";
import { KeyedLocks } from "../../src/fuse/keyed-locks.ts";

const turn = () => new Promise<void>((r) => setImmediate(r));

describe("KeyedLocks", () => {
  it("serves holders of one key one at a time, in call order", async () => {
    const locks = new KeyedLocks();
    const log: string[] = [];
    const job = async (name: string) => {
      const release = await locks.acquire([1]);
      log.push(`${name} in`);
      await turn();
      log.push(`${name} out`);
      release();
    };
    await Promise.all([job("a"), job("b"), job("c")]);
    expect(log).toEqual(["a in", "a out", "b in", "b out", "c in", "c out"]);
    expect(locks.size).toBe(0);
  });

  it("lets holders of different keys run together", async () => {
    const locks = new KeyedLocks();
    const a = await locks.acquire([1]);
    const b = await locks.acquire([2, -5]);
    a();
    b();
    expect(locks.size).toBe(0);
  });

  it("takes several keys in ascending order, so crossing requests do not deadlock", async () => {
    const locks = new KeyedLocks();
    let done = 0;
    const job = async (keys: number[]) => {
      const release = await locks.acquire(keys);
      await turn();
      release();
      done++;
    };
    await Promise.all([job([1, 2]), job([2, 1]), job([2, -1, 1, 2]), job([-1])]);
    expect(done).toBe(4);
    expect(locks.size).toBe(0);
  });

  it("queues a single key synchronously: an earlier call is served first even if it awaits later", async () => {
    const locks = new KeyedLocks();
    const first = locks.acquire([7]);
    const second = locks.acquire([7]);
    let secondIn = false;
    void second.then((release) => {
      secondIn = true;
      release();
    });
    const release = await first;
    await turn();
    expect(secondIn).toBe(false);
    release();
    await turn();
    expect(secondIn).toBe(true);
  });

  it("takes idle keys at once with acquireNow; a later acquire waits for their release", async () => {
    const locks = new KeyedLocks();
    expect(locks.idle(3)).toBe(true);
    const release = locks.acquireNow([3, 4, 3]);
    expect([locks.idle(3), locks.idle(4), locks.idle(5)]).toEqual([false, false, true]);
    let entered = false;
    const later = locks.acquire([4]).then((r) => {
      entered = true;
      r();
    });
    await turn();
    expect(entered).toBe(false);
    release();
    await later;
    expect(entered).toBe(true);
    expect(locks.size).toBe(0);
  });
});
