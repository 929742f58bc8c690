// The snapshot encoding (src/vfs/state.ts): values come back as they went in, and bytes that are not an
// encoding are a StateError.

import { describe, expect, it } from "vitest";
import { big, bytes, decodeState, encodeState, int, list, record, StateError, type Saved } from "../../src/vfs/state.ts";

describe("saved state encoding", () => {
  it("round-trips bytes, bigints and nested structures", () => {
    const blob = new Uint8Array([0, 1, 2, 255]);
    const value: Saved = {
      n: 42,
      neg: -1.5,
      s: "ünï 🐧",
      t: true,
      none: null,
      big: 2n ** 64n + 1n,
      small: -7n,
      data: blob,
      empty: new Uint8Array(0),
      nested: [{ deep: [blob, 1n, [new Uint8Array([9])]] }, []],
    };
    const back = decodeState(encodeState(value));
    expect(back).toEqual(value);
    const r = record(back, "root");
    expect(big(r.big, "big")).toBe(2n ** 64n + 1n);
    expect(bytes(r.data, "data")).toEqual(blob);
    expect(list(record(list(r.nested, "nested")[0], "first").deep, "deep")[1]).toBe(1n);
  });

  it("encodes bytes beside the JSON, once each, in the order named", () => {
    const a = new Uint8Array(1000).fill(7);
    const encoded = encodeState([a, a.subarray(0, 10)]);
    const jsonLength = new DataView(encoded.buffer).getUint32(0, true);
    expect(encoded.length).toBe(4 + jsonLength + 4 + 1000 + 4 + 10);
    expect(new TextDecoder().decode(encoded.subarray(4, 4 + jsonLength))).toBe('[{"$b":0},{"$b":1}]');
    // Decoded bytes are views into the encoding, not copies.
    const [first] = decodeState(encoded) as Uint8Array[];
    expect(first!.buffer).toBe(encoded.buffer);
  });

  it("takes a top-level byte array or bigint as any other value", () => {
    expect(decodeState(encodeState(new Uint8Array([1, 2])))).toEqual(new Uint8Array([1, 2]));
    expect(decodeState(encodeState(5n))).toBe(5n);
  });

  it("rejects truncated input", () => {
    const encoded = encodeState({ data: new Uint8Array(100), x: 1 });
    for (let cut = 0; cut < encoded.length; cut += 7) expect(() => decodeState(encoded.subarray(0, cut)), `cut at ${cut}`).toThrow(StateError);
    expect(() => decodeState(new Uint8Array(0))).toThrow(StateError);
  });

  it("rejects a byte index out of range and JSON that does not parse", () => {
    const json = (text: string, ...blobs: Uint8Array[]): Uint8Array => {
      const body = new TextEncoder().encode(text);
      const out = new Uint8Array(4 + body.length + blobs.reduce((n, b) => n + 4 + b.length, 0));
      const view = new DataView(out.buffer);
      view.setUint32(0, body.length, true);
      out.set(body, 4);
      let at = 4 + body.length;
      for (const b of blobs) {
        view.setUint32(at, b.length, true);
        out.set(b, at + 4);
        at += 4 + b.length;
      }
      return out;
    };
    expect(decodeState(json('{"$b":0}', new Uint8Array([3])))).toEqual(new Uint8Array([3]));
    expect(() => decodeState(json('{"$b":1}', new Uint8Array([3])))).toThrow(StateError);
    expect(() => decodeState(json('{"$b":-1}', new Uint8Array([3])))).toThrow(StateError);
    expect(() => decodeState(json('{"$b":"0"}', new Uint8Array([3])))).toThrow(StateError);
    expect(() => decodeState(json('{"$b":0}'))).toThrow(StateError);
    expect(() => decodeState(json("{oops"))).toThrow(StateError);
    const notUtf8 = json('"x"');
    notUtf8[5] = 0xff;
    expect(() => decodeState(notUtf8)).toThrow(StateError);
    // "$n" that is no decimal stays a plain record.
    expect(decodeState(json('{"$n":"12x"}'))).toEqual({ $n: "12x" });
  });

  it("has readers that throw StateError on the wrong shape", () => {
    expect(() => record([], "r")).toThrow(StateError);
    expect(() => record(new Uint8Array(1), "r")).toThrow(StateError);
    expect(() => list({}, "l")).toThrow(StateError);
    expect(() => int(1.5, "i")).toThrow(StateError);
    expect(() => int(5, "i", 0, 4)).toThrow(StateError);
    expect(() => big(5, "b")).toThrow(StateError);
    expect(() => bytes([1], "b")).toThrow(StateError);
    expect(() => int(undefined, "i")).toThrow(StateError);
  });
});
