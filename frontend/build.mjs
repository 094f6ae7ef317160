// Builds the admin's vendored browser code into static/ (committed; serving needs no Node):
//   static/corpus/vendor/codemirror.js  CodeMirror 6 with markdown, one minified ES module
//   static/unfold/js/alpine/alpine.js   Alpine's CSP build, in place of the standard build
//                                       django-unfold ships (which needs 'unsafe-eval')
// Run: cd frontend && npm ci && npm run build
import { build } from "esbuild";
import { compileExpressions } from "./alpine-expressions.mjs";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";

const root = new URL("../static/", import.meta.url).pathname;
mkdirSync(root + "corpus/vendor", { recursive: true });
mkdirSync(root + "unfold/js/alpine", { recursive: true });

await build({
  entryPoints: ["codemirror-entry.js"],
  bundle: true,
  format: "esm",
  minify: true,
  target: "es2020",
  legalComments: "none",
  outfile: root + "corpus/vendor/codemirror.js",
});

const licence = (pkg) => readFileSync(`node_modules/${pkg}/LICENSE`, "utf8");
writeFileSync(
  root + "corpus/vendor/LICENSE-codemirror.txt",
  "CodeMirror 6 (@codemirror/*, @lezer/*), bundled in codemirror.js:\n\n" +
    licence("@codemirror/view"),
);
// unfold's templates, from the Python venv of this checkout (`make .venv/.installed`).
const lib = new URL("../.venv/lib/", import.meta.url).pathname;
const python = existsSync(lib) ? readdirSync(lib).find((name) => name.startsWith("python3")) : null;
const templates = python && `${lib}${python}/site-packages/unfold/templates`;
if (!templates) throw new Error("django-unfold is not installed in ../.venv");
const { count, source } = compileExpressions([templates, new URL("../templates/", import.meta.url).pathname]);
// The CSP build, with its evaluator wrapped: an expression found in the table runs as the
// precompiled function (through the CSP build's own path for function expressions, which
// gives it the same scope and magics); any other goes to the CSP interpreter as before.
const csp = readFileSync("node_modules/@alpinejs/csp/dist/cdn.js", "utf8");
const hook = "alpine_default.setEvaluator(cspEvaluator);";
if (!csp.includes(hook)) throw new Error("the CSP build changed: " + hook + " not found");
const wrapped = csp.replace(
  hook,
  `alpine_default.setEvaluator(function (el, expression) {
    var compiled = typeof expression === "string" &&
      ETHER_ALPINE_EXPRESSIONS[expression.replace(/\\s+/g, " ").trim()];
    return cspEvaluator(el, compiled || expression);
  });`,
);
writeFileSync(
  root + "unfold/js/alpine/alpine.js",
  "/* Built by frontend/build.mjs: Alpine's CSP build plus django-unfold's template\n" +
    " * expressions precompiled, so the admin runs without 'unsafe-eval'. Do not edit. */\n" +
    "var ETHER_ALPINE_EXPRESSIONS = " + source + ";\n" + readFileSync("alpine-components.js", "utf8") + wrapped,
);
console.log(`alpine.js: ${count} expressions precompiled`);
// @alpinejs/csp ships no LICENSE file; its package.json says MIT, the licence of Alpine.
const mit = licence("@codemirror/view").replace(/Copyright \(C\)[^\n]*/, "");
writeFileSync(
  root + "unfold/js/alpine/LICENSE-alpine-csp.txt",
  "Alpine.js CSP build (@alpinejs/csp), alpine.js here. MIT licence.\n" +
    "Copyright (c) 2019-present Caleb Porzio and contributors\n" + mit,
);
console.log("built");
