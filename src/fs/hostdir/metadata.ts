// Durable POSIX metadata for storage that cannot hold it: per inode, a mode (with its file type), owner,
// device number and extended attributes, keyed by an inode identity the backend chooses. The hostdir
// backend uses it for what Node cannot do on the host (xattrs, device nodes and FIFOs, owners without
// root); it knows nothing of Node, so a browser backend can keep its journal in OPFS the same way.
//
// Format: a journal of JSON lines. The first line is the header {"virtiofs-web-metadata":1}; every further
// line is the complete record of one inode, {"key": …, "gen": …, "mode": …, "uid": …, "gid": …, "rdev": …,
// "xattrs": {name: base64}}, absent fields omitted, and a line with the key alone deletes the record. The
// last line for a key wins. So a change costs one append, whatever the store's size, and `sync` makes what
// was appended durable. A crash can only tear the last line, which loading ignores. Loading read-write
// compacts whenever the journal holds more than its live records (dead or torn lines), and so does an
// append that leaves the journal over twice its live size: the live records are written to a temporary
// file, synced and renamed over the journal (`JournalStorage.replace`).
//
// `gen` guards against reused keys: a backend that keys by host inode number passes something that
// changes when the number is reused (the birth time), and a record made for an earlier inode is ignored.

/** What the store holds about one inode; an absent field means the storage's own value stands. */
export interface InodeMeta {
  /** st_mode, file type bits included. */
  mode?: number;
  uid?: number;
  gid?: number;
  rdev?: number;
  xattrs?: ReadonlyMap<string, Uint8Array>;
}

/** Where the journal lives. */
export interface JournalStorage {
  /** The journal's bytes, or undefined if there is none yet. */
  read(): Promise<Uint8Array | undefined>;
  /** Appends, creating the journal if needed. */
  append(bytes: Uint8Array): Promise<void>;
  /** Makes every appended byte durable. */
  sync(): Promise<void>;
  /** Replaces the whole journal durably, so that a crash leaves either the old one or the new one. */
  replace(bytes: Uint8Array): Promise<void>;
}

interface Stored {
  meta: InodeMeta;
  /** The record's journal line, newline included, and its length in bytes. */
  line: string;
  bytes: number;
  generation: string | undefined;
}

const HEADER = '{"virtiofs-web-metadata":1}\n';
/** Below this size the journal is never compacted while running. */
const COMPACT_MIN_BYTES = 1 << 20;

const encoder = new TextEncoder();

export class MetadataStore {
  private readonly records = new Map<string, Stored>();
  /** Bytes in the journal, and in the live records' lines. */
  private journalBytes = 0;
  private liveBytes = 0;
  /** Keys whose last change is not synced yet, with the sequence number of that change. */
  private readonly unsynced = new Map<string, number>();
  private seq = 0;
  /** Journal writes, one at a time and in the order of the changes. */
  private queue: Promise<void> = Promise.resolve();

  private constructor(
    private readonly storage: JournalStorage,
    private readonly readOnly: boolean,
  ) {}

  /** Reads the journal (throwing if it is corrupt anywhere but a torn last line) and, read-write, compacts it. */
  static async load(storage: JournalStorage, options: { readOnly: boolean }): Promise<MetadataStore> {
    const store = new MetadataStore(storage, options.readOnly);
    const bytes = await storage.read();
    if (bytes === undefined) return store;
    store.replay(bytes);
    store.journalBytes = bytes.length;
    if (!options.readOnly && bytes.length !== HEADER.length + store.liveBytes) await store.compact();
    return store;
  }

  /** The record for `key`, unless it was made for an earlier inode with that key (another generation). */
  get(key: string, generation?: string): InodeMeta | undefined {
    const stored = this.records.get(key);
    if (stored === undefined) return undefined;
    if (stored.generation !== undefined && generation !== undefined && stored.generation !== generation) return undefined;
    return stored.meta;
  }

  /**
   * Replaces the record for `key`; a `meta` without fields removes it. Resolves once the change is in the
   * journal (what a process crash cannot lose); `sync` makes it durable.
   */
  set(key: string, generation: string | undefined, meta: InodeMeta): Promise<void> {
    if (this.readOnly) throw new Error("metadata store is read-only");
    const fields = cleanMeta(meta);
    const line = serialize(key, fields === undefined ? undefined : generation, fields ?? {});
    const seq = ++this.seq;
    return this.enqueue(async () => {
      if (fields === undefined && !this.records.has(key)) return;
      const first = this.journalBytes === 0 ? HEADER : "";
      const bytes = encoder.encode(first + line);
      await this.storage.append(bytes);
      this.journalBytes += bytes.length;
      this.unsynced.set(key, seq);
      this.liveBytes -= this.records.get(key)?.bytes ?? 0;
      if (fields === undefined) this.records.delete(key);
      else {
        const lineBytes = bytes.length - first.length;
        this.records.set(key, { meta: fields, line, bytes: lineBytes, generation });
        this.liveBytes += lineBytes;
      }
      if (this.journalBytes > COMPACT_MIN_BYTES && this.journalBytes > 2 * (HEADER.length + this.liveBytes)) await this.compact();
    });
  }

