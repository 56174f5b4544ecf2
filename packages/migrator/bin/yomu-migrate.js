#!/usr/bin/env node
// A committed shim so pnpm can link the bin before the first build; the CLI itself is compiled.
// It is also the entry that bundle.mjs bundles into dist/yomu-migrate.mjs for the image.
import { runCli } from "@yomu/migrator/cli";

process.exitCode = await runCli(process.argv.slice(2), process.env);
