// The DAX window in the inspector: one cell per 2 MiB range (Linux maps the window in FUSE_DAX_SZ ranges),
// each cell its 512 pages, coloured free / mapped read-only / mapped writable / dirty, and the pages whose
// bytes changed lit, fading over a second. Where v86's memory is shared the Worker posted it once: each
// animation frame samples the window's pages there (dax-signature.ts) and compares the live page tables
// with what was drawn, and only ranges that changed or still glow are redrawn. Otherwise the Worker posts
// copies once a second, drawn the same way.
import { DAX_PAGE_MAPPED, DAX_PAGE_SIZE, DAX_PAGE_WRITABLE } from "../src/index.ts";
import { pageSignature } from "./dax-signature.ts";
import type { DaxCopy, DaxMapped, DaxWindowInfo } from "./protocol.ts";

const MiB = 1 << 20;
const RANGE = 2 * MiB;
const RANGE_PAGES = RANGE / DAX_PAGE_SIZE;
/** A range's pages as a 32 × 16 block, row by row. */
const PAGE_COLS = 32;
const PAGE_ROWS = RANGE_PAGES / PAGE_COLS;
/** CSS pixels: the gap between cells, the tallest cell, the tallest grid. */
const GAP = 2;
const MAX_CELL_HEIGHT = 36;
const MAX_HEIGHT = 120;
/** How long a changed page glows; the summary counts the pages changed within it. */
const GLOW_MS = 1000;
const GLOW_LEVELS = 8;
/** Pages sampled per frame: 32 MiB of window, about 0.1 ms; a larger window is swept over several frames. */
const SAMPLES_PER_FRAME = 8192;

const FREE = 0;
const READ_ONLY = 1;
const WRITABLE = 2;
const DIRTY = 3;
/** By page kind; the legend shows the same colours. */
const COLORS = ["#1d252d", "#3f7fa8", "#4f9a6a", "#e0a458"];
const LABELS = ["free", "mapped read-only", "mapped writable", "dirty (not yet written back)"];
const GLOW = "#fff6c2";
const GLOW_LABEL = "bytes changed (glows for a second)";
const HOVER = "#d8dee4";
/** PALETTE[kind * (GLOW_LEVELS + 1) + level]: the kind's colour, lit by `level` of GLOW_LEVELS. */
const PALETTE = COLORS.flatMap((c) => Array.from({ length: GLOW_LEVELS + 1 }, (_, level) => mix(c, GLOW, (0.85 * level) / GLOW_LEVELS)));

const kindOf = (state: number, dirty: number): number =>
  dirty ? DIRTY : state & DAX_PAGE_WRITABLE ? WRITABLE : state & DAX_PAGE_MAPPED ? READ_ONLY : FREE;

const hex = (n: number): string => `0x${n.toString(16).padStart(8, "0")}`;
const bytes = (n: number): string => (n % MiB === 0 ? `${n / MiB} MiB` : `${n / 1024} KiB`);
const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

interface Layout {
  cols: number;
  cellWidth: number;
  cellHeight: number;
}

/** The window's bytes and page tables, read where the Worker keeps them. */
interface Live {
  words: Int32Array;
  pageState: Uint8Array;
  dirty: Uint8Array;
}

export class DaxView {
  private readonly canvas: HTMLCanvasElement;
  /** The legend, the counts, the hovered range and where the picture comes from: shown while there is a window. */
  private readonly details: HTMLElement;
  private readonly counts: HTMLElement;
  private readonly info: HTMLElement;
  private readonly source: HTMLElement;
  /** The window's size in bytes; 0: none. */
  private size = 0;
  /** A new guest is starting with a window (drawn as "off" meanwhile). */
  private starting = false;
  private live: Live | undefined;
  private mappings: DaxMapped[] = [];
  /** The page tables as drawn, and each page's signature as last looked at. */
  private state = new Uint8Array(0);
  private dirty = new Uint8Array(0);
  private signatures = new Int32Array(0);
  /** The next look only records signatures: what changed while nobody looked is not activity. */
  private baseline = true;
  /** The next page to sample. */
  private cursor = 0;
  /** Per page: when its signature last changed (performance.now()). */
  private changedAt = new Float64Array(0);
  /** Per range: when its last changed page stops glowing. */
  private glowUntil = new Float64Array(0);
  /** Per range: 1 when it must be redrawn. */
  private stale = new Uint8Array(0);
  /** Per range, as last drawn: mapped pages, dirty pages, pages changed within GLOW_MS. */
  private mappedIn = new Uint32Array(0);
  private dirtyIn = new Uint32Array(0);
  private changedIn = new Uint32Array(0);
  /** Pages whose signature changed since the window came. */
  private changes = 0;
  private lastDraw = 0;
  /** The canvas must be sized and drawn whole. */
  private full = true;
  /** The counts and the hovered range's text must be rewritten (new mappings). */
  private relabel = false;
  private frame = 0;
  private width = 0;
  private layout: Layout = { cols: 1, cellWidth: 0, cellHeight: 0 };
  /** The range under the pointer, or -1. */
  private hover = -1;
  private summary = "";

