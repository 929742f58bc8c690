// Rewriting wasm modules to a shared memory: v86.wasm itself (which defines its memory) and a module shaped
// like the ones v86's JIT emits (which import it), and refusing what is not such a module.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { SHARED_MAX_PAGES, shareWasmMemory, WasmRewriteError } from "../../src/machine/v86-shared-memory.ts";
import { V86_WASM_PATH } from "../../src/machine/node-images.ts";

const HEADER = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
/** 65536 in LEB128. */
const MAX = [0x80, 0x80, 0x04];
const str = (s: string): number[] => [s.length, ...new TextEncoder().encode(s)];

/**
 * Like a JIT module: a function () -> i32 that loads address 8, after a function import and the memory
 * import "e" "m" (unshared, 256 pages), with the import section's size and count in padded 2-byte LEB128
 * as v86 writes them.
 */
function jitLike(memoryLimits: number[] = [0x00, 0x80, 0x02]): Uint8Array {
  const imports = [...str("e"), ...str("g"), 0x00, 0x01, ...str("e"), ...str("m"), 0x02, ...memoryLimits];
  return Uint8Array.from([
    ...HEADER,
    ...[0x01, 0x09, 0x02, 0x60, 0x00, 0x01, 0x7f, 0x60, 0x01, 0x7f, 0x00], // types: () -> i32, (i32) -> ()
    ...[0x02, 0x80 | (imports.length + 2), 0x00, 0x82, 0x00, ...imports], // imports, padded LEBs
    ...[0x03, 0x02, 0x01, 0x00], // one function of type 0
    ...[0x07, 0x05, 0x01, ...str("f"), 0x00, 0x01], // export "f" = function 1
    ...[0x0a, 0x09, 0x01, 0x07, 0x00, 0x41, 0x08, 0x28, 0x02, 0x00, 0x0b], // i32.const 8; i32.load; end
  ]);
}

function sectionAt(module: Uint8Array, id: number): Uint8Array {
  let p = HEADER.length;
  while (p < module.length) {
    const sid = module[p++]!;
    let size = 0;
    for (let shift = 0; ; shift += 7) {
      const b = module[p++]!;
      size |= (b & 0x7f) << shift;
      if (!(b & 0x80)) break;
    }
    if (sid === id) return module.subarray(p, p + size);
    p += size;
  }
  throw new Error(`no section ${id}`);
}

describe("shareWasmMemory", () => {
  it("makes v86.wasm's memory shared with a maximum; the module validates and instantiates", async () => {
    const original = new Uint8Array(readFileSync(V86_WASM_PATH));
    const memory = sectionAt(original, 5);
    expect(memory[0]).toBe(1);
    expect(memory[1]).toBe(0x00); // unshared, no maximum: what v86 ships

    const shared = shareWasmMemory(original);
    expect(Array.from(sectionAt(shared, 5))).toEqual([1, 0x03, ...memory.subarray(2), ...MAX]);
    expect(shared.length).toBe(original.length + MAX.length); // only the memory section grew
    expect(WebAssembly.validate(shared)).toBe(true);

    const module = await WebAssembly.compile(shared);
    const env = Object.fromEntries(
      WebAssembly.Module.imports(module).map((i) => [i.name, i.kind === "table" ? new WebAssembly.Table({ element: "anyfunc", initial: 2048 }) : () => 0]),
    );
    const instance = await WebAssembly.instantiate(module, { env });
    expect((instance.exports.memory as WebAssembly.Memory).buffer).toBeInstanceOf(SharedArrayBuffer);
  });

  it("makes a JIT-like module's memory import shared, so it links to the shared memory", async () => {
    const shared = shareWasmMemory(jitLike());
    const imports = [...str("e"), ...str("g"), 0x00, 0x01, ...str("e"), ...str("m"), 0x02, 0x03, 0x80, 0x02, ...MAX];
    expect(Array.from(sectionAt(shared, 2))).toEqual([0x02, ...imports]);
    expect(WebAssembly.validate(shared)).toBe(true);

    const m = new WebAssembly.Memory({ initial: 256, maximum: SHARED_MAX_PAGES, shared: true });
    new DataView(m.buffer).setInt32(8, 0x1234, true);
    await expect(WebAssembly.instantiate(jitLike(), { e: { m, g: () => {} } })).rejects.toThrow(WebAssembly.LinkError);
    const { instance } = await WebAssembly.instantiate(shared, { e: { m, g: () => {} } });
    expect((instance.exports.f as () => number)()).toBe(0x1234);
  });

  it("leaves a memory that is already shared as it is", () => {
    const once = shareWasmMemory(jitLike());
    expect(Array.from(shareWasmMemory(once))).toEqual(Array.from(once));
  });

  it("refuses what it cannot rewrite, with a clear error", () => {
    const garbage = Uint8Array.from({ length: 64 }, (_, i) => (i * 37) & 0xff);
    expect(() => shareWasmMemory(garbage)).toThrow(/not a WebAssembly module/);
    expect(() => shareWasmMemory(jitLike().subarray(0, 30))).toThrow(/truncated/);
    expect(() => shareWasmMemory(jitLike([0x04, 0x01]))).toThrow(/memory64 or unknown/);
    const noMemory = Uint8Array.from([...HEADER, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00]);
    expect(() => shareWasmMemory(noMemory)).toThrow(/expected one memory, found 0/);
    for (const bad of [garbage, noMemory]) expect(() => shareWasmMemory(bad)).toThrow(WasmRewriteError);
  });
});
