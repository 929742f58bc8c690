#!/usr/bin/env node
// The package's command, from its built library (npm run build:lib; prepare runs it on install).
import { runCli } from "virtiofs-web/node";

process.exit(await runCli(process.argv.slice(2)));