  delete(key: string): Promise<void> {
    return this.set(key, undefined, {});
  }

  /** Whether a change (to `key`, or to anything) is not durable yet. */
  hasUnsynced(key?: string): boolean {
    return key === undefined ? this.unsynced.size > 0 : this.unsynced.has(key);
  }

  /** Makes every change made so far durable. */
  sync(): Promise<void> {
    const upTo = this.seq;
    return this.enqueue(async () => {
      if (this.unsynced.size === 0) return;
      await this.storage.sync();
      for (const [key, seq] of this.unsynced) if (seq <= upTo) this.unsynced.delete(key);
    });
  }

  private enqueue(job: () => Promise<void>): Promise<void> {
    const run = this.queue.then(job);
    this.queue = run.catch(() => {}); // one failed write (ENOSPC, say) must not stop the later ones
    return run;
  }

  private async compact(): Promise<void> {
    const text = HEADER + [...this.records.values()].map((r) => r.line).join("");
    const bytes = encoder.encode(text);
    await this.storage.replace(bytes);
    this.journalBytes = bytes.length;
    this.unsynced.clear();
  }

  private replay(bytes: Uint8Array): void {
    const lines = new TextDecoder().decode(bytes).split("\n");
    lines.pop(); // "" after a complete last line; a torn one otherwise
    if (lines.length === 0) return;
    if (`${lines[0]}\n` !== HEADER) throw new Error("metadata journal: not a virtiofs-web metadata journal");
    for (let i = 1; i < lines.length; i++) {
      let parsed: { key: string; generation: string | undefined; meta: InodeMeta | undefined };
      try {
        parsed = parse(lines[i]!);
      } catch (e) {
        throw new Error(`metadata journal: line ${i + 1} is corrupt (${(e as Error).message})`);
      }
      const line = `${lines[i]}\n`;
      this.liveBytes -= this.records.get(parsed.key)?.bytes ?? 0;
      if (parsed.meta === undefined) this.records.delete(parsed.key);
      else {
        const lineBytes = encoder.encode(line).length;
        this.records.set(parsed.key, { meta: parsed.meta, line, bytes: lineBytes, generation: parsed.generation });
        this.liveBytes += lineBytes;
      }
    }
  }
}

/** `meta` without its absent fields and empty xattrs, or undefined if nothing is left. */
function cleanMeta(meta: InodeMeta): InodeMeta | undefined {
  const out: InodeMeta = {};
  if (meta.mode !== undefined) out.mode = meta.mode;
  if (meta.uid !== undefined) out.uid = meta.uid;
  if (meta.gid !== undefined) out.gid = meta.gid;
  if (meta.rdev !== undefined) out.rdev = meta.rdev;
  if (meta.xattrs !== undefined && meta.xattrs.size > 0) out.xattrs = new Map(meta.xattrs);
  return Object.keys(out).length === 0 ? undefined : out;
}

function serialize(key: string, generation: string | undefined, meta: InodeMeta): string {
  const xattrs = meta.xattrs === undefined ? undefined : Object.fromEntries([...meta.xattrs].map(([name, value]) => [name, toBase64(value)]));
  return `${JSON.stringify({ key, gen: generation, mode: meta.mode, uid: meta.uid, gid: meta.gid, rdev: meta.rdev, xattrs })}\n`;
}

const NUMBER_FIELDS = ["mode", "uid", "gid", "rdev"] as const;

function parse(line: string): { key: string; generation: string | undefined; meta: InodeMeta | undefined } {
  const value: unknown = JSON.parse(line);
  if (typeof value !== "object" || value === null) throw new Error("not an object");
  const o = value as Record<string, unknown>;
  if (typeof o.key !== "string") throw new Error("no key");
  if (o.gen !== undefined && typeof o.gen !== "string") throw new Error("bad gen");
  const meta: InodeMeta = {};
  for (const field of NUMBER_FIELDS) {
    const n = o[field];
    if (n === undefined) continue;
    if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) throw new Error(`bad ${field}`);
    meta[field] = n;
  }
  if (o.xattrs !== undefined) {
    if (typeof o.xattrs !== "object" || o.xattrs === null) throw new Error("bad xattrs");
    const xattrs = new Map<string, Uint8Array>();
    for (const [name, text] of Object.entries(o.xattrs)) {
      if (typeof text !== "string") throw new Error(`bad xattr ${name}`);
      xattrs.set(name, fromBase64(text));
    }
    meta.xattrs = xattrs;
  }
  return { key: o.key, generation: o.gen, meta: cleanMeta(meta) };
}

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

function fromBase64(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}
