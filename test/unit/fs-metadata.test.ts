import { describe, expect, it } from "vitest";
import { MetadataStore, type JournalStorage } from "../../src/fs/hostdir/metadata.ts";

/** A journal in memory, counting what the store asks of it. */
class MemoryJournal implements JournalStorage {
  bytes: Uint8Array | undefined;
  syncs = 0;
  replaces = 0;
  failNextAppend = false;

  async read(): Promise<Uint8Array | undefined> {
    return this.bytes?.slice();
  }

  async append(bytes: Uint8Array): Promise<void> {
    if (this.failNextAppend) {
      this.failNextAppend = false;
      throw new Error("ENOSPC");
    }
    const old = this.bytes ?? new Uint8Array(0);
    this.bytes = new Uint8Array(old.length + bytes.length);
    this.bytes.set(old);
    this.bytes.set(bytes, old.length);
  }

  async sync(): Promise<void> {
    this.syncs++;
  }

  async replace(bytes: Uint8Array): Promise<void> {
    this.bytes = bytes.slice();
    this.replaces++;
  }

  text(): string {
    return new TextDecoder().decode(this.bytes);
  }
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

describe("MetadataStore", () => {
  it("keeps records across loads, binary xattrs included", async () => {
    const journal = new MemoryJournal();
    const store = await MetadataStore.load(journal, { readOnly: false });
    const binary = Uint8Array.from({ length: 256 }, (_, i) => i);
    await store.set("12", "g1", { mode: 0o020666, uid: 0, rdev: 259, xattrs: new Map([["user.bin", binary]]) });
    await store.set("13", undefined, { gid: 7 });
    const again = await MetadataStore.load(journal, { readOnly: false });
    expect(again.get("12", "g1")).toEqual({ mode: 0o020666, uid: 0, rdev: 259, xattrs: new Map([["user.bin", binary]]) });
    expect(again.get("13")).toEqual({ gid: 7 });
    expect(again.get("14")).toBeUndefined();
    expect(journal.replaces).toBe(0); // nothing dead to compact
  });

  it("deletes records with an empty one, and writes nothing for a record it does not have", async () => {
    const journal = new MemoryJournal();
    const store = await MetadataStore.load(journal, { readOnly: false });
    await store.set("1", undefined, { uid: 5 });
    await store.set("1", undefined, { xattrs: new Map() });
    expect(store.get("1")).toBeUndefined();
    const written = journal.bytes?.length;
    await store.delete("2");
    expect(journal.bytes?.length).toBe(written);
    expect(journal.text().split("\n")).toEqual(['{"virtiofs-web-metadata":1}', '{"key":"1","uid":5}', '{"key":"1"}', ""]);
    await MetadataStore.load(journal, { readOnly: false });
    expect(journal.text()).toBe('{"virtiofs-web-metadata":1}\n');
  });

  it("ignores a record made for another generation of its key", async () => {
    const store = await MetadataStore.load(new MemoryJournal(), { readOnly: false });
    await store.set("1", "born-1", { uid: 5 });
    expect(store.get("1", "born-1")).toEqual({ uid: 5 });
    expect(store.get("1", "born-2")).toBeUndefined();
    expect(store.get("1")).toEqual({ uid: 5 }); // a storage without generations cannot tell
  });

  it("syncs only when something is not durable yet, and tells which keys are not", async () => {
    const journal = new MemoryJournal();
    const store = await MetadataStore.load(journal, { readOnly: false });
    await store.sync();
    expect(journal.syncs).toBe(0);
    await store.set("1", undefined, { uid: 5 });
    expect([store.hasUnsynced("1"), store.hasUnsynced("2"), store.hasUnsynced()]).toEqual([true, false, true]);
    const sync = store.sync();
    const later = store.set("2", undefined, { uid: 6 }); // after the sync was asked for: not covered by it
    await Promise.all([sync, later]);
    expect([store.hasUnsynced("1"), store.hasUnsynced("2")]).toEqual([false, true]);
    await store.sync();
    expect(store.hasUnsynced()).toBe(false);
    expect(journal.syncs).toBe(2);
  });

  it("compacts a journal grown past twice its live size", async () => {
    const journal = new MemoryJournal();
    const store = await MetadataStore.load(journal, { readOnly: false });
    const value = new Uint8Array(60_000).fill(1);
    for (let i = 0; i < 40; i++) await store.set("1", undefined, { xattrs: new Map([["user.v", value.map(() => i)]]) });
    expect(journal.replaces).toBeGreaterThan(0);
    expect(journal.bytes!.length).toBeLessThan(4 * 80_000 + 1_000_000);
    expect(store.hasUnsynced()).toBe(false); // a replaced journal is durable
    const again = await MetadataStore.load(journal, { readOnly: false });
    expect(again.get("1")?.xattrs?.get("user.v")?.[0]).toBe(39);
  });

  it("drops a torn last line, and refuses a journal corrupt before it", async () => {
    const journal = new MemoryJournal();
    journal.bytes = text('{"virtiofs-web-metadata":1}\n{"key":"1","uid":5}\n{"key":"2","ui');
    const store = await MetadataStore.load(journal, { readOnly: false });
    expect(store.get("1")).toEqual({ uid: 5 });
    expect(journal.text()).toBe('{"virtiofs-web-metadata":1}\n{"key":"1","uid":5}\n');
    for (const bad of ['{"key":"1","uid":-5}', '{"uid":5}', '{"key":"1","xattrs":{"user.a":"%%%"}}', "[1]", "junk"]) {
      journal.bytes = text(`{"virtiofs-web-metadata":1}\n${bad}\n{"key":"2","uid":5}\n`);
      await expect(MetadataStore.load(journal, { readOnly: false })).rejects.toThrow(/line 2 is corrupt/);
    }
    journal.bytes = text('{"some-other-format":1}\n');
    await expect(MetadataStore.load(journal, { readOnly: false })).rejects.toThrow(/not a virtiofs-web metadata journal/);
    journal.bytes = text('{"virtiofs-web-me'); // torn before the header was complete: empty
    expect((await MetadataStore.load(journal, { readOnly: false })).get("1")).toBeUndefined();
  });

  it("never writes when read-only", async () => {
    const journal = new MemoryJournal();
    journal.bytes = text('{"virtiofs-web-metadata":1}\n{"key":"1","uid":5}\n{"key":"1","uid":6}\n{"key":"2","u');
    const before = journal.text();
    const store = await MetadataStore.load(journal, { readOnly: true });
    expect(store.get("1")).toEqual({ uid: 6 });
    expect(journal.text()).toBe(before);
    expect(() => store.set("1", undefined, { uid: 7 })).toThrow(/read-only/);
  });

  it("leaves the record as it was when the journal write fails, and goes on with later writes", async () => {
    const journal = new MemoryJournal();
    const store = await MetadataStore.load(journal, { readOnly: false });
    await store.set("1", undefined, { uid: 5 });
    journal.failNextAppend = true;
    await expect(store.set("1", undefined, { uid: 6 })).rejects.toThrow("ENOSPC");
    expect(store.get("1")).toEqual({ uid: 5 });
    await store.set("1", undefined, { uid: 7 });
    expect((await MetadataStore.load(journal, { readOnly: false })).get("1")).toEqual({ uid: 7 });
  });
});
