// Turns benchmark samples into the markdown table, the JSON record and the SVG plot.
import type { FsResults, Target } from "./fs.ts";
import type { LedgerEntry } from "./ledger.ts";

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const ms = (us: number) => (!Number.isFinite(us) ? "–" : us / 1000 >= 100 ? (us / 1000).toFixed(0) : (us / 1000).toFixed(1));
const ratio = (a: number, b: number) => (!Number.isFinite(a / b) ? "–" : `${a / b >= 10 ? (a / b).toFixed(0) : (a / b).toFixed(2)}×`);

/**
 * The ratios the goals are set in, as [numerator, denominator] target ids: above 1, the denominator is
 * faster. 9p ÷ auto and 9p, auto, never ÷ dax: how many times faster virtio-fs (with DAX) is; always and
 * dax ÷ tmpfs: how many times slower than the limit.
 */
const RATIOS: [string, string][] = [
  ["9p", "auto"],
  ["always", "tmpfs"],
  ["9p", "dax"],
  ["auto", "dax"],
  ["never", "dax"],
  ["dax", "tmpfs"],
];

/** Medians in ms per target, then the RATIOS whose two targets ran. */
export function markdownTable(r: FsResults, targets: Target[]): string {
  const byId = new Map(targets.map((t) => [t.id, t]));
  const ratios = RATIOS.flatMap(([a, b]) => {
    const ta = byId.get(a);
    const tb = byId.get(b);
    return ta && tb ? [{ label: `${a} ÷ ${b}`, a: ta, b: tb }] : [];
  });
  const head = `| workload | ${[...targets.map((t) => t.name), ...ratios.map((x) => x.label)].join(" | ")} |`;
  const rule = `|---|${[...targets, ...ratios].map(() => "---:").join("|")}|`;
  const rows = Object.entries(r.samples).map(([w, byTarget]) => {
    const med = (t: Target) => median(byTarget[t.name] ?? [NaN]);
    const cells = [...targets.map((t) => ms(med(t))), ...ratios.map((x) => ratio(med(x.a), med(x.b)))];
    return `| ${w} | ${cells.join(" | ")} |`;
  });
  const lines = [`Median of ${r.reps} runs, milliseconds, timed inside the guest.`, "", head, rule, ...rows];
  const rated = Object.keys(r.samples).filter((w) => r.bytes[w]);
  if (rated.length) {
    lines.push("", "Guest-side MiB/s (file bytes ÷ median time):", "", `| workload | ${targets.map((t) => t.name).join(" | ")} |`, `|---|${targets.map(() => "---:").join("|")}|`);
    for (const w of rated) {
      const cells = targets.map((t) => {
        const mibs = r.bytes[w]! / 2 ** 20 / (median(r.samples[w]![t.name] ?? [NaN]) / 1e6);
        return Number.isFinite(mibs) ? mibs.toFixed(0) : "–";
      });
      lines.push(`| ${w} | ${cells.join(" | ")} |`);
    }
  }
  if (r.pageCacheKiB) {
    const growth = targets.filter((t) => r.pageCacheKiB![t.name] !== undefined).map((t) => `${t.name} ${(r.pageCacheKiB![t.name]! / 1024).toFixed(1)} MiB`);
    lines.push("", `Guest page cache (Cached:) growth reading the 64 MiB file cold: ${growth.join(", ")}.`);
  }
  return lines.join("\n");
}

const sum = (e: LedgerEntry) => Object.values(e.requests).reduce((a, b) => a + b, 0);

/** The median repetition by total requests: a typical run whose per-opcode counts add up. */
function typical(entries: LedgerEntry[] | undefined): LedgerEntry | undefined {
  if (!entries?.length) return undefined;
  return [...entries].sort((a, b) => sum(a) - sum(b))[(entries.length - 1) >> 1];
}
const short = (name: string) => name.replace(/^FUSE_/, "");
const breakdown = (e: LedgerEntry) =>
  Object.entries(e.requests)
    .sort((a, b) => b[1] - a[1])
    .map(([op, n]) => `${short(op)} ${n}`)
    .join(", ");

/**
 * The request ledger: per workload, the floor and the requests each target's typical run sent (FUSE
 * requests; 9P messages for 9p), the guest instructions per request, and the opcodes behind each count.
 */
