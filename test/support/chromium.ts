// The tests start Chromium as `virtiofs-web run --browser` does.
export { CHROMIUM_ARGS, CHROMIUM_PATH } from "../../src/machine/chromium.ts";
