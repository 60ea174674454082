// Builds a Vellum plugin component from a JavaScript ES module with componentize-js.
// Usage: node componentize.mjs SOURCE.js WIT_DIR OUT.wasm (absolute paths).
// Every WASI feature componentize-js can leave out is left out: a plugin gets no stdio,
// clocks, randomness or HTTP (the host gives the rest a context with no grants).
import { componentize } from "@bytecodealliance/componentize-js";
import { writeFile } from "node:fs/promises";

const [source, wit, out] = process.argv.slice(2);
if (!source || !wit || !out) {
  console.error("usage: node componentize.mjs SOURCE.js WIT_DIR OUT.wasm");
  process.exit(2);
}
try {
  const { component } = await componentize({
    sourcePath: source,
    witPath: wit,
    worldName: "plugin",
    disableFeatures: ["stdio", "random", "clocks", "http", "fetch-event"],
  });
  await writeFile(out, component);
} catch (e) {
  console.error(`componentize-js could not build ${source}: ${e?.message ?? e}`);
  process.exit(1);
}
