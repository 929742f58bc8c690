// File contents for the memfs backend. memfs keeps a file in one Buffer, so one byte written at 4 GiB
// would allocate 4 GiB. The first time the backend changes a regular file (or creates one), its contents
// move into a `SparseData`, 4 KiB chunks of which only those ever written or allocated exist, and the
// node's content methods (read, write, truncate, getSize, getBuffer, setBuffer, setString: all memfs itself
// calls) are redirected to it, so the Volume API still reads and writes the same bytes. The chunks also
// give SEEK_DATA/SEEK_HOLE and st_blocks their exact answers.

import { Buffer } from "node:buffer";
import type { Volume } from "memfs";

/** A memfs inode. */
export type Node = Volume["_core"]["root"]["node"];

/** Chunk size, and the block size the backend reports. */
export const BLOCK_SIZE = 4096;
/** Copies go through buffers of at most this size. */
const COPY_CHUNK = 1 << 20;

/** Blocks of BLOCK_SIZE a node's contents take. */
export function blocksOf(node: Node): number {
  return sparse.get(node)?.chunkCount ?? Math.ceil(node.getSize() / BLOCK_SIZE);
}

const sparse = new WeakMap<Node, SparseData>();
/** What a hole reads as. */
const ZERO_CHUNK = new Uint8Array(BLOCK_SIZE);

/**
 * The chunked contents of a regular file, made on first need from memfs's buffer; from then on memfs's
 * own content methods on the node read and write the chunks too (see the top of this file).
 */
export function sparseData(node: Node): SparseData {
  let data = sparse.get(node);
  if (data !== undefined) return data;
  const content = new SparseData();
  content.write(node.buf.subarray(0, node.getSize()), 0); // buf directly: getBuffer would touch atime
  node.buf = Buffer.alloc(0);
  const methods: Pick<Node, "getSize" | "read" | "write" | "truncate" | "getBuffer" | "setBuffer" | "setString"> = {
    getSize: () => content.size,
    read(buf, off = 0, len = buf.byteLength, pos = 0) {
      node.atime = new Date();
      const n = Math.max(0, Math.min(len, buf.byteLength - off));
      return content.read(new Uint8Array(buf.buffer, buf.byteOffset + off, n), pos);
    },
    write(buf, off = 0, len = buf.length, pos = 0) {
      const bytes = buf.subarray(off, off + len);
      if (bytes.length === 0) return 0;
      content.write(bytes, pos);
      node.touch();
      return bytes.length;
    },
    truncate(len = 0) {
      content.setSize(Math.max(0, len));
      node.touch();
    },
    getBuffer() {
      node.atime = new Date();
      const out = Buffer.alloc(content.size);
      content.read(out, 0);
      return out;
    },
    setBuffer(buf) {
      content.setSize(0);
      content.write(buf, 0);
      node.touch();
    },
    setString(str) {
      methods.setBuffer(Buffer.from(str, "utf8"));
    },
  };
  Object.assign(node, methods);
  sparse.set(node, content);
  return content;
}

/**
 * A regular file's contents for a snapshot: its size and its chunks by ascending index, as views (not
 * copies). A file memfs still holds in its buffer is all data; its last chunk may be short.
 */
export function savedContent(node: Node): { size: number; chunks: [number, Uint8Array][] } {
  const data = sparse.get(node);
  if (data !== undefined) return { size: data.size, chunks: [...data.chunkEntries()].sort((a, b) => a[0] - b[0]) };
  const size = node.getSize();
  const chunks: [number, Uint8Array][] = [];
  for (let at = 0; at < size; at += BLOCK_SIZE) chunks.push([at / BLOCK_SIZE, node.buf.subarray(at, Math.min(size, at + BLOCK_SIZE))]);
  return { size, chunks };
}

/**
 * A file's bytes as CHUNK-sized chunks, present only where written or allocated; the rest reads as zeros.
 * Bytes at or past `size` are always zero (truncation clears them), so growing the file needs no work.
 */
export class SparseData {
  static readonly CHUNK = BLOCK_SIZE;
  size = 0;
  private readonly chunks = new Map<number, Uint8Array>();

  get chunkCount(): number {
    return this.chunks.size;
  }

  chunkEntries(): IterableIterator<[number, Uint8Array]> {
    return this.chunks.entries();
  }

  /**
   * Replaces the contents with copies of savedContent's chunks (a Saved value may be another live tree's)
   * and its size. The caller has checked them: at most CHUNK bytes each, zeros past `size`.
   */
  load(size: number, chunks: readonly (readonly [number, Uint8Array])[]): void {
    this.chunks.clear();
    for (const [index, bytes] of chunks) this.chunk(index).set(bytes);
    this.size = size;
  }

