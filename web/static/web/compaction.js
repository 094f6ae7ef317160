/*
 * The working-memory page: promote a note (or the part of it left in the box) into the
 * repository's memory, repo.md. "Show the change" asks the server for the diff without
 * storing anything; "Save" stores exactly that change, sending the ETag the diff was made
 * from (If-Match), so an edit someone saved meanwhile is never overwritten.
 */
import { postJSON, problemText } from "./api.js";

const config = JSON.parse(document.getElementById("page-config").textContent);

function diffLines(pre, diff) {
  pre.replaceChildren();
  diff.split("\n").forEach(function (line) {
    let span = document.createElement("span");
    if (line.startsWith("+") && !line.startsWith("+++")) {
      span.className = "diff-add";
    } else if (line.startsWith("-") && !line.startsWith("---")) {
      span.className = "diff-del";
    }
    span.textContent = line + "\n";
    pre.appendChild(span);
  });
  pre.hidden = false;
}

document.querySelectorAll(".promote").forEach(function (box) {
  const source = box.getAttribute("data-source");
  const text = box.querySelector(".promote__text");
  const preview = box.querySelector(".promote__preview");
  const save = box.querySelector(".promote__save");
  const diff = box.querySelector(".promote__diff");
  const said = box.querySelector(".promote__result");
  let etag = null;
  let previewed = null;

  text.addEventListener("input", function () {
    save.hidden = true; // the diff shown is of the old text
  });

  preview.addEventListener("click", async function () {
    said.textContent = "";
    const answer = await postJSON(config.promoteUrl, { source: source, text: text.value });
    if (!answer.ok) {
      said.textContent = problemText(answer);
      return;
    }
    etag = answer.data.etag;
    previewed = text.value;
    diffLines(diff, answer.data.diff);
    save.hidden = false;
  });

  save.addEventListener("click", async function () {
    save.disabled = true;
    const answer = await postJSON(
      config.promoteUrl,
      { source: source, text: previewed, save: true },
      { "If-Match": etag }
    );
    save.disabled = false;
    if (answer.ok) {
      save.hidden = true;
      said.textContent = "Saved into " + answer.data.document.path + " (version " + answer.data.document.version + ").";
    } else if (answer.status === 412) {
      save.hidden = true;
      said.textContent = "repo.md changed since this diff was made: show the change again.";
    } else {
      said.textContent = problemText(answer);
    }
  });
});
