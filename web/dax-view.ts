// The DAX window in the inspector: one cell per 2 MiB range (Linux maps the window in FUSE_DAX_SZ ranges),
// each cell its 512 pages, coloured free / mapped read-only / mapped writable, dirty pages lit. The page
// tables are the Worker's SharedArrayBuffers, read live: guest stores raise no event, so a poll compares
// them with what was last drawn and redraws at the next animation frame only when something changed.
import { DAX_PAGE_MAPPED, DAX_PAGE_SIZE, DAX_PAGE_WRITABLE } from "../src/index.ts";
import type { DaxMapped, DaxShared } from "./protocol.ts";

const MiB = 1 << 20;
const RANGE = 2 * MiB;
const RANGE_PAGES = RANGE / DAX_PAGE_SIZE;
/** A range's pages as a 32 × 16 block, row by row. */
const PAGE_COLS = 32;
const PAGE_ROWS = RANGE_PAGES / PAGE_COLS;
const POLL_MS = 250;
/** CSS pixels: the gap between cells, the tallest cell, the tallest grid. */
const GAP = 2;
const MAX_CELL_HEIGHT = 36;
const MAX_HEIGHT = 120;

const FREE = 0;
const READ_ONLY = 1;
const WRITABLE = 2;
const DIRTY = 3;
/** By page kind; the legend shows the same colours. */
const COLORS = ["#1d252d", "#3f7fa8", "#4f9a6a", "#e0a458"];
const LABELS = ["free", "mapped read-only", "mapped writable", "dirty (not yet written back)"];
const HOVER = "#d8dee4";

const kindOf = (state: number, dirty: number): number =>
  dirty ? DIRTY : state & DAX_PAGE_WRITABLE ? WRITABLE : state & DAX_PAGE_MAPPED ? READ_ONLY : FREE;

const hex = (n: number): string => `0x${n.toString(16).padStart(8, "0")}`;
const bytes = (n: number): string => (n % MiB === 0 ? `${n / MiB} MiB` : `${n / 1024} KiB`);

interface Layout {
  cols: number;
  cellWidth: number;
  cellHeight: number;
}

export class DaxView {
  private readonly canvas: HTMLCanvasElement;
  /** The legend, the counts and the hovered range: shown while there is a window. */
  private readonly details: HTMLElement;
  private readonly counts: HTMLElement;
  private readonly info: HTMLElement;
  private shared: DaxShared | undefined;
  private mappings: DaxMapped[] = [];
  /** The page tables as last drawn. */
  private drawnState = new Uint8Array(0);
  private drawnDirty = new Uint8Array(0);
  private poll: ReturnType<typeof setInterval> | undefined;
  private frame = 0;
  private width = 0;
  private layout: Layout = { cols: 1, cellWidth: 0, cellHeight: 0 };
  /** The range under the pointer, or -1. */
  private hover = -1;

  constructor(root: HTMLElement) {
    this.canvas = root.querySelector("#dax")!;
    this.details = root.querySelector("#dax-details")!;
    this.counts = root.querySelector("#dax-counts")!;
    this.info = root.querySelector("#dax-info")!;
    root.querySelector("#dax-legend")!.replaceChildren(
      ...LABELS.map((label, kind) => {
        const item = document.createElement("span");
        const swatch = document.createElement("i");
        swatch.style.background = COLORS[kind]!;
        item.append(swatch, label);
        return item;
      }),
    );
    // Also fires when the panel is first shown: the canvas has its width only then.
    new ResizeObserver(() => {
      if (this.canvas.clientWidth !== this.width) this.schedule();
    }).observe(this.canvas);
    this.canvas.addEventListener("mousemove", (e) => this.point(this.rangeAt(e.offsetX, e.offsetY)));
    this.canvas.addEventListener("mouseleave", () => this.point(-1));
  }

