// Values that may be at hand or may have to be waited for. A backend over memory has every answer at once,
// and the FUSE server then replies inside the guest's notify, before v86 leaves its CPU loop (leaving it
// costs each request tens of microseconds: docs/architecture.md); a backend over OPFS or a host directory
// returns Promises. Code that serves both is written once, as a generator that passes each Awaitable
// through `yield* wait(…)`, and `run` drives it: synchronously while every value is plain, as a Promise
// from the first one that is not.

export type Awaitable<T> = T | Promise<T>;

/** A computation that may wait: it yields only the Promises it waits for, and returns a T. */
export type Op<T> = Generator<Promise<unknown>, T, unknown>;

/** The value of `v`: at once if it is one, else once its Promise settles (a rejection is thrown here). */
export function* wait<T>(v: Awaitable<T>): Op<T> {
  return v instanceof Promise ? ((yield v) as T) : v;
}

/**
 * Runs `op` until it returns: its value, or a Promise of it if the op had to wait. What the op throws
 * before its first wait is thrown here; after it, it rejects the Promise.
 */
export function run<T>(op: Op<T>): Awaitable<T> {
  const step = op.next();
  return step.done ? step.value : resume(op, step.value);
}

async function resume<T>(op: Op<T>, pending: Promise<unknown>): Promise<T> {
  for (;;) {
    let value: unknown;
    let failed = false;
    try {
      value = await pending;
    } catch (e) {
      value = e;
      failed = true;
    }
    const step = failed ? op.throw(value) : op.next(value);
    if (step.done) return step.value;
    pending = step.value;
  }
}
