// Precompiles the Alpine.js expressions written in django-unfold's templates, so the admin
// runs under script-src 'self' (no 'unsafe-eval'). Alpine's standard build compiles every
// expression with `new Function` at run time; Alpine's CSP build instead interprets a
// subset (no arrow functions, no globals such as localStorage), which unfold's templates
// go beyond. Here each expression that is fixed text in a template becomes a function in
// a static file; the evaluator (alpineEvaluator in build.mjs) takes it from this table and
// leaves the rest (those with a {{ }} or {% %} inside, all simple) to the CSP build's
// interpreter. `with (this)` keeps Alpine's own scoping: `this` is Alpine's merged scope.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

const EVALUATED = /^(x-data|x-bind|x-init|x-show|x-text|x-html|x-effect|x-if|x-bind:[\w:.-]+|x-on:[\w:.-]+|:[\w:.-]+|@[\w:.-]+|x-sort(:[\w-]+)?|x-resize|x-anchor[\w.-]*|x-intersect[\w.:-]*)$/;
const ATTRIBUTE = /\s((?:x-[\w:.-]+)|(?:@[\w:.-]+)|(?::[\w:.-]+))="([^"]*)"/g;

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : path.endsWith(".html") ? [path] : [];
  });
}

const unescape = (text) =>
  text
    .replaceAll("&quot;", '"')
    .replaceAll("&#39;", "'")
    .replaceAll("&lt;", "<")
    .replaceAll("&gt;", ">")
    .replaceAll("&amp;", "&");

export const normalize = (expression) => expression.replace(/\s+/g, " ").trim();

// `{% if … %}A{% else %}B{% endif %}`, its branches without tags (`open: {% if errors %}true…`,
// `theme({% if theme %}…{% endif %})`): every way it can render, the tags left out.
const CONDITIONAL = /\{% if [^%]*%\}((?:(?!\{%).)*?)(?:\{% else %\}((?:(?!\{%).)*?))?\{% endif %\}/s;

function renderings(raw) {
  const match = raw.match(CONDITIONAL);
  if (!match) return raw.includes("{{") || raw.includes("{%") ? [] : [raw];
  const [tag, yes, no = ""] = match;
  return [yes, no].flatMap((branch) => renderings(raw.replace(tag, branch)));
}

export function compileExpressions(templatesDirs) {
  const table = new Map();
  const sources = templatesDirs.flatMap((dir) => walk(dir));
  for (const file of sources) {
    const text = readFileSync(file, "utf8");
    for (const [, name, template] of text.matchAll(ATTRIBUTE)) {
      if (!EVALUATED.test(name)) continue;
      for (const raw of renderings(template)) {
      const expression = unescape(raw);
      const key = normalize(expression);
      if (!key || table.has(key)) continue;
      let body;
      try {
        new Function(`with (this) { return (${expression}\n) }`);
        body = `with (this) { return (${expression}\n) }`;
      } catch {
        try {
          new Function(`with (this) { ${expression}\n }`);
          body = `with (this) { ${expression}\n }`;
        } catch {
          continue; // not JavaScript (a selector, a config word): the CSP build decides
        }
      }
      table.set(key, `function () { ${body} }`);
      }
    }
  }
  const entries = [...table].map(([key, fn]) => `  ${JSON.stringify(key)}: ${fn}`);
  return { count: table.size, source: `{\n${entries.join(",\n")}\n}` };
}
