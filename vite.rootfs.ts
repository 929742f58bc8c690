import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { join, resolve, sep } from "node:path";
import type { Plugin } from "vite";
import { debianRootDir } from "./src/machine/node-images.ts";

/**
 * Serves the lazy root images the page boots from (`?root=debian`) under `<base>rootfs/<name>/`, straight
 * from where `npm run guest:rootfs` keeps them, in the dev server and in `vite preview`. They are never
 * copied into the build: the Debian image is tens of MB. Any other name under rootfs/ is a 404 (not the
 * SPA fallback's index.html), which the page takes as "not built".
 */
export function rootfsImages(headers: Record<string, string>, images: Record<string, string> = { debian: join(debianRootDir(), "image") }): Plugin {
  let prefix = "/rootfs/";
  const handle = (req: IncomingMessage, res: ServerResponse, next: () => void): void => {
    const path = (req.url ?? "").split("?")[0]!;
    if (!path.startsWith(prefix)) return next();
    void serve(req, res, path.slice(prefix.length));
  };

  async function serve(req: IncomingMessage, res: ServerResponse, rest: string): Promise<void> {
    // A blob fetched with require-corp must carry CORP; the isolation headers keep a directly opened file
    // as isolated as the page.
    for (const [k, v] of Object.entries({ ...headers, "Cross-Origin-Resource-Policy": "same-origin" })) res.setHeader(k, v);
    const fail = (status: number): void => {
      res.statusCode = status;
      res.end();
    };
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("Allow", "GET, HEAD");
      return fail(405);
    }
    const slash = rest.indexOf("/");
    const name = rest.slice(0, Math.max(slash, 0));
    let file: string;
    try {
      file = decodeURIComponent(rest.slice(slash + 1));
    } catch {
      return fail(400);
    }
    const dir = Object.hasOwn(images, name) ? resolve(images[name]!) : undefined;
    const target = dir && resolve(dir, file);
    if (!dir || !target || !target.startsWith(dir + sep) || file.includes("\0")) return fail(404);
    const info = await stat(target).catch(() => undefined);
    if (!info?.isFile()) return fail(404);
    const index = target === join(dir, "index.json");
    res.setHeader("Content-Type", index ? "application/json" : "application/octet-stream");
    res.setHeader("Content-Length", String(info.size));
    // Blobs are named by their sha256; the index changes when the image is rebuilt.
    res.setHeader("Cache-Control", index ? "no-cache" : "public, max-age=31536000, immutable");
    if (req.method === "HEAD") return void res.end();
    createReadStream(target)
      .on("error", () => res.destroy())
      .pipe(res);
  }

  return {
    name: "virtiofs-web:rootfs",
    configResolved(config) {
      prefix = `${config.base.endsWith("/") ? config.base : `${config.base}/`}rootfs/`;
    },
    // Ahead of Vite's own middlewares, so that nothing under rootfs/ falls back to index.html.
    configureServer(server) {
      server.middlewares.use(handle);
    },
    configurePreviewServer(server) {
      server.middlewares.use(handle);
    },
  };
}
