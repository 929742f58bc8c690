// The package as a user gets it: `npm pack`, installed into an empty directory, then used from there —
// the Node API, the command, and the HTML example built with Vite and booted in Chromium. Nothing here
// reaches into the source tree.
import { execFile } from "node:child_process";
import { cp, mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { extname, join } from "node:path";
import { promisify } from "node:util";
import { chromium } from "@playwright/test";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CHROMIUM_ARGS, CHROMIUM_PATH } from "../support/chromium.ts";

const exec = promisify(execFile);
const repo = new URL("../..", import.meta.url).pathname;
const versionOf = async (pkg: string): Promise<string> => (JSON.parse(await readFile(join(repo, "node_modules", pkg, "package.json"), "utf8")) as { version: string }).version;

describe("the packed package, installed in an empty directory", () => {
  let app: string;
  beforeAll(async () => {
    const tmp = await mkdtemp(join(tmpdir(), "vfsw-pkg-"));
    const { stdout } = await exec("npm", ["pack", "--silent", "--pack-destination", tmp], { cwd: repo, maxBuffer: 1 << 24 });
    const tarball = join(tmp, stdout.trim().split("\n").pop()!);
    app = join(tmp, "app");
    await mkdir(app);
    await writeFile(join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
    // What the examples import themselves: v86 and Vite, at the versions this repository tests with.
    await exec("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", tarball, `v86@${await versionOf("v86")}`, `vite@${await versionOf("vite")}`], {
      cwd: app,
      maxBuffer: 1 << 24,
    });
    await cp(join(app, "node_modules/virtiofs-web/examples"), join(app, "examples"), { recursive: true });
  }, 300_000);

  it("ships built JavaScript, types and the guest images, and no TypeScript sources", async () => {
    const pkg = join(app, "node_modules/virtiofs-web");
    for (const f of ["lib/src/index.js", "lib/src/index.d.ts", "lib/src/node.js", "lib/browser/index.js", "lib/headless/index.html", "public/guest/bzImage", "public/guest/manifest.json"]) {
      await expect(readFile(join(pkg, f)).then(() => f)).resolves.toBe(f);
    }
    await expect(readFile(join(pkg, "src/index.ts"))).rejects.toThrow();
  });

  it("imports from Node and boots a guest on a shared directory (examples/node)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "vfsw-share-"));
    await writeFile(join(dir, "x"), "shared from Node\n");
    const { stdout } = await exec(process.execPath, ["examples/node/share-dir.mjs", dir, "cat /mnt/x; uname -m"], { cwd: app });
    expect(stdout).toBe("shared from Node\ni686\n");
  });

  it("runs the command: npx virtiofs-web run --exec 'uname -m'", async () => {
    const { stdout } = await exec("npx", ["virtiofs-web", "run", "--exec", "uname -m"], { cwd: app });
    expect(stdout).toBe("i686\n");
  });

  describe("the HTML example, built with Vite, in Chromium", () => {
    let server: Server;
    let url: string;
    beforeAll(async () => {
      await exec("npx", ["vite", "build", "examples/browser", "--outDir", "../../dist", "--emptyOutDir"], { cwd: app, maxBuffer: 1 << 24 });
      server = staticServer(join(app, "dist"));
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/index.html`;
    }, 120_000);
    afterAll(() => server?.close());

    it("boots stock v86 with the memfs share mounted on /mnt", async () => {
      const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
      try {
        const page = await browser.newPage();
        await page.goto(url);
        const console = page.locator("#console");
        await expect.poll(() => console.textContent(), { timeout: 60_000 }).toMatch(/~ # /); // the shell prompt (busybox then asks the terminal for its cursor)
        await page.locator("#line").fill("cat /mnt/hello.txt; grep -c ' /mnt virtiofs' /proc/mounts");
        await page.locator("#line").press("Enter");
        await expect.poll(() => console.textContent(), { timeout: 30_000 }).toMatch(/Hello from the page!\r?\n1\r?\n/);
      } finally {
        await browser.close();
      }
    });
  });
});

const TYPES: Record<string, string> = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm" };

function staticServer(root: string): Server {
  return createServer((req, res) => {
    const path = join(root, new URL(req.url ?? "/", "http://x").pathname);
    readFile(path).then(
      (bytes) => res.writeHead(200, { "Content-Type": TYPES[extname(path)] ?? "application/octet-stream" }).end(bytes),
      () => res.writeHead(404).end(),
    );
  });
}