  /** The Worker's window (undefined: none, or a new Worker is starting). */
  attach(shared: DaxShared | undefined): void {
    clearInterval(this.poll);
    this.shared = shared;
    this.mappings = [];
    this.hover = -1;
    this.drawnState = new Uint8Array(shared?.pageState.length ?? 0);
    this.drawnDirty = new Uint8Array(shared?.dirty.length ?? 0);
    this.poll = shared ? setInterval(() => this.check(), POLL_MS) : undefined;
    this.schedule();
  }

  setMappings(mappings: DaxMapped[]): void {
    this.mappings = mappings;
    this.schedule();
  }

  private schedule(): void {
    this.frame ||= requestAnimationFrame(() => this.draw());
  }

  /** Schedules a draw if the live page tables differ from the drawn ones (not while the panel is hidden). */
  private check(): void {
    const s = this.shared;
    if (!s || this.canvas.clientWidth === 0) return;
    if (differ(s.pageState, this.drawnState) || differ(s.dirty, this.drawnDirty)) this.schedule();
  }

  private draw(): void {
    this.frame = 0;
    this.width = this.canvas.clientWidth;
    if (this.width === 0) return;
    const s = this.shared;
    if (!s) {
      this.drawOff();
      return;
    }
    this.details.hidden = false;
    this.drawnState.set(s.pageState);
    this.drawnDirty.set(s.dirty);
    const ranges = s.size / RANGE;
    const { cols, cellWidth, cellHeight } = (this.layout = layoutFor(ranges, this.width));
    const rows = Math.ceil(ranges / cols);
    const height = rows * cellHeight + (rows - 1) * GAP;
    const ratio = devicePixelRatio || 1;
    this.canvas.style.height = `${height}px`;
    this.canvas.width = Math.round(this.width * ratio);
    this.canvas.height = Math.round(height * ratio);
    const g = this.canvas.getContext("2d");
    if (!g) return;
    // Device pixels, rounded, so page rows and runs meet without seams.
    const px = (v: number): number => Math.round(v * ratio);
    const line = Math.max(1, Math.round(ratio));
    let mapped = 0;
    let dirty = 0;
    for (let r = 0; r < ranges; r++) {
      const x = (r % cols) * (cellWidth + GAP);
      const y = Math.floor(r / cols) * (cellHeight + GAP);
      const [x0, x1, y0, y1] = [px(x), px(x + cellWidth), px(y), px(y + cellHeight)];
      let rangeMapped = false;
      let rangeDirty = 0;
      for (let row = 0; row < PAGE_ROWS; row++) {
        const ya = y0 + Math.round(((y1 - y0) * row) / PAGE_ROWS);
        const yb = y0 + Math.round(((y1 - y0) * (row + 1)) / PAGE_ROWS);
        const first = r * RANGE_PAGES + row * PAGE_COLS;
        // One rectangle per run of pages of one kind.
        let start = 0;
        let kind = kindOf(this.drawnState[first]!, this.drawnDirty[first]!);
        for (let col = 1; col <= PAGE_COLS; col++) {
          const p = first + col;
          const next = col < PAGE_COLS ? kindOf(this.drawnState[p]!, this.drawnDirty[p]!) : -1;
          if (next === kind) continue;
          const xa = x0 + Math.round(((x1 - x0) * start) / PAGE_COLS);
          const xb = x0 + Math.round(((x1 - x0) * col) / PAGE_COLS);
          g.fillStyle = COLORS[kind]!;
          g.fillRect(xa, ya, xb - xa, yb - ya);
          if (kind !== FREE) rangeMapped = true;
          if (kind === DIRTY) rangeDirty += col - start;
          start = col;
          kind = next;
        }
      }
      if (rangeMapped) mapped++;
      dirty += rangeDirty;
      // A few dirty pages in a cell can be thinner than a pixel: the outline shows them anyway.
      if (rangeDirty > 0 || r === this.hover) {
        g.strokeStyle = r === this.hover ? HOVER : COLORS[DIRTY]!;
        g.lineWidth = line;
        g.strokeRect(x0 + line / 2, y0 + line / 2, x1 - x0 - line, y1 - y0 - line);
      }
    }
    const files = new Set(this.mappings.map((m) => m.path ?? m.nodeid ?? -1 - m.moffset)).size;
    this.canvas.dataset.state = "attached";
    this.canvas.dataset.mappedRanges = String(mapped);
    this.canvas.dataset.dirtyPages = String(dirty);
    this.counts.textContent = `${mapped} of ${ranges} ranges mapped · ${files} ${files === 1 ? "file" : "files"} · ${dirty} dirty ${dirty === 1 ? "page" : "pages"} · ${bytes(s.size)} window`;
    this.describe();
  }

