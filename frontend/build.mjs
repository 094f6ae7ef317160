// Builds the admin's vendored browser code into static/ (committed; serving needs no Node):
//   static/corpus/vendor/codemirror.js  CodeMirror 6 with markdown, one minified ES module
//   static/unfold/js/alpine/alpine.js   Alpine's CSP build, in place of the standard build
//                                       django-unfold ships (which needs 'unsafe-eval')
// Run: cd frontend && npm ci && npm run build
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";

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
copyFileSync("node_modules/@alpinejs/csp/dist/cdn.min.js", root + "unfold/js/alpine/alpine.js");
// @alpinejs/csp ships no LICENSE file; its package.json says MIT, the licence of Alpine.
const mit = licence("@codemirror/view").replace(/Copyright \(C\)[^\n]*/, "");
writeFileSync(
  root + "unfold/js/alpine/LICENSE-alpine-csp.txt",
  "Alpine.js CSP build (@alpinejs/csp), alpine.js here. MIT licence.\n" +
    "Copyright (c) 2019-present Caleb Porzio and contributors\n" + mit,
);
console.log("built");
