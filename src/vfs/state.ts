// Saved state: what a snapshot (Guest.saveState) keeps of each layer — the device, the FUSE session, a
// backend — as plain values, and one binary encoding for all of them. JSON carries the structure; byte
// arrays travel beside it untouched (a memfs tree is mostly file data), and bigints as decimal strings.

/** A value a layer saves: JSON's values plus bigint and bytes. */
export type Saved = null | boolean | number | string | bigint | Uint8Array | readonly Saved[] | { readonly [key: string]: Saved };

/** Saved bytes that do not parse as what their reader expects. */
export class StateError extends Error {
  override readonly name = "StateError";
}

const BYTES = "$b";
const BIGINT = "$n";

/** `value` as bytes: u32 length of the JSON, the JSON, then every byte array in the order the JSON names them. */
export function encodeState(value: Saved): Uint8Array<ArrayBuffer> {
  const blobs: Uint8Array[] = [];
  const json = new TextEncoder().encode(
    JSON.stringify(value, function (this: Record<string, unknown>, key: string) {
      const v = this[key]; // the raw value: toJSON has not turned bytes into an object of indices yet
      if (v instanceof Uint8Array) return { [BYTES]: blobs.push(v) - 1 };
      if (typeof v === "bigint") return { [BIGINT]: v.toString() };
      return v;
    }),
  );
  const total = 4 + json.length + blobs.reduce((n, b) => n + 4 + b.length, 0);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  view.setUint32(0, json.length, true);
  out.set(json, 4);
  let at = 4 + json.length;
  for (const b of blobs) {
    view.setUint32(at, b.length, true);
    out.set(b, at + 4);
    at += 4 + b.length;
  }
  return out;
}

/** encodeState's bytes back to the value (byte arrays are views into `bytes`); StateError if malformed. */
export function decodeState(bytes: Uint8Array): Saved {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const need = (at: number, n: number): void => {
    if (at + n > bytes.length) throw new StateError("saved state is truncated");
  };
  need(0, 4);
  const jsonLen = view.getUint32(0, true);
  need(4, jsonLen);
  const blobs: Uint8Array[] = [];
  for (let at = 4 + jsonLen; at < bytes.length; ) {
    need(at, 4);
    const n = view.getUint32(at, true);
    need(at + 4, n);
    blobs.push(bytes.subarray(at + 4, at + 4 + n));
    at += 4 + n;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(4, 4 + jsonLen)), (_key, v: unknown) => {
      if (v === null || typeof v !== "object" || Array.isArray(v)) return v;
      const o = v as Record<string, unknown>;
      const keys = Object.keys(o);
      if (keys.length === 1 && keys[0] === BYTES) {
        const blob = typeof o[BYTES] === "number" ? blobs[o[BYTES]] : undefined;
        if (!blob) throw new StateError("saved state names bytes it does not hold");
        return blob;
      }
      if (keys.length === 1 && keys[0] === BIGINT && typeof o[BIGINT] === "string" && /^-?\d+$/.test(o[BIGINT])) return BigInt(o[BIGINT]);
      return v;
    });
  } catch (e) {
    if (e instanceof StateError) throw e;
    throw new StateError(`saved state is not readable: ${e instanceof Error ? e.message : String(e)}`);
  }
  return parsed as Saved;
}

// Readers for saved values: each checks the shape it expects and throws StateError otherwise, so a layer
// restoring its state reads it in one pass without trusting it.

export function record(v: Saved | undefined, what: string): { readonly [key: string]: Saved } {
  if (v === null || typeof v !== "object" || Array.isArray(v) || v instanceof Uint8Array) throw new StateError(`${what}: not a record`);
  return v as { readonly [key: string]: Saved };
}

export function list(v: Saved | undefined, what: string): readonly Saved[] {
  if (!Array.isArray(v)) throw new StateError(`${what}: not a list`);
  return v;
}

/** A safe integer in [min, max]. */
export function int(v: Saved | undefined, what: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) throw new StateError(`${what}: not an integer in [${min}, ${max}]`);
  return v;
}

export function str(v: Saved | undefined, what: string): string {
  if (typeof v !== "string") throw new StateError(`${what}: not a string`);
  return v;
}

export function bool(v: Saved | undefined, what: string): boolean {
  if (typeof v !== "boolean") throw new StateError(`${what}: not a boolean`);
  return v;
}

export function big(v: Saved | undefined, what: string): bigint {
  if (typeof v !== "bigint") throw new StateError(`${what}: not a bigint`);
  return v;
}

export function bytes(v: Saved | undefined, what: string): Uint8Array {
  if (!(v instanceof Uint8Array)) throw new StateError(`${what}: not bytes`);
  return v;
}
