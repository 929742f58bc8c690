// `virtiofs-web run --browser` in the page's Worker, where the demo runs its guest: fetch the settings and
// the images from the CLI, boot with the share (the CLI's directory over HTTP, or the sample tree), run
// the command, and post its output and status back in order.
import wasmUrl from "v86/build/v86.wasm?url";
import {
  createSampleTree,
  decodeRemote,
  encodeRemote,
  fetchGuestImages,
  Guest,
  MemFs,
  remoteFileSystem,
  type FileSystem,
  type HeadlessEvent,
  type HeadlessSettings,
  type RemoteAnswer,
  type RemoteInfo,
} from "../../src/index.ts";

let base: URL;

async function request(path: string, body?: string): Promise<string> {
  const res = await fetch(new URL(path, base), body === undefined ? {} : { method: "POST", body });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return res.text();
}

let events: Promise<unknown> = Promise.resolve();
const send = (e: HeadlessEvent): Promise<unknown> => (events = events.then(() => request("event", encodeRemote(e))));

async function share(s: HeadlessSettings): Promise<FileSystem> {
  if (!s.remoteShare) {
    const sample = new MemFs();
    await createSampleTree(sample);
    return new MemFs(sample.vol, { readOnly: s.readOnly });
  }
  const info = decodeRemote(await request("fs-info")) as RemoteInfo;
  return remoteFileSystem(info, async (call) => decodeRemote(await request("fs", encodeRemote(call))) as RemoteAnswer);
}

async function run(): Promise<void> {
  const s = JSON.parse(await request("settings.json")) as HeadlessSettings;
  const [images, fs] = await Promise.all([fetchGuestImages(new URL("guest/", base).href, () => {}), share(s)]);
  const guest = await Guest.boot({
    runtime: { images, wasmPath: wasmUrl },
    memoryMiB: s.memoryMiB,
    append: s.append,
    exec: s.exec,
    shares: [{ tag: s.tag, fs, cache: s.cache, writeback: s.writeback, daxMiB: s.daxMiB, daxInodeMinSize: s.daxInodeMinSize, mountPoint: "/mnt" }],
    onConsole: s.verbose ? (b) => void send({ kind: "console", data: b }) : undefined,
    onStdout: (b) => void send({ kind: "stdout", data: b }),
  });
  const r = await guest.waitExec();
  await send({ kind: "stderr", data: r.stderr });
  await send({ kind: "done", status: r.status });
  await guest.shutdown();
}

onmessage = (e: MessageEvent<string>) => {
  base = new URL("./", e.data);
  run().catch((err: unknown) => send({ kind: "error", message: err instanceof Error ? err.message : String(err) }));
};