  constructor(root: HTMLElement) {
    this.canvas = root.querySelector("#dax")!;
    this.details = root.querySelector("#dax-details")!;
    this.counts = root.querySelector("#dax-counts")!;
    this.info = root.querySelector("#dax-info")!;
    this.source = root.querySelector("#dax-source")!;
    root.querySelector("#dax-legend")!.replaceChildren(
      ...[...COLORS, GLOW].map((color, i) => {
        const item = document.createElement("span");
        const swatch = document.createElement("i");
        swatch.style.background = color;
        item.append(swatch, LABELS[i] ?? GLOW_LABEL);
        return item;
      }),
    );
    // Fires when the panel is shown or hidden (width 0): frames run only while the canvas is on screen.
    new ResizeObserver(() => {
      if (this.canvas.clientWidth === this.width) return;
      this.full = true;
      this.baseline = true;
      this.schedule();
    }).observe(this.canvas);
    this.canvas.addEventListener("mousemove", (e) => this.point(this.rangeAt(e.offsetX, e.offsetY)));
    this.canvas.addEventListener("mouseleave", () => this.point(-1));
  }

  /** A new Worker is starting, with a window to come or none. */
  reset(withWindow: boolean): void {
    this.starting = withWindow;
    this.size = 0;
    this.live = undefined;
    this.open(0);
  }

  /** The Worker's window. */
  attach(window: DaxWindowInfo): void {
    this.starting = false;
    this.size = window.size;
    const l = window.live;
    this.live = l && { words: new Int32Array(l.memory, l.offset, window.size / 4), pageState: l.pageState, dirty: l.dirty };
    this.source.textContent = this.live
      ? "Drawn live from v86's memory, which the page shares with the emulator's Worker."
      : "v86 runs without shared memory (the page is not cross-origin isolated): the window works, and this picture is a copy taken once a second.";
    this.open(window.size / DAX_PAGE_SIZE);
  }

  setMappings(mappings: DaxMapped[]): void {
    this.mappings = mappings;
    this.relabel = true;
    this.schedule();
  }

  /** The window's state from the Worker, when it cannot be read live. */
  applyCopy(copy: DaxCopy): void {
    if (this.size === 0 || this.live) return;
    const now = performance.now();
    if (this.baseline) this.signatures.set(copy.signatures);
    else for (let p = 0; p < this.signatures.length; p++) if (copy.signatures[p] !== this.signatures[p]) this.changed(p, copy.signatures[p]!, now);
    this.baseline = false;
    this.compare(copy.pageState, copy.dirty);
    this.schedule();
  }

  private open(pages: number): void {
    const ranges = pages / RANGE_PAGES;
    this.mappings = [];
    this.hover = -1;
    this.state = new Uint8Array(pages);
    this.dirty = new Uint8Array(pages);
    this.signatures = new Int32Array(pages);
    this.changedAt = new Float64Array(pages).fill(-Infinity);
    this.glowUntil = new Float64Array(ranges).fill(-Infinity);
    this.stale = new Uint8Array(ranges);
    this.mappedIn = new Uint32Array(ranges);
    this.dirtyIn = new Uint32Array(ranges);
    this.changedIn = new Uint32Array(ranges);
    this.changes = 0;
    this.cursor = 0;
    this.baseline = true;
    this.full = true;
    this.schedule();
  }

  private schedule(): void {
    this.frame ||= requestAnimationFrame(() => this.tick());
  }

