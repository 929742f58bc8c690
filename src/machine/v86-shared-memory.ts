// v86 with its WebAssembly memory shared: guest RAM then lives in a SharedArrayBuffer that other views
// and Workers can use. v86.wasm defines its memory unshared, and every module v86's JIT emits imports it
// unshared; both get rewritten here, section by section, to a shared memory with a maximum.
import type { V86 } from "v86";
import { v86Cpu } from "./v86-bus.ts";

/** The maximum of the shared memory: all of wasm32. Shared memories must declare one; imports must match it. */
export const SHARED_MAX_PAGES = 65536;

export class WasmRewriteError extends Error {}

const SECTION_IMPORT = 2;
const SECTION_MEMORY = 5;
const KIND_FUNC = 0;
const KIND_TABLE = 1;
const KIND_MEMORY = 2;
const KIND_GLOBAL = 3;
const KIND_TAG = 4;
const LIMITS_MIN = 0x00;
const LIMITS_MIN_MAX = 0x01;
const LIMITS_SHARED = 0x03;
const HEADER = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];

class Reader {
  pos: number;
  constructor(
    readonly bytes: Uint8Array,
    start: number,
    readonly end = bytes.length,
  ) {
    this.pos = start;
  }

  byte(): number {
    if (this.pos >= this.end) throw new WasmRewriteError("truncated wasm module");
    return this.bytes[this.pos++]!;
  }

  u32(): number {
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      if (!(b & 0x80)) {
        if (result > 0xffffffff) break;
        return result;
      }
    }
    throw new WasmRewriteError("bad LEB128 in wasm module");
  }

  skip(n: number): void {
    if (this.pos + n > this.end) throw new WasmRewriteError("truncated wasm module");
    this.pos += n;
  }
}

function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
}

/** Reads memory limits at r and returns them as shared ones; limits that already are come back unchanged. */
function sharedLimits(r: Reader): number[] {
  const start = r.pos;
  const flags = r.byte();
  const min = r.u32();
  if (flags === LIMITS_SHARED) {
    r.u32();
    return Array.from(r.bytes.subarray(start, r.pos));
  }
  if (flags === LIMITS_MIN_MAX) r.u32();
  else if (flags !== LIMITS_MIN) throw new WasmRewriteError(`memory limits with flags 0x${flags.toString(16)} (memory64 or unknown) cannot be shared`);
  if (min > SHARED_MAX_PAGES) throw new WasmRewriteError(`memory of ${min} pages exceeds wasm32`);
  return [LIMITS_SHARED, ...leb(min), ...leb(SHARED_MAX_PAGES)];
}

/** The import section's body with its memory imports made shared, the other imports as they were. */
function rewriteImports(r: Reader): { body: number[]; memories: number } {
  const count = r.u32();
  const body = leb(count);
  let memories = 0;
  for (let i = 0; i < count; i++) {
    const entryStart = r.pos;
    r.skip(r.u32()); // module name
    r.skip(r.u32()); // field name
    const kind = r.byte();
    if (kind === KIND_MEMORY) {
      body.push(...r.bytes.subarray(entryStart, r.pos), ...sharedLimits(r));
      memories++;
      continue;
    }
    if (kind === KIND_FUNC || kind === KIND_TAG) {
      if (kind === KIND_TAG) r.byte();
      r.u32();
    } else if (kind === KIND_TABLE) {
      r.byte(); // element type
      if (r.byte() & 1) r.u32();
      r.u32();
    } else if (kind === KIND_GLOBAL) {
      r.skip(2); // value type, mutability
    } else throw new WasmRewriteError(`unknown import kind ${kind}`);
    body.push(...r.bytes.subarray(entryStart, r.pos));
  }
  return { body, memories };
}

function rewriteMemories(r: Reader): { body: number[]; memories: number } {
  const count = r.u32();
  const body = leb(count);
  for (let i = 0; i < count; i++) body.push(...sharedLimits(r));
  return { body, memories: count };
}

/**
 * Returns a copy of a wasm module whose one memory, defined or imported, is shared with maximum
 * SHARED_MAX_PAGES. Throws WasmRewriteError for anything that is not a wasm module with exactly one
 * memory, rather than guess.
 */
