// Turns benchmark samples into the markdown table, the JSON record and the SVG plot.
import type { FsResults, Target } from "./fs.ts";

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
