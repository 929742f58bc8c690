// What one fuzz input is: the guest's side of a session, as concrete steps (its stores to RAM, its register
// accesses, its waits), recorded as they were generated. A replay runs the steps and nothing else, so a saved
// input reproduces whatever the generator has become since.
import { readFile, writeFile } from "node:fs/promises";

export type Width = 1 | 2 | 4;

export type Step =
  /** The guest stores `data` at guest physical `addr` (RAM or the DAX window). */
  | { t: "poke"; addr: number; data: Uint8Array }
  /** An access to BAR 0 (the transport's I/O registers). */
  | { t: "read"; offset: number; width: Width }
  | { t: "write"; offset: number; width: Width; value: number }
  /** Lets the device and the backend run: `turns` event-loop turns, or 0 for until every request is answered. */
  | { t: "settle"; turns: number }
  /** A PCI reset, as a machine reboot does. */
  | { t: "reset" };

export interface FuzzInput {
  backend: string;
  /** Where it came from (seed and index of a run), or what it is (a corpus entry's note). */
  origin: string;
  steps: Step[];
}

type StoredStep = Exclude<Step, { t: "poke" }> | { t: "poke"; addr: number; data: string };

export function encodeInput(input: FuzzInput): string {
  const steps: StoredStep[] = input.steps.map((s) => (s.t === "poke" ? { t: "poke", addr: s.addr, data: Buffer.from(s.data).toString("base64") } : s));
  return JSON.stringify({ ...input, steps }, null, 0).replace(/\},\{/g, "},\n{") + "\n";
}

export function decodeInput(text: string): FuzzInput {
  const raw = JSON.parse(text) as { backend: string; origin: string; steps: StoredStep[] };
  if (typeof raw.backend !== "string" || !Array.isArray(raw.steps)) throw new Error("not a fuzz input");
  const steps = raw.steps.map((s): Step => (s.t === "poke" ? { t: "poke", addr: s.addr, data: new Uint8Array(Buffer.from(s.data, "base64")) } : s));
  return { backend: raw.backend, origin: String(raw.origin ?? ""), steps };
}

export const saveInput = (path: string, input: FuzzInput): Promise<void> => writeFile(path, encodeInput(input));
export const loadInput = async (path: string): Promise<FuzzInput> => decodeInput(await readFile(path, "utf8"));
