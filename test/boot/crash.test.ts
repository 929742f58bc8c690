// Crash safety on a host directory (bench/crash.ts with a small count; npm run soak -- --kills N runs
// more): the Node process serving the guest is SIGKILLed while the guest writes, renames and syncs; the
// directory must open again, metadata store included, with every reported file intact and none torn.
import { createHash, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { judge, parseFile, runHostdirKills } from "../../bench/crash.ts";

describe("crash safety, host directory", () => {
  it("tells whole, torn and stale files apart", () => {
    const body = Buffer.concat([Buffer.from("7\n"), randomBytes(3000)]);
    const sha = createHash("sha256").update(body).digest("hex");
    const whole = Buffer.concat([body, Buffer.from(`${sha}\n`)]);
    expect(parseFile(whole)).toEqual({ seq: 7, sha });
    expect(parseFile(whole.subarray(0, 2048))).toBeUndefined();
    const reported = [{ name: "r7", seq: 7, sha }];
    expect(judge(reported, new Map([["r7", { seq: 7, sha, mode: 0o100640 }]]))).toEqual([]);
    expect(judge(reported, new Map([["r7", { seq: 15, sha: "0".repeat(64), mode: 0o100640 }]]))).toEqual([]);
    expect(judge(reported, new Map([["r7", { seq: 6, sha, mode: 0o100640 }]]))).toEqual(["r7 went back from seq 7 to 6"]);
    expect(judge(reported, new Map([["r7", undefined]]))).toEqual(["r7 is visible half-written"]);
    // A file written in place may be torn by the kill, unless its fsync was reported returning.
    expect(judge(reported, new Map([["r7", { seq: 7, sha, mode: 0o100640 }], ["u8", undefined]]))).toEqual([]);
    expect(judge([{ name: "u8", seq: 8, sha }], new Map([["u8", undefined]]))).toEqual(["u8 (seq 8) was reported durable and is torn"]);
    expect(judge(reported, new Map())).toEqual(["r7 (seq 7) was reported durable and is gone"]);
  });

  it("5 SIGKILLs at random moments lose no fsynced or synced byte", { timeout: 600_000 }, async () => {
    // Kills from 3 s on: the guest boots in the child first, and on a loaded machine a round takes seconds.
    const r = await runHostdirKills({ kills: 5, seed: 18, minMs: 3_000, maxMs: 10_000 });
    expect(r.problems).toEqual([]);
    expect(r.reported).toBeGreaterThan(0);
    expect(r.bytesIntact).toBeGreaterThan(0);
  });
});
