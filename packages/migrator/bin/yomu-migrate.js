#!/usr/bin/env node
// A committed shim so pnpm can link the bin before the first build; the CLI itself is compiled.
import { runCli } from "../dist/cli.js";

process.exitCode = await runCli(process.argv.slice(2), process.env);
