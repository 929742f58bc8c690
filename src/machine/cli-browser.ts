// `virtiofs-web run --browser`: the same run in headless Chromium, the way the demo runs its guest (in a
// page's Worker). This process serves the page (lib/headless/, built from web/headless/), the guest images
// and, with --share, the directory as a FileSystem over HTTP; the page posts the command's output and
// status back. Everything is under a random path on 127.0.0.1, so no other local process can reach the share.
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, extname, join, normalize, sep } from "node:path";
import { createRequire } from "node:module";
import { decodeRemote, encodeRemote, serveFileSystem, type RemoteCall } from "../fs/remote.ts";
import type { FileSystem } from "../vfs/filesystem.ts";
import { CHROMIUM_ARGS, CHROMIUM_PATH } from "./chromium.ts";
import type { HeadlessEvent, HeadlessSettings } from "./headless-protocol.ts";
import { DEFAULT_IMAGES_DIR } from "./node-images.ts";

export interface BrowserRun {
  settings: HeadlessSettings;
  /** The shared directory's backend when settings.remoteShare. */
  fs?: FileSystem;
  imagesDir?: string;
  out(stream: "stdout" | "stderr" | "console", bytes: Uint8Array): void;
}

const PAGE_DIR = join(dirname(createRequire(import.meta.url).resolve("virtiofs-web/package.json")), "lib", "headless");
const TYPES: Record<string, string> = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm", ".json": "application/json" };

export class BrowserRunError extends Error {
  override readonly name = "BrowserRunError";
}

/** Runs the command in Chromium and resolves to its exit status. */
export async function runInBrowser(run: BrowserRun): Promise<number> {
  const prefix = `/${randomBytes(16).toString("hex")}/`;
  const fsServer = run.fs && serveFileSystem(run.fs);
  let settle!: (r: { status: number } | { error: string }) => void;
  const finished = new Promise<{ status: number } | { error: string }>((resolve) => (settle = resolve));

  const routes: Record<string, (body: string) => Promise<string> | string> = {
    "settings.json": () => JSON.stringify(run.settings),
    "fs-info": () => encodeRemote(fsServer?.info ?? null),
    fs: async (body) => encodeRemote(fsServer ? await fsServer.answer(decodeRemote(body) as RemoteCall) : { ok: false, message: "no share" }),
    event: (body) => {
      const e = decodeRemote(body) as HeadlessEvent;
      if (e.kind === "done") settle({ status: e.status });
      else if (e.kind === "error") settle({ error: e.message });
      else run.out(e.kind, e.data);
      return "";
    },
  };

  const server = createServer((req, res) => {
    serve(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    if (!path.startsWith(prefix)) return void res.writeHead(404).end();
    const rel = path.slice(prefix.length) || "index.html";
    // The page is cross-origin isolated, as the demo: v86's memory is then a SharedArrayBuffer.
    const headers = { "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp", "Cache-Control": "no-store" };
    const route = routes[rel];
    if (route) {
      const body = req.method === "POST" ? await text(req) : "";
      res.writeHead(200, { ...headers, "Content-Type": "application/json" }).end(await route(body));
      return;
    }
    const file = rel.startsWith("guest/") ? inside(run.imagesDir ?? DEFAULT_IMAGES_DIR, rel.slice(6)) : inside(PAGE_DIR, rel);
    const bytes = file && (await readFile(file).catch(() => undefined));
    if (!bytes) return void res.writeHead(404, headers).end();
    res.writeHead(200, { ...headers, "Content-Type": TYPES[extname(file)] ?? "application/octet-stream" }).end(bytes);
  }

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  let browser: { close(): Promise<void> } | undefined;
  try {
    const { chromium } = await import("playwright-core").catch(() => {
      throw new BrowserRunError("--browser needs the npm package playwright-core");
    });
    const executablePath = CHROMIUM_PATH;
    const b = await chromium.launch({ executablePath, args: CHROMIUM_ARGS, headless: true }).catch((e: unknown) => {
      throw new BrowserRunError(`cannot start Chromium at ${executablePath} (on Debian: apt-get install chromium; or set CHROMIUM_PATH): ${(e as Error).message.split("\n")[0]}`);
    });
    browser = b;
    const page = await b.newPage();
    page.on("pageerror", (e) => settle({ error: e.message }));
    await page.goto(`http://127.0.0.1:${port}${prefix}index.html`);
    const r = await finished;
    if ("error" in r) throw new BrowserRunError(r.error);
    return r.status;
  } finally {
    await browser?.close();
    server.close();
  }
}

/** `rel` under `root`, or undefined if it would leave it. */
function inside(root: string, rel: string): string | undefined {
  const p = normalize(join(root, rel));
  return p.startsWith(root.endsWith(sep) ? root : root + sep) ? p : undefined;
}

async function text(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}
