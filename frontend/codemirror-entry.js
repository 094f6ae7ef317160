// What static/corpus/editor.js imports from CodeMirror 6: bundled by build.mjs into one
// ES module (static/corpus/vendor/codemirror.js), so the admin loads no CDN and no
// node_modules at run time.
export { EditorState } from "@codemirror/state";
export {
  EditorView,
  keymap,
  lineNumbers,
  drawSelection,
  highlightActiveLine,
  highlightActiveLineGutter,
  placeholder,
} from "@codemirror/view";
export {
  defaultKeymap,
  history,
  historyKeymap,
  indentWithTab,
} from "@codemirror/commands";
export {
  syntaxHighlighting,
  defaultHighlightStyle,
  indentUnit,
  bracketMatching,
} from "@codemirror/language";
export { markdown, markdownLanguage } from "@codemirror/lang-markdown";
