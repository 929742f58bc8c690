// Turns benchmark samples into the markdown table, the JSON record and the SVG plot.
import { NINEP, TMPFS, type FsResults, type Target } from "./fs.ts";

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const ms = (us: number) => (us / 1000 >= 100 ? (us / 1000).toFixed(0) : (us / 1000).toFixed(1));
const ratio = (a: number, b: number) => (a / b >= 10 ? (a / b).toFixed(0) : (a / b).toFixed(2));

/**
 * Medians in ms per target, then the ratios the goals are set in: 9p ÷ virtio-fs auto (how many times
 * faster than 9p), always ÷ tmpfs (how many times slower than the limit), and the FUSE READ/WRITE path
 * (cache=never) ÷ DAX (above 1: DAX is faster).
 */
export function markdownTable(r: FsResults, targets: Target[]): string {
  const head = `| workload | ${targets.map((t) => t.name).join(" | ")} | 9p ÷ vfs auto | vfs always ÷ tmpfs | vfs never ÷ vfs dax |`;
  const rule = `|---|${targets.map(() => "---:").join("|")}|---:|---:|---:|`;
  const rows = Object.entries(r.samples).map(([w, byTarget]) => {
    const med = (name: string) => median(byTarget[name] ?? [NaN]);
    const cells = targets.map((t) => ms(med(t.name)));
    const ratios = [
      ratio(med(NINEP.name), med("virtio-fs auto")),
      ratio(med("virtio-fs always"), med(TMPFS.name)),
      ratio(med("virtio-fs never"), med("virtio-fs dax")),
    ];
    return `| ${w} | ${cells.join(" | ")} | ${ratios.join("× | ")}× |`;
  });
  return [`Median of ${r.reps} runs, milliseconds, timed inside the guest.`, "", head, rule, ...rows].join("\n");
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
