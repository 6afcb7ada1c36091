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
  input.addEventListener("change", () => {
    forgetPeople(name);
    showPreview(input, $(`${name}-preview`));
  });
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

// Where a photo field's preview and box input are on the page.
function photoField(field) {
  if (field === "source" || field === "pose") {
    const what = field === "source" ? "catalogue photo" : "your photo";
    return { img: $(`${field}-preview`), box: $(`${field}-box`), what };
  }
  for (const row of $("swap-rows").children) {
    if (`swap_${row.querySelector("select").value}` === field) {
      const box = row.querySelector("input.box");
      return { img: row.querySelector("img"), box, what: "garment photo" };
    }
  }
  return null;
}

// A thumbnail of `box` (x, y, w, h in the pixels of the photo as the service read it, whose
// size is `frame`: a large photo is shrunk there) cut from the preview image.
function thumbnail(img, [x, y, w, h], [frameWidth, frameHeight]) {
  const kx = img.naturalWidth / frameWidth, ky = img.naturalHeight / frameHeight;
  [x, w, y, h] = [x * kx, w * kx, y * ky, h * ky];
  const canvas = document.createElement("canvas");
  canvas.width = 48;
  canvas.height = 64;
  const scale = Math.min(canvas.width / w, canvas.height / h);
  const dw = w * scale, dh = h * scale;
  const left = (canvas.width - dw) / 2, top = (canvas.height - dh) / 2;
  canvas.getContext("2d").drawImage(img, x, y, w, h, left, top, dw, dh);
  return canvas;
}

// The people the service found beside the one it used, per photo: a button for each, which
// fills that photo's box field (the next Generate uses that person). A photo whose person
// the user picked keeps its row (the answer to a picked person lists no others).
function showPeople(people) {
  const list = $("people-found");
  for (const row of [...list.children]) {
    const place = photoField(row.dataset.field);
    if (row.dataset.field in people || !place || !place.box.value) row.remove();
  }
  for (const [field, found] of Object.entries(people)) {
    const place = photoField(field);
    if (!place || !place.img.naturalWidth) continue;
    const row = document.createElement("div");
    row.className = "people-row";
    row.dataset.field = field;
    const text = document.createElement("span");
    text.textContent = `People in the ${place.what}:`;
    row.append(text);
    for (const [n, box] of [found.used, ...found.others].entries()) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "person";
      button.dataset.box = box.join(",");
      button.setAttribute("aria-pressed", String(n === 0 && !place.box.value));
      button.title = n === 0 ? "the one used" : `the person in ${box.join(",")}`;
      button.append(thumbnail(place.img, box, found.frame));
      button.addEventListener("click", () => {
        place.box.value = n === 0 ? "" : button.dataset.box;
        for (const b of row.querySelectorAll("button")) {
          b.setAttribute("aria-pressed", String(b === button));
        }
      });
      row.append(button);
    }
    list.append(row);
  }
  list.hidden = list.children.length === 0;
  return Object.keys(people).map((field) => photoField(field)?.what).filter(Boolean);
}

// A new photo: the people found in the old one are no longer on offer.
function forgetPeople(field) {
  for (const row of [...$("people-found").children]) {
    if (row.dataset.field === field) row.remove();
  }
  $("people-found").hidden = $("people-found").children.length === 0;
}

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
  if ($("scale").value) form.append("scale", $("scale").value);
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
    // On the page, the people are thumbnails to click (the note's boxes are for scripts).
    const note = response.headers.get("X-Note");
    const people = JSON.parse(response.headers.get("X-People") || "{}");
    const offered = showPeople(people);
    const several = offered.length
      ? `Several people in the ${offered.join(" and ")}: the highlighted one was used. ` +
        "To use another, click it under \"Photos with several people\" and Generate again."
      : Object.keys(people).length && note ? `Several people: ${note}` : "";
    // A photo whose person lay on their side or upside down (an orientation tag lost) was
    // read turned upright.
    const turned = Object.entries(JSON.parse(response.headers.get("X-Turned") || "{}")).map(
      ([field, turns]) => {
        const what = photoField(field)?.what ?? field;
        const photo = what.startsWith("your ") ? what : `the ${what}`;
        const lay = turns === 2 ? "upside down" : "on their side";
        return `The person in ${photo} lay ${lay}: the photo was read turned upright.`;
      },
    );
    // One photo's person seen from behind, the other's from the front: the card shows the
    // side the catalogue photo shows.
    const behindField = response.headers.get("X-Behind");
    const behindWhat = behindField ? photoField(behindField)?.what ?? behindField : "";
    const behindPhoto = behindWhat.startsWith("your ") ? behindWhat : `the ${behindWhat}`;
    const behind = {
      source: `The person in ${behindPhoto} is seen from behind: the card shows their back ` +
        "where the front should be. Use a photo of the person from the front.",
      pose: `The person in ${behindPhoto} is seen from behind: the card shows the clothes' ` +
        "front on a back view.",
    }[behindField];
    $("note").textContent = [several, ...turned, behind].filter(Boolean).join(" ");
    $("note").hidden = !$("note").textContent;
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
