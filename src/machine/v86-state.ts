// Makes v86's save_state and restore_state fast enough for snapshots. v86 packs guest memory page by page
// through `cpu.mem8`, a Proxy that builds a new view of the whole memory on every access, and asks wasm
// whether each 4 KiB page is zero: 8.3 s for a 256 MiB guest on this machine, and 0.8 s back. The same
// format (a bitmap of non-zero pages, then those pages in order) over one plain view takes a fraction of it.
import type { V86 } from "v86";
import { v86Cpu } from "./v86-bus.ts";

const PAGE = 4096;
const FIRST_MIB = 1 << 20;

/** v86's Bitmap as set_state hands it to unpack_memory. */
interface V86Bitmap {
  get(index: number): number;
}

interface V86Packing {
  pack_memory(): { bitmap: { get_buffer(): ArrayBuffer }; packed_memory: Uint8Array };
  unpack_memory(bitmap: V86Bitmap, packed: Uint8Array): void;
}

/**
 * Replaces v86's memory packing. Until the returned function is called (as the CPU first runs), RAM is as
 * v86 built it: zero but for the first MiB (BIOS, real-mode data) and `written` ([start, end) byte ranges
 * it loaded, the boot image), and a restore zeroes pages only there. A restore into a machine that has run
 * checks every page. Either way it writes only pages that change: a fresh machine's pages are never
 * touched, and touching them all (a fill of the whole RAM) made the system commit every one, 2 s for
 * 256 MiB on this machine.
 */
export function fastMemoryPacking(emulator: V86, written: readonly (readonly [number, number])[]): () => void {
  const cpu = v86Cpu(emulator) as ReturnType<typeof v86Cpu> & Partial<V86Packing>;
  if (typeof cpu.pack_memory !== "function" || typeof cpu.unpack_memory !== "function") {
    throw new Error("this v86 build has no cpu.pack_memory/unpack_memory to replace");
  }
  const memory = (): Uint8Array => new Uint8Array(cpu.wasm_memory.buffer, cpu.mem8.byteOffset, cpu.memory_size[0]!);
  cpu.pack_memory = () => {
    const mem = memory();
    const words = new Int32Array(mem.buffer, mem.byteOffset, mem.length >> 2);
    const pages = mem.length / PAGE;
    const bitmap = new Uint8Array((pages + 7) >> 3);
    const nonzero: number[] = [];
    for (let page = 0; page < pages; page++) {
      for (let w = page * (PAGE >> 2), end = w + (PAGE >> 2); w < end; w++) {
        if (words[w] !== 0) {
          nonzero.push(page);
          bitmap[page >> 3]! |= 1 << (page & 7);
          break;
        }
      }
    }
    const packed = new Uint8Array(nonzero.length * PAGE);
    nonzero.forEach((page, i) => packed.set(mem.subarray(page * PAGE, (page + 1) * PAGE), i * PAGE));
    return { bitmap: { get_buffer: () => bitmap.buffer }, packed_memory: packed };
  };
  let ran = false;
  const mayBeWritten = (page: number): boolean => ran || page * PAGE < FIRST_MIB || written.some(([start, end]) => page * PAGE < end && (page + 1) * PAGE > start);
  cpu.unpack_memory = (bitmap, packed) => {
    const mem = memory();
    const words = new Int32Array(mem.buffer, mem.byteOffset, mem.length >> 2);
    for (let page = 0, from = 0; page < mem.length / PAGE; page++) {
      if (bitmap.get(page)) {
        if (from + PAGE > packed.length) throw new Error("v86 state holds fewer pages than its bitmap names");
        mem.set(packed.subarray(from, from + PAGE), page * PAGE);
        from += PAGE;
      } else if (mayBeWritten(page)) {
        for (let w = page * (PAGE >> 2), end = w + (PAGE >> 2); w < end; w++) {
          if (words[w] !== 0) {
            mem.fill(0, page * PAGE, (page + 1) * PAGE);
            break;
          }
        }
      }
    }
  };
  return () => {
    ran = true;
  };
}