export function shareWasmMemory(module: Uint8Array): Uint8Array<ArrayBuffer> {
  if (module.length < HEADER.length || HEADER.some((b, i) => module[i] !== b)) throw new WasmRewriteError("not a WebAssembly module (bad magic or version)");
  const parts: Uint8Array[] = [module.subarray(0, HEADER.length)];
  let memories = 0;
  const r = new Reader(module, HEADER.length);
  while (r.pos < module.length) {
    const sectionStart = r.pos;
    const id = r.byte();
    const size = r.u32();
    const bodyStart = r.pos;
    r.skip(size);
    if (id !== SECTION_IMPORT && id !== SECTION_MEMORY) {
      parts.push(module.subarray(sectionStart, r.pos));
      continue;
    }
    const section = new Reader(module, bodyStart, bodyStart + size);
    const rewritten = id === SECTION_IMPORT ? rewriteImports(section) : rewriteMemories(section);
    if (section.pos !== section.end) throw new WasmRewriteError(`section ${id} has ${section.end - section.pos} stray bytes`);
    memories += rewritten.memories;
    parts.push(Uint8Array.from([id, ...leb(rewritten.body.length), ...rewritten.body]));
  }
  if (memories !== 1) throw new WasmRewriteError(`expected one memory, found ${memories}`);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Shared memory works here: SharedArrayBuffer exists and, in a browser, the page is cross-origin isolated. */
export function sharedMemoryAvailable(): boolean {
  return typeof SharedArrayBuffer !== "undefined" && (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated !== false;
}

/** Without cross-origin isolation browsers have no SharedArrayBuffer global at all. */
export function isShared(buffer: ArrayBufferLike): buffer is SharedArrayBuffer {
  return typeof SharedArrayBuffer !== "undefined" && buffer instanceof SharedArrayBuffer;
}

const NODE_FS = "node:fs/promises";

/** v86.wasm's bytes the way v86 finds them: a file path under Node (whose fetch has no file: URLs), a URL elsewhere. */
async function loadWasm(pathOrUrl: string): Promise<Uint8Array<ArrayBuffer>> {
  const isNode = typeof process !== "undefined" && !!process.versions?.node;
  if (isNode && !/^(https?|blob|data):/i.test(pathOrUrl)) {
    // A computed specifier keeps bundlers from pulling node:fs into the browser build.
    const fs = (await import(/* @vite-ignore */ NODE_FS)) as typeof import("node:fs/promises");
    return fs.readFile(pathOrUrl);
  }
  const res = await fetch(pathOrUrl);
  if (!res.ok) throw new Error(`cannot load ${pathOrUrl}: HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

/**
 * V86's wasm_fn option: loads v86.wasm and instantiates it with its memory shared. If the engine refuses
 * (no room for the maximum, say), it falls back to the module as it is: check the memory's buffer to know.
 * v86 keeps no wasm_source then, which only its zstd Worker (zstd-compressed images, unused here) needs.
 */
export function sharedMemoryWasm(wasmPathOrUrl: string): (imports: WebAssembly.Imports) => Promise<WebAssembly.Exports> {
  return async (imports) => {
    const bytes = await loadWasm(wasmPathOrUrl);
    try {
      return (await WebAssembly.instantiate(shareWasmMemory(bytes), imports)).instance.exports;
    } catch (e) {
      if (e instanceof WasmRewriteError) throw e;
      return (await WebAssembly.instantiate(bytes, imports)).instance.exports;
    }
  };
}

/** Where v86 puts compiled functions in its table (WASM_TABLE_OFFSET in v86's const.js). */
const WASM_TABLE_OFFSET = 1024;

interface V86Jit {
  wasm_memory: WebAssembly.Memory;
  wm: { wasm_table: WebAssembly.Table };
  jit_imports: WebAssembly.ModuleImports;
  codegen_finalize(index: number, start: number, stateFlags: number, ptr: number, len: number): void;
  codegen_finalize_finished(index: number, start: number, stateFlags: number): void;
}

export interface SharedJit {
  /** JIT modules compiled against the shared memory so far. */
  readonly modules: number;
}

/**
 * Makes v86's JIT link its modules to the shared memory: replaces cpu.codegen_finalize, which v86's wasm
 * calls by name with each module it emits, by the same steps (v86 src/cpu.js) on a rewritten copy.
 * Install on emulator-loaded, before the CPU runs, and only when the memory is shared.
 */
export function shareJitModules(emulator: V86): SharedJit {
  const cpu = v86Cpu(emulator) as unknown as Partial<V86Jit>;
  if (!cpu.wm?.wasm_table || !cpu.jit_imports || !cpu.codegen_finalize || !cpu.codegen_finalize_finished || !cpu.wasm_memory) {
    throw new Error("this v86 build does not expose the JIT internals shared memory needs (codegen_finalize, jit_imports, wm.wasm_table)");
  }
  const jit = cpu as V86Jit;
  const stats = { modules: 0 };
  jit.codegen_finalize = (index, start, stateFlags, ptr, len) => {
    // The copy is made now: the JIT reuses its output buffer as soon as this returns.
    const code = shareWasmMemory(new Uint8Array(jit.wasm_memory.buffer, ptr >>> 0, len >>> 0));
    void WebAssembly.instantiate(code, { e: jit.jit_imports }).then(({ instance }) => {
      jit.wm.wasm_table.set(index + WASM_TABLE_OFFSET, instance.exports.f);
      jit.codegen_finalize_finished(index, start, stateFlags);
      stats.modules++;
    });
  };
  return stats;
}
