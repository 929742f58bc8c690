// A crash between any two OPFS calls: directory handles whose changes stop after a budget, as a reload
// stops the emulator's Worker wherever it is. Every call that changes OPFS (create, removeEntry, move, a
// writable's commit at close) spends one unit; once the budget is spent that call and every later one
// fails, so the backend that was cut can change nothing more, as a dead Worker cannot.

type Wrapped = FileSystemHandle | FileSystemWritableFileStream;

export class Cut {
  private left = Infinity;
  private real = new WeakMap<object, object>();
  private writables = new Set<FileSystemWritableFileStream>();

  /** From now on, `budget` more changes succeed. */
  arm(budget: number): void {
    this.left = budget;
  }

  /** Every later call fails: the reload has happened, and a dead context's writables are dropped uncommitted. */
  async crash(): Promise<void> {
    this.left = -1;
    for (const w of this.writables) await w.abort().catch(() => {});
  }

  get crashed(): boolean {
    return this.left < 0;
  }

  wrap<T extends Wrapped>(target: T): T {
    const proxy = new Proxy(target, {
      get: (t, key) => {
        const v: unknown = Reflect.get(t, key, t);
        if (typeof v !== "function") return v;
        return (...args: unknown[]) => {
          this.spend(t, key, args);
          const r: unknown = v.apply(t, args.map((a) => (a !== null && typeof a === "object" && this.real.get(a)) || a));
          return r instanceof Promise ? r.then((x) => this.wrapAny(x)) : this.wrapAny(r);
        };
      },
    });
    this.real.set(proxy, target);
    return proxy;
  }

  private spend(t: Wrapped, key: string | symbol, args: unknown[]): void {
    const create = (args[1] as { create?: boolean } | undefined)?.create === true;
    const changes =
      (t instanceof FileSystemDirectoryHandle && (key === "removeEntry" || ((key === "getFileHandle" || key === "getDirectoryHandle") && create))) ||
      (t instanceof FileSystemFileHandle && key === "move") ||
      (t instanceof FileSystemWritableFileStream && key === "close");
    if (this.left < 0 || (changes && this.left === 0)) {
      this.left = -1;
      throw new Error(`cut before ${String(key)}`);
    }
    if (changes) this.left--;
  }

  /** Handles, [name, handle] pairs and iterators of them come back wrapped. */
  private wrapAny(x: unknown): unknown {
    if (x instanceof FileSystemWritableFileStream) this.writables.add(x);
    if (x instanceof FileSystemHandle || x instanceof FileSystemWritableFileStream) return this.wrap(x);
    if (Array.isArray(x)) return x.map((e) => this.wrapAny(e));
    if (x !== null && typeof x === "object" && Symbol.asyncIterator in x) {
      const it = x as AsyncIterableIterator<unknown>;
      const next = async (): Promise<IteratorResult<unknown>> => {
        if (this.left < 0) throw new Error("cut before next");
        const r = await it.next();
        return r.done ? r : { done: false, value: this.wrapAny(r.value) };
      };
      return { next, [Symbol.asyncIterator]() { return this; } };
    }
    return x;
  }
}
