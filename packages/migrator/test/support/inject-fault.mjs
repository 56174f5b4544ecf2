// Preloaded into a CLI process by a test (NODE_OPTIONS=--import=…): the first read of a
// migration file throws an error no code path expects, as a bug would.
import fs from "node:fs";
import { syncBuiltinESMExports } from "node:module";

const openSync = fs.openSync;
fs.openSync = (path, ...rest) => {
  if (String(path).endsWith(".sql")) throw new TypeError("injected fault: not a bug of the migration");
  return openSync(path, ...rest);
};
syncBuiltinESMExports();
