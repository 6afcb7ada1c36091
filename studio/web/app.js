// The page of studio.serve: pick or drop two photos (and optional garment photos), POST them
// to /v1/generate as multipart, show the PNG that comes back and offer it for download.
// Plain browser JavaScript: no build step, nothing loaded from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
const MAX_SWAPS = 3;
const previews = new Map(); // input -> object URL of its preview, revoked on change

function showPreview(input, img) {
  const file = input.files && input.files[0];
  if (previews.has(input)) URL.revokeObjectURL(previews.get(input));
  previews.delete(input);
  if (!file) {
    img.hidden = true;
    img.removeAttribute("src");
  } else {
    const url = URL.createObjectURL(file);
    previews.set(input, url);
    img.src = url;
    img.hidden = false;
  }
  updateButton();
}

function updateButton() {
  const ready = $("source-input").files.length > 0 && $("pose-input").files.length > 0;
  $("generate").disabled = !ready || !$("spinner").hidden;
}

function setFile(input, file) {
  const list = new DataTransfer();
  list.items.add(file);
  input.files = list.files;
  input.dispatchEvent(new Event("change"));
}

function wireDrop(drop) {
  const input = $(drop.dataset.input);
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const file = e.dataTransfer.files[0];
    if (file) setFile(input, file);
  });
}

for (const [name, drop] of [["source", $("source-drop")], ["pose", $("pose-drop")]]) {
  const input = $(`${name}-input`);
  input.addEventListener("change", () => showPreview(input, $(`${name}-preview`)));
  wireDrop(drop);
}

$("add-swap").addEventListener("click", () => {
  const rows = $("swap-rows");
  if (rows.children.length >= MAX_SWAPS) return;
  const row = $("swap-template").content.firstElementChild.cloneNode(true);
  const input = row.querySelector("input[type=file]");
  input.addEventListener("change", () => showPreview(input, row.querySelector("img")));
  row.querySelector(".remove").addEventListener("click", () => {
    if (previews.has(input)) URL.revokeObjectURL(previews.get(input));
    previews.delete(input);
    row.remove();
    $("add-swap").disabled = false;
  });
  rows.append(row);
  $("add-swap").disabled = rows.children.length >= MAX_SWAPS;
});

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
}

let resultUrl = null;

$("form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData();
  form.append("source", $("source-input").files[0]);
  form.append("pose", $("pose-input").files[0]);
  for (const row of $("swap-rows").children) {
    const file = row.querySelector("input[type=file]").files[0];
    if (!file) continue;
    const field = `swap_${row.querySelector("select").value}`;
    form.append(field, file);
    const box = row.querySelector("input.box").value.trim();
    if (box) form.append(`${field}_box`, box);
  }
  if ($("backdrop").value) form.append("backdrop", $("backdrop").value);
  if ($("framing").value) form.append("framing", $("framing").value);
  for (const role of ["source", "pose"]) {
    const box = $(`${role}-box`).value.trim();
    if (box) form.append(`${role}_box`, box);
  }
  $("error").hidden = true;
  $("result").hidden = true;
  $("spinner").hidden = false;
  updateButton();
  try {
    const response = await fetch("/v1/generate", { method: "POST", body: form });
    if (!response.ok) {
      let detail = `${response.status} ${response.statusText}`;
      try { detail = (await response.json()).detail || detail; } catch (_) { /* not JSON */ }
      if (response.status === 429) detail += " (the service is busy: try again in a moment)";
      showError(detail);
      return;
    }
    const blob = await response.blob();
    if (resultUrl) URL.revokeObjectURL(resultUrl);
    resultUrl = URL.createObjectURL(blob);
    // The service says when its results cannot be trusted (a bundle trained on synthetic
    // people only, shown a real photo): the note stays beside the result.
    const warning = response.headers.get("X-Warning");
    $("warning").textContent = warning ? `Note: ${warning}.` : "";
    $("warning").hidden = !warning;
    // A photo with several people: which one was used, and the others' boxes to pick from.
    const note = response.headers.get("X-Note");
    $("note").textContent = note ? `Several people: ${note}` : "";
    $("note").hidden = !note;
    $("result-image").src = resultUrl;
    $("download").href = resultUrl;
    $("result").hidden = false;
  } catch (err) {
    showError(`Could not reach the service: ${err.message}`);
  } finally {
    $("spinner").hidden = true;
    updateButton();
  }
});