  /** One animation frame: look at the window, redraw what changed, and keep going while it can change. */
  private tick(): void {
    this.frame = 0;
    const width = this.canvas.clientWidth;
    if (width === 0) {
      this.width = 0; // hidden: the ResizeObserver starts the frames again
      return;
    }
    if (width !== this.width) this.full = true;
    this.width = width;
    if (this.size === 0) {
      if (this.full) this.drawOff();
      this.full = false;
      return;
    }
    const now = performance.now();
    if (this.live) this.look(this.live, now);
    let glowing = false;
    for (let r = 0; r < this.glowUntil.length; r++) {
      // One more draw after the glow ends puts the page's own colour back.
      if (this.glowUntil[r]! < this.lastDraw) continue;
      this.stale[r] = 1;
      glowing = true;
    }
    if (this.full || this.relabel || this.stale.includes(1)) this.draw(now);
    if (this.live || glowing) this.schedule();
  }

  /** Samples the next pages of the live window and compares the live page tables with the drawn ones. */
  private look(live: Live, now: number): void {
    const { words, pageState } = live;
    const pages = this.signatures.length;
    if (this.baseline) {
      for (let p = 0; p < pages; p++) this.signatures[p] = pageSignature(words, pageState, p);
      this.baseline = false;
    } else {
      for (let n = Math.min(pages, SAMPLES_PER_FRAME); n > 0; n--) {
        const p = this.cursor;
        const s = pageSignature(words, pageState, p);
        if (s !== this.signatures[p]) this.changed(p, s, now);
        this.cursor = p + 1 === pages ? 0 : p + 1;
      }
    }
    this.compare(pageState, live.dirty);
  }

  private changed(page: number, signature: number, now: number): void {
    const r = Math.floor(page / RANGE_PAGES);
    this.signatures[page] = signature;
    this.changedAt[page] = now;
    this.glowUntil[r] = now + GLOW_MS;
    this.stale[r] = 1;
    this.changes++;
  }

  /** Takes the ranges whose page tables differ from the drawn ones, and marks them stale. */
  private compare(pageState: Uint8Array, dirty: Uint8Array): void {
    for (let r = 0, lo = 0; r < this.stale.length; r++, lo += RANGE_PAGES) {
      for (let p = lo; p < lo + RANGE_PAGES; p++) {
        if (pageState[p] === this.state[p] && dirty[p] === this.dirty[p]) continue;
        this.state.set(pageState.subarray(lo, lo + RANGE_PAGES), lo);
        this.dirty.set(dirty.subarray(lo, lo + RANGE_PAGES), lo);
        this.stale[r] = 1;
        break;
      }
    }
  }

  private draw(now: number): void {
    const ranges = this.stale.length;
    const ratio = devicePixelRatio || 1;
    if (this.full) {
      this.layout = layoutFor(ranges, this.width);
      const { cols, cellHeight } = this.layout;
      const rows = Math.ceil(ranges / cols);
      const height = rows * cellHeight + (rows - 1) * GAP;
      this.canvas.style.height = `${height}px`;
      this.canvas.width = Math.round(this.width * ratio);
      this.canvas.height = Math.round(height * ratio);
      this.stale.fill(1);
      this.full = false;
    }
    const g = this.canvas.getContext("2d");
    if (!g) return;
    this.details.hidden = false;
    for (let r = 0; r < ranges; r++) {
      if (!this.stale[r]) continue;
      this.stale[r] = 0;
      this.drawRange(g, r, ratio, now);
    }
    this.lastDraw = now;
    this.relabel = false;
    this.summarize();
    this.describe();
  }

