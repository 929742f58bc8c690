// The page's cheap look at the DAX window: which pages' bytes changed, from 16 sampled words a page.
import { describe, expect, it } from "vitest";
import { DAX_PAGE_MAPPED, DAX_PAGE_SIZE } from "../../src/index.ts";
import { pageSignature, signatures } from "../../web/dax-signature.ts";

const PAGES = 4;

function window(): { bytes: Uint8Array; words: Int32Array; pageState: Uint8Array } {
  const bytes = new Uint8Array(PAGES * DAX_PAGE_SIZE);
  return { bytes, words: new Int32Array(bytes.buffer), pageState: new Uint8Array(PAGES).fill(DAX_PAGE_MAPPED) };
}

describe("pageSignature", () => {
  it("changes with any store of 256 bytes or more, wherever it lands, and with a single sampled word", () => {
    const w = window();
    const before = pageSignature(w.words, w.pageState, 1);
    for (let at = 0; at + 256 <= DAX_PAGE_SIZE; at += 52) {
      const { bytes, words, pageState } = window();
      bytes.fill(0x5a, DAX_PAGE_SIZE + at, DAX_PAGE_SIZE + at + 256);
      expect(pageSignature(words, pageState, 1), `store at ${at}`).not.toBe(before);
      expect(pageSignature(words, pageState, 0)).toBe(0); // the neighbours are untouched
      expect(pageSignature(words, pageState, 2)).toBe(0);
    }
    w.bytes[DAX_PAGE_SIZE + 512] = 1;
    expect(pageSignature(w.words, w.pageState, 1)).not.toBe(before);
  });

  it("tells words apart by position: swapping two changes it", () => {
    const a = window();
    const b = window();
    a.words[0] = 1;
    a.words[64] = 2;
    b.words[0] = 2;
    b.words[64] = 1;
    expect(pageSignature(a.words, a.pageState, 0)).not.toBe(pageSignature(b.words, b.pageState, 0));
  });

  it("is 0 for an unmapped page without reading it, and for a mapped page of zeros", () => {
    const w = window();
    w.bytes.fill(7, 0, DAX_PAGE_SIZE);
    w.pageState[0] = 0;
    expect(signatures(w.words, w.pageState)).toEqual(new Int32Array(PAGES));
  });
});
