// Bundles the CLI into dist/yomu-migrate.mjs, the one file the image's Job runs: resolving ~50
// ES modules one by one cost a no-op `up` more than its own work (bench/migrator). The heavy
// modules only some runs need stay outside it, in node_modules, reached by the dynamic import()
// already in the code: prom-client only when PUSHGATEWAY_URL is set, libpg-query (WASM) only
// when pending migrations need parsing. Runs after tsc, from `pnpm build`.
import { writeFileSync } from "node:fs";
import { build } from "esbuild";

// pg picks its socket factory when it loads, asking first whether it runs on Cloudflare Workers:
// on Node 20, which has no `navigator`, it builds a `Response` to find out, and that loads
// Node's whole fetch implementation (undici, zlib), ~15 ms and ~3 MiB of every run for a socket
// that is always `net.Socket`. The bundle runs on Node only, so it gets pg's Node factory alone;
// test/bundle.test.ts checks that it still offers what pg's own module offers.
const nodeSockets = {
  name: "pg-node-sockets",
  setup(build) {
    build.onLoad({ filter: /[\\/]pg[\\/]lib[\\/]stream\.js$/ }, () => ({
      loader: "js",
      contents: [
        "const net = require('node:net');",
        "const tls = require('node:tls');",
        "module.exports = { getStream: () => new net.Socket(), getSecureStream: (options) => tls.connect(options) };",
      ].join("\n"),
    }));
  },
};

const result = await build({
  entryPoints: { "yomu-migrate": "bin/yomu-migrate.js" },
  bundle: true,
  format: "esm",
  platform: "node",
  target: "node20",
  // Beside dist/cli.js, so the CLI's `../package.json` (read from import.meta.url) still resolves.
  outfile: "dist/yomu-migrate.mjs",
  // libpg-query also loads its .wasm from its own folder; pg-native is pg's optional driver.
  external: ["prom-client", "libpg-query", "pg-native"],
  // pg and prom-client are CommonJS that require() Node built-ins from inside an ES module.
  banner: {
    js: "import { createRequire as __yomuCreateRequire } from 'node:module'; const require = __yomuCreateRequire(import.meta.url);",
  },
  plugins: [nodeSockets],
  metafile: true,
  logLevel: "warning",
});
// What the bundle imports statically and lazily: the test that keeps the no-op path small reads it.
writeFileSync("dist/yomu-migrate.meta.json", JSON.stringify(result.metafile, null, 1));