  private drawRange(g: CanvasRenderingContext2D, r: number, ratio: number, now: number): void {
    const { cols, cellWidth, cellHeight } = this.layout;
    const x = (r % cols) * (cellWidth + GAP);
    const y = Math.floor(r / cols) * (cellHeight + GAP);
    // Device pixels, rounded, so page rows and runs meet without seams.
    const px = (v: number): number => Math.round(v * ratio);
    const [x0, x1, y0, y1] = [px(x), px(x + cellWidth), px(y), px(y + cellHeight)];
    const colorOf = (p: number): number => {
      const age = now - this.changedAt[p]!;
      const level = age < GLOW_MS ? Math.ceil(GLOW_LEVELS * (1 - age / GLOW_MS)) : 0;
      return kindOf(this.state[p]!, this.dirty[p]!) * (GLOW_LEVELS + 1) + level;
    };
    let mapped = 0;
    let dirty = 0;
    let changed = 0;
    for (let p = r * RANGE_PAGES, end = p + RANGE_PAGES; p < end; p++) {
      if (this.state[p]! & DAX_PAGE_MAPPED) mapped++;
      dirty += this.dirty[p]!;
      if (now - this.changedAt[p]! < GLOW_MS) changed++;
    }
    for (let row = 0; row < PAGE_ROWS; row++) {
      const ya = y0 + Math.round(((y1 - y0) * row) / PAGE_ROWS);
      const yb = y0 + Math.round(((y1 - y0) * (row + 1)) / PAGE_ROWS);
      const first = r * RANGE_PAGES + row * PAGE_COLS;
      // One rectangle per run of pages of one colour.
      let start = 0;
      let color = colorOf(first);
      for (let col = 1; col <= PAGE_COLS; col++) {
        const next = col < PAGE_COLS ? colorOf(first + col) : -1;
        if (next === color) continue;
        const xa = x0 + Math.round(((x1 - x0) * start) / PAGE_COLS);
        const xb = x0 + Math.round(((x1 - x0) * col) / PAGE_COLS);
        g.fillStyle = PALETTE[color]!;
        g.fillRect(xa, ya, xb - xa, yb - ya);
        start = col;
        color = next;
      }
    }
    // A few dirty or changed pages in a cell can be thinner than a pixel: the outline shows them anyway.
    if (dirty > 0 || changed > 0 || r === this.hover) {
      const line = Math.max(1, Math.round(ratio));
      g.strokeStyle = r === this.hover ? HOVER : changed > 0 ? GLOW : COLORS[DIRTY]!;
      g.lineWidth = line;
      g.strokeRect(x0 + line / 2, y0 + line / 2, x1 - x0 - line, y1 - y0 - line);
    }
    this.mappedIn[r] = mapped;
    this.dirtyIn[r] = dirty;
    this.changedIn[r] = changed;
  }

  /** The counts, as text and as data attributes (which the e2e tests read). */
  private summarize(): void {
    const ranges = this.stale.length;
    const mapped = this.mappedIn.reduce((n, m) => n + (m > 0 ? 1 : 0), 0);
    const dirty = this.dirtyIn.reduce((n, d) => n + d, 0);
    const changed = this.changedIn.reduce((n, c) => n + c, 0);
    const files = new Set(this.mappings.map((m) => m.path ?? m.nodeid ?? -1 - m.moffset)).size;
    const d = this.canvas.dataset;
    d.state = "attached";
    d.source = this.live ? "live" : "copy";
    d.mappedRanges = String(mapped);
    d.dirtyPages = String(dirty);
    d.changedPages = String(changed);
    d.pageChanges = String(this.changes);
    const summary = `${mapped} of ${ranges} ranges mapped · ${plural(files, "file")} · ${plural(dirty, "dirty page")} · ${plural(changed, "page")} changed in the last second · ${bytes(this.size)} window`;
    // Text set only when it changed: each change costs the page a layout.
    if (summary !== this.summary) this.counts.textContent = this.summary = summary;
  }

  /** No window: the empty grid, and how to get one. */
  private drawOff(): void {
    const ratio = devicePixelRatio || 1;
    this.canvas.style.height = "";
    const width = this.width;
    const height = this.canvas.clientHeight || 52;
    this.canvas.width = Math.round(width * ratio);
    this.canvas.height = Math.round(height * ratio);
    const d = this.canvas.dataset;
    d.state = "off";
    delete d.source;
    d.mappedRanges = d.dirtyPages = d.changedPages = d.pageChanges = "0";
    this.canvas.title = this.info.textContent = "";
    this.details.hidden = true;
    this.summary = "";
    const g = this.canvas.getContext("2d");
    if (!g) return;
    g.scale(ratio, ratio);
    g.fillStyle = COLORS[FREE]!;
    g.fillRect(0, 0, width, height);
    g.strokeStyle = "#2f3a44";
    for (let x = 0; x <= width; x += width / 32) {
      g.beginPath();
      g.moveTo(Math.round(x) + 0.5, 0);
      g.lineTo(Math.round(x) + 0.5, height);
      g.stroke();
    }
    g.fillStyle = "#8a96a3";
    g.font = "13px system-ui, sans-serif";
    g.textAlign = "center";
    g.textBaseline = "middle";
    g.fillText(this.starting ? "DAX window: waiting for the guest" : "DAX window: off", width / 2, height / 2 - 8);
    g.font = "11px system-ui, sans-serif";
    const hint = this.starting ? "it is drawn here once the shell is up" : "tick “DAX window” above: the guest then maps files here instead of sending FUSE_READ";
    g.fillText(hint, width / 2, height / 2 + 9);
  }

