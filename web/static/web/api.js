/*
 * The browser's calls to the product API: JSON with the session and its CSRF token
 * (DRF checks CSRF for session callers), answers read as {ok, status, data}, and the
 * text of a problem document (docs/contract.md) for the person looking at the page.
 */

function csrfToken() {
  const meta = document.querySelector("meta[name=csrf-token]");
  if (meta && meta.content) {
    return meta.content;
  }
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

// POST a JSON body. A redirect (a lapsed session sent to the sign-in page) is not
// followed: it answers status 0, which callers read as "signed out".
export async function postJSON(url, body = {}, headers = {}) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    redirect: "manual",
    headers: {
      ...headers,
      "Content-Type": "application/json",
      Accept: "application/json",
      "X-CSRFToken": csrfToken(),
    },
    body: JSON.stringify(body),
  });
  let data = {};
  try {
    data = await response.json();
  } catch {
    // no body, or not JSON (an opaque redirect has neither)
  }
  return { ok: response.ok, status: response.status, data: data ?? {} };
}

// What to tell the person when the API said no: the problem document's detail.
export function problemText(answer, fallback) {
  return (answer.data && answer.data.detail) || fallback || `The server said no (${answer.status}).`;
}

// GET a JSON document with the session; answers {ok, status, data} like postJSON.
export async function getJSON(url) {
  const response = await fetch(url, {
    credentials: "same-origin",
    redirect: "manual",
    headers: { Accept: "application/json" },
  });
  let data = {};
  try {
    data = await response.json();
  } catch {
    // no body, or not JSON
  }
  return { ok: response.ok, status: response.status, data: data ?? {} };
}
