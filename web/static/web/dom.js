/*
 * The few DOM helpers every page module shares. Text always goes in with textContent.
 */

// An element with an optional class and text (never parsed as markup).
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined && text !== null && text !== "") {
    node.textContent = String(text);
  }
  return node;
}

// What the server embedded with json_script: the page's config and data.
export function embedded(id) {
  const node = document.getElementById(id);
  return node ? JSON.parse(node.textContent) : null;
}

// A server-given word (a status, a block type) made safe to use in a class name.
export function token(value, pattern = /[^a-z_]/g) {
  return String(value ?? "").replace(pattern, "");
}