  /**
   * Fills `out` from `pos` up to the end of the file; returns the bytes read. Every byte is copied with
   * set(), holes from a zero chunk: `out` may be guest memory (a DAX window), a SharedArrayBuffer, where V8's
   * fill() is about ten times slower than set().
   */
  read(out: Uint8Array, pos: number): number {
    const n = Math.max(0, Math.min(out.length, this.size - pos));
    this.forEachPiece(pos, n, (chunk, inChunk, done, len) => {
      const from = chunk ?? ZERO_CHUNK;
      out.set(len === SparseData.CHUNK ? from : from.subarray(inChunk, inChunk + len), done);
    });
    return n;
  }

  write(data: Uint8Array, pos: number): void {
    this.forEachPiece(pos, data.length, (_, inChunk, done, len, index) => {
      this.chunk(index).set(data.subarray(done, done + len), inChunk);
    });
    this.size = Math.max(this.size, pos + data.length);
  }

  /** Truncates (dropping and clearing what lies past the new end) or extends with a hole. */
  setSize(size: number): void {
    if (size < this.size) {
      const keep = Math.ceil(size / SparseData.CHUNK);
      for (const index of this.chunks.keys()) if (index >= keep) this.chunks.delete(index);
      this.chunks.get(keep - 1)?.fill(0, size - (keep - 1) * SparseData.CHUNK);
    }
    this.size = size;
  }

  /** Chunks `allocate` would add for this range. */
  missingChunks(pos: number, length: number): number {
    const first = Math.floor(pos / SparseData.CHUNK);
    const last = Math.floor((pos + length - 1) / SparseData.CHUNK);
    let present = 0;
    for (const index of this.chunks.keys()) if (index >= first && index <= last) present++;
    return last - first + 1 - present;
  }

  /** Backs the range with chunks (zeros where there were none); the size stays. */
  allocate(pos: number, length: number): void {
    const last = Math.floor((pos + length - 1) / SparseData.CHUNK);
    for (let index = Math.floor(pos / SparseData.CHUNK); index <= last; index++) this.chunk(index);
  }

  /** Zeros the part of the range inside the file, dropping the chunks it covers whole. */
  punch(pos: number, length: number): void {
    const end = Math.min(pos + length, this.size);
    for (const [index, chunk] of this.chunks) {
      const start = index * SparseData.CHUNK;
      const from = Math.max(pos, start);
      const to = Math.min(end, start + SparseData.CHUNK);
      if (from >= to) continue;
      if (from === start && to === start + SparseData.CHUNK) this.chunks.delete(index);
      else chunk.fill(0, from - start, to - start);
    }
  }

  /** The first offset at or after `pos` inside a chunk, if the file has one before its end. */
  nextData(pos: number): number | undefined {
    const from = Math.floor(pos / SparseData.CHUNK);
    let best: number | undefined;
    for (const index of this.chunks.keys()) if (index >= from && (best === undefined || index < best)) best = index;
    if (best === undefined) return undefined;
    const at = Math.max(pos, best * SparseData.CHUNK);
    return at < this.size ? at : undefined;
  }

  /** The first offset at or after `pos` in a hole; the end of the file counts as one. */
  nextHole(pos: number): number {
    let index = Math.floor(pos / SparseData.CHUNK);
    while (this.chunks.has(index)) index++;
    return Math.min(this.size, Math.max(pos, index * SparseData.CHUNK));
  }

  /** copy_file_range: `n` bytes from `src` (another file, or a range of this one not overlapping the target), holes kept as holes. */
  copy(src: SparseData, from: number, to: number, n: number): void {
    for (let done = 0; done < n; ) {
      const data = src.nextData(from + done);
      const dataStart = data === undefined ? n : Math.min(n, data - from);
      if (dataStart > done) {
        this.punch(to + done, dataStart - done);
        done = dataStart;
        continue;
      }
      const len = Math.min(src.nextHole(from + done) - from, n) - done;
      const buf = new Uint8Array(Math.min(len, COPY_CHUNK));
      src.read(buf, from + done);
      this.write(buf, to + done);
      done += buf.length;
    }
    this.size = Math.max(this.size, to + n);
  }

  private chunk(index: number): Uint8Array {
    let chunk = this.chunks.get(index);
    if (chunk === undefined) {
      chunk = new Uint8Array(SparseData.CHUNK);
      this.chunks.set(index, chunk);
    }
    return chunk;
  }

  /** Calls `use` for each chunk-sized piece of [pos, pos + length): the chunk (if present), the offset in it, bytes done before, the piece's length, the chunk index. */
  private forEachPiece(pos: number, length: number, use: (chunk: Uint8Array | undefined, inChunk: number, done: number, len: number, index: number) => void): void {
    for (let done = 0; done < length; ) {
      const index = Math.floor((pos + done) / SparseData.CHUNK);
      const inChunk = pos + done - index * SparseData.CHUNK;
      const len = Math.min(SparseData.CHUNK - inChunk, length - done);
      use(this.chunks.get(index), inChunk, done, len, index);
      done += len;
    }
  }
}
