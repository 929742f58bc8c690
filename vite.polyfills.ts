import { nodePolyfills } from "vite-plugin-node-polyfills";

// memfs (the default share) is written for Node: it imports buffer, events, path, stream and url. The
// browser gets browser versions of exactly those, and no global `process`: v86 takes one as the sign that
// it runs in Node. So `stream` is readable-stream 4, which imports what it needs instead of expecting
// Node's globals (stream-browserify's readable-stream 3 reads process.env as it loads).
export const memfsPolyfills = () =>
  nodePolyfills({
    include: ["buffer", "events", "path", "stream", "url"],
    overrides: { stream: "readable-stream" },
    globals: { Buffer: true, global: true, process: false },
  });
