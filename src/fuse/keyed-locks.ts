// Async mutual exclusion per integer key (an inode, a range of the DAX window). Waiters queue in call order;
// whoever takes several keys takes them in ascending order, so no two holders can wait on each other.

export type Release = () => void;

export class KeyedLocks {
  /** Per key, the promise the next waiter waits for; absent when nobody holds or waits. */
  private readonly tails = new Map<number, Promise<void>>();

  /**
   * Takes every key's lock (duplicates once each) and resolves to the function that releases them all. The
   * lowest key's place in its queue is taken synchronously, so a call made before another on the same
   * single key is served first.
   */
  async acquire(keys: Iterable<number>): Promise<Release> {
    const sorted = [...new Set(keys)].sort((a, b) => a - b);
    const held: Release[] = [];
    for (const key of sorted) held.push(await this.one(key));
    return () => {
      for (const release of held) release();
    };
  }

  /** Whether nobody holds or waits for `key`'s lock. */
  idle(key: number): boolean {
    return !this.tails.has(key);
  }

  /** Takes the locks of idle keys (duplicates once each) at once; returns what releases them. */
  acquireNow(keys: Iterable<number>): Release {
    const held = [...new Set(keys)].map((key) => {
      let release!: () => void;
      const tail = new Promise<void>((r) => (release = r));
      this.tails.set(key, tail);
      return () => {
        release();
        if (this.tails.get(key) === tail) this.tails.delete(key);
      };
    });
    return () => {
      for (const release of held) release();
    };
  }

  /** Keys held or waited for: zero once every holder released (the table does not grow). */
  get size(): number {
    return this.tails.size;
  }

  private one(key: number): Promise<Release> {
    const before = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const done = new Promise<void>((r) => (release = r));
    const tail = before.then(() => done);
    this.tails.set(key, tail);
    return before.then(() => () => {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
  }
}
