// Which pages of the DAX window changed: a cheap signature per page, compared from one look to the next.
// Reading every byte each frame would cost milliseconds per 16 MiB; 16 words per page, 256 bytes apart,
// cost a sixty-fourth of that and still change with every fill (SETUPMAPPING's file data, REMOVEMAPPING's
// zeros) and every store of 256 bytes or more. Smaller stores show as dirty pages instead.
import { DAX_PAGE_MAPPED, DAX_PAGE_SIZE } from "../src/index.ts";

const PAGE_WORDS = DAX_PAGE_SIZE / 4;
/** Words from one sampled word to the next. */
const STRIDE = 64;

/**
 * Page `p`'s signature: a polynomial hash of its sampled words, which any change of one of them changes.
 * An unmapped page signs 0 unread: the window zeroes what it unmaps, and zeros sign 0 anyway.
 */
export function pageSignature(words: Int32Array, pageState: Uint8Array, p: number): number {
  if (!(pageState[p]! & DAX_PAGE_MAPPED)) return 0;
  let h = 0;
  for (let i = p * PAGE_WORDS, end = i + PAGE_WORDS; i < end; i += STRIDE) h = (Math.imul(h, 31) + words[i]!) | 0;
  return h;
}

/** Every page's signature. */
export function signatures(words: Int32Array, pageState: Uint8Array): Int32Array<ArrayBuffer> {
  const out = new Int32Array(pageState.length);
  for (let p = 0; p < out.length; p++) out[p] = pageSignature(words, pageState, p);
  return out;
}