  /** The range at CSS pixel (x, y) of the canvas, or -1 (a gap, past the end, no window). */
  private rangeAt(x: number, y: number): number {
    const { cols, cellWidth, cellHeight } = this.layout;
    if (this.size === 0 || cellWidth === 0 || x < 0 || y < 0) return -1;
    const col = Math.floor(x / (cellWidth + GAP));
    const row = Math.floor(y / (cellHeight + GAP));
    const inside = col < cols && x - col * (cellWidth + GAP) < cellWidth && y - row * (cellHeight + GAP) < cellHeight;
    const r = row * cols + col;
    return inside && r < this.stale.length ? r : -1;
  }

  private point(range: number): void {
    if (range === this.hover) return;
    if (this.hover >= 0) this.stale[this.hover] = 1;
    if (range >= 0) this.stale[range] = 1;
    this.hover = range;
    this.schedule();
  }

  /** The hovered range's file, offset and state, beside the canvas and as its tooltip. */
  private describe(): void {
    const r = this.hover;
    const text = r < 0 ? "" : this.rangeText(r);
    if (text === this.canvas.title && this.info.textContent) return;
    this.info.textContent = text || "hover a range to see what it maps";
    this.canvas.title = text;
  }

  private rangeText(r: number): string {
    const lo = r * RANGE;
    const hi = lo + RANGE;
    const head = `range ${r} · window ${hex(lo)}–${hex(hi - 1)}`;
    const changed = this.changedIn[r]!;
    const activity = changed ? ` · ${plural(changed, "page")} changed in the last second` : "";
    const here = this.mappings.filter((m) => m.moffset < hi && m.moffset + m.length > lo);
    // The mapping list trails the page tables by up to a poll.
    if (!this.mappedIn[r]) return `${head} · free${activity}`;
    if (here.length === 0) return `${head} · mapped${activity}`;
    const parts = here.map((m) => {
      const from = Math.max(lo, m.moffset);
      const length = Math.min(hi, m.moffset + m.length) - from;
      const file = m.path !== undefined ? `/mnt/${m.path}` : m.nodeid !== undefined ? `node ${m.nodeid}` : "a file the guest forgot";
      const node = m.path !== undefined && m.nodeid !== undefined ? ` (node ${m.nodeid})` : "";
      return `${file}${node}, ${bytes(length)} from file offset ${m.foffset + (from - m.moffset)}, ${m.writable ? "writable" : "read-only"}`;
    });
    return `${head} · ${parts.join("; ")} · ${plural(this.dirtyIn[r]!, "dirty page")}${activity}`;
  }
}

/** Cells per row: the fewest that keep the grid within MAX_HEIGHT, cells twice as wide as high at most. */
function layoutFor(ranges: number, width: number): Layout {
  let layout: Layout = { cols: 1, cellWidth: 0, cellHeight: 0 };
  for (const want of [8, 16, 32, 64]) {
    const cols = Math.min(want, ranges);
    const cellWidth = (width - GAP * (cols - 1)) / cols;
    const cellHeight = Math.min(cellWidth / 2, MAX_CELL_HEIGHT);
    layout = { cols, cellWidth, cellHeight };
    const rows = Math.ceil(ranges / cols);
    if (rows * cellHeight + (rows - 1) * GAP <= MAX_HEIGHT) break;
  }
  return layout;
}

/** `a` moved `t` of the way to `b` (#rrggbb). */
function mix(a: string, b: string, t: number): string {
  const channel = (c: string, i: number): number => parseInt(c.slice(1 + 2 * i, 3 + 2 * i), 16);
  const out = [0, 1, 2].map((i) => Math.round(channel(a, i) + (channel(b, i) - channel(a, i)) * t));
  return `#${out.map((v) => v.toString(16).padStart(2, "0")).join("")}`;
}