  /** No window: the empty grid, and how to get one. */
  private drawOff(): void {
    const ratio = devicePixelRatio || 1;
    this.canvas.style.height = "";
    const width = this.width;
    const height = this.canvas.clientHeight || 52;
    this.canvas.width = Math.round(width * ratio);
    this.canvas.height = Math.round(height * ratio);
    this.canvas.dataset.state = "off";
    this.canvas.dataset.mappedRanges = "0";
    this.canvas.dataset.dirtyPages = "0";
    this.canvas.title = "";
    this.details.hidden = true;
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
    g.fillText("DAX window: off", width / 2, height / 2 - 8);
    g.font = "11px system-ui, sans-serif";
    g.fillText("tick “DAX window” above: the guest then maps files here instead of sending FUSE_READ", width / 2, height / 2 + 9);
  }

  /** The range at CSS pixel (x, y) of the canvas, or -1 (a gap, past the end, no window). */
  private rangeAt(x: number, y: number): number {
    const { cols, cellWidth, cellHeight } = this.layout;
    if (!this.shared || cellWidth === 0 || x < 0 || y < 0) return -1;
    const col = Math.floor(x / (cellWidth + GAP));
    const row = Math.floor(y / (cellHeight + GAP));
    const inside = col < cols && x - col * (cellWidth + GAP) < cellWidth && y - row * (cellHeight + GAP) < cellHeight;
    const r = row * cols + col;
    return inside && r < this.shared.size / RANGE ? r : -1;
  }

  private point(range: number): void {
    if (range === this.hover) return;
    this.hover = range;
    this.schedule();
  }

  /** The hovered range's file, offset and state, beside the canvas and as its tooltip. */
  private describe(): void {
    const r = this.hover;
    const text = r < 0 ? "" : this.rangeText(r);
    this.info.textContent = text || "hover a range to see what it maps";
    this.canvas.title = text;
  }

  private rangeText(r: number): string {
    const lo = r * RANGE;
    const hi = lo + RANGE;
    const head = `range ${r} · window ${hex(lo)}–${hex(hi - 1)}`;
    let dirty = 0;
    let mapped = false;
    for (let p = lo / DAX_PAGE_SIZE; p < hi / DAX_PAGE_SIZE; p++) {
      dirty += this.drawnDirty[p]!;
      mapped ||= (this.drawnState[p]! & DAX_PAGE_MAPPED) !== 0;
    }
    const here = this.mappings.filter((m) => m.moffset < hi && m.moffset + m.length > lo);
    // The mapping list trails the live page tables by up to a poll.
    if (!mapped) return `${head} · free`;
    if (here.length === 0) return `${head} · mapped`;
    const parts = here.map((m) => {
      const from = Math.max(lo, m.moffset);
      const length = Math.min(hi, m.moffset + m.length) - from;
      const file = m.path !== undefined ? `/mnt/${m.path}` : m.nodeid !== undefined ? `node ${m.nodeid}` : "a file the guest forgot";
      const node = m.path !== undefined && m.nodeid !== undefined ? ` (node ${m.nodeid})` : "";
      return `${file}${node}, ${bytes(length)} from file offset ${m.foffset + (from - m.moffset)}, ${m.writable ? "writable" : "read-only"}`;
    });
    return `${head} · ${parts.join("; ")} · ${dirty} dirty ${dirty === 1 ? "page" : "pages"}`;
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

function differ(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return true;
  return false;
}