export function markdownLedger(r: FsResults, targets: Target[]): string {
  if (!r.ledger) return "";
  const served = targets.filter((t) => t.id !== "tmpfs");
  const lines = [
    `Requests per timed run (the run with the median count of ${r.reps}), beside the floor: what a guest that caches names and attributes must send. 9p counts 9P messages.`,
    "",
    `| workload | floor | ${served.map((t) => t.id).join(" | ")} |`,
    `|---|---|${served.map(() => "---:").join("|")}|`,
  ];
  for (const [w, byTarget] of Object.entries(r.ledger)) {
    const floor = r.floors?.[w];
    const cells = served.map((t) => {
      const e = typical(byTarget[t.name]);
      return e ? String(sum(e)) : "–";
    });
    lines.push(`| ${w} | ${floor ? `${floor.requests} (${floor.what})` : "–"} | ${cells.join(" | ")} |`);
  }
  lines.push("", `Guest instructions per request (v86's counter over the timed part ÷ requests; the whole guest: workload, kernel and driver):`, "");
  lines.push(`| workload | ${served.map((t) => t.id).join(" | ")} |`, `|---|${served.map(() => "---:").join("|")}|`);
  for (const [w, byTarget] of Object.entries(r.ledger)) {
    const cells = served.map((t) => {
      const e = typical(byTarget[t.name]);
      // Below 100 requests the figure is the workload's own work, not a cost per request.
      return e && sum(e) >= 100 ? String(Math.round(e.instructions / sum(e))) : "–";
    });
    lines.push(`| ${w} | ${cells.join(" | ")} |`);
  }
  const perStat = r.ledger["null-request"];
  if (perStat) {
    const each = targets.flatMap((t) => {
      const e = typical(perStat[t.name]);
      return e ? [`${t.id} ${Math.round(e.instructions / 2000)}`] : [];
    });
    lines.push("", `null-request, guest instructions per stat: ${each.join(", ")}.`);
    const never = typical(perStat[targets.find((t) => t.id === "never")?.name ?? ""]);
    const tmpfs = typical(perStat[targets.find((t) => t.id === "tmpfs")?.name ?? ""]);
    if (never && tmpfs && sum(never)) {
      const perRequest = (never.instructions - tmpfs.instructions) / sum(never);
      lines.push(`With cache=never a stat sends ${(sum(never) / 2000).toFixed(1)} requests; each costs the guest ${Math.round(perRequest)} instructions more than tmpfs's stat ((never − tmpfs) ÷ requests).`);
    }
  }
  lines.push("", "By opcode:", "");
  for (const [w, byTarget] of Object.entries(r.ledger)) {
    const parts = served.flatMap((t) => {
      const e = typical(byTarget[t.name]);
      return e && sum(e) ? [`${t.id}: ${breakdown(e)}`] : [];
    });
    lines.push(`- ${w}: ${parts.join("; ") || "no requests"}`);
  }
  return lines.join("\n");
}

const COLORS = ["#9ecae1", "#4292c6", "#2171b5", "#08306b", "#756bb1", "#e6550d", "#31a354"];

/** Grouped horizontal bars on a log scale: one group per workload, one bar per target. */
export function svgPlot(r: FsResults, targets: Target[], title: string): string {
  const workloads = Object.keys(r.samples);
  const bar = 9, gap = 10, left = 150, width = 520, top = 40;
  const values = workloads.flatMap((w) => targets.map((t) => median(r.samples[w]![t.name] ?? [1]) / 1000));
  const lo = Math.floor(Math.log10(Math.max(0.1, Math.min(...values))));
  const hi = Math.ceil(Math.log10(Math.max(...values)));
  const x = (v: number) => left + ((Math.log10(Math.max(v, 10 ** lo)) - lo) / (hi - lo)) * width;
  const groupH = targets.length * bar + gap;
  const height = top + workloads.length * groupH + 20 + targets.length * 16;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${left + width + 30}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${left}" y="16" font-size="13" font-weight="bold">${title}</text>`,
  ];
  for (let e = lo; e <= hi; e++) {
    out.push(`<line x1="${x(10 ** e)}" y1="${top - 8}" x2="${x(10 ** e)}" y2="${top + workloads.length * groupH}" stroke="#ddd"/>`);
    out.push(`<text x="${x(10 ** e)}" y="${top - 12}" text-anchor="middle" fill="#666">${10 ** e >= 1 ? 10 ** e : (10 ** e).toFixed(1)} ms</text>`);
  }
  workloads.forEach((w, i) => {
    const y0 = top + i * groupH;
    out.push(`<text x="${left - 6}" y="${y0 + (targets.length * bar) / 2 + 4}" text-anchor="end">${w}</text>`);
    targets.forEach((t, j) => {
      const v = median(r.samples[w]![t.name] ?? [NaN]) / 1000;
      if (Number.isFinite(v)) out.push(`<rect x="${left}" y="${y0 + j * bar}" width="${Math.max(1, x(v) - left)}" height="${bar - 1}" fill="${COLORS[j % COLORS.length]}"><title>${t.name}: ${v.toFixed(1)} ms</title></rect>`);
    });
  });
  targets.forEach((t, j) => {
    const y = top + workloads.length * groupH + 12 + j * 16;
    out.push(`<rect x="${left}" y="${y - 9}" width="10" height="10" fill="${COLORS[j % COLORS.length]}"/><text x="${left + 16}" y="${y}">${t.name}</text>`);
  });
  out.push("</svg>");
  return out.join("\n");
}
