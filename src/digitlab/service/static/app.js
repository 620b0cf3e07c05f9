// digitlab's drawing page: strokes in, /api/v1 answers out. No libraries, works offline.
"use strict";

const SIZES = { digit: [280, 280], number: [700, 280] }; // logical canvas pixels per mode
const INK = "#14161a";
const THROTTLE_MS = 150; // at most one prediction per 150 ms while drawing
const $ = (id) => document.getElementById(id);

const canvas = $("canvas");
const overlay = $("overlay");
const ctx = canvas.getContext("2d");
const octx = overlay.getContext("2d");

const state = {
  mode: "digit",
  strokes: [], // each {width, points: [[x, y], ...]} in logical pixels
  drawing: null, // the stroke under the pointer
  background: null, // {bitmap, file} when an image file was opened
  timer: null,
  inFlight: false,
  again: false, // something changed while a request was in flight
  selected: 0, // which digit of a number the bars describe
  last: null, // the last answer, for re-rendering
  boxes: { list: [], fit: { scale: 1, x: 0, y: 0 } }, // outlined on the overlay
  ratio: 0, // device pixels per logical pixel the canvases were sized for
  lastAnnounced: "",
};

// ---------------------------------------------------------------- drawing

function logicalSize() {
  return SIZES[state.mode];
}

function resizeCanvases() {
  const [w, h] = logicalSize();
  const ratio = Math.min(window.devicePixelRatio || 1, 3);
  state.ratio = ratio;
  for (const c of [canvas, overlay]) {
    c.width = Math.round(w * ratio);
    c.height = Math.round(h * ratio);
  }
  $("pad").style.aspectRatio = `${w} / ${h}`;
  $("pad").dataset.mode = state.mode;
  redraw();
  drawBoxes();
}

// Where the picture of an opened file sits in the logical canvas (contained, centred).
function backgroundFit() {
  const [w, h] = logicalSize();
  if (!state.background || !state.background.bitmap) return { scale: 1, x: 0, y: 0 };
  const { width: iw, height: ih } = state.background.bitmap;
  const scale = Math.min(w / iw, h / ih);
  return { scale, x: (w - iw * scale) / 2, y: (h - ih * scale) / 2 };
}

function paint(target, scale) {
  const [w, h] = logicalSize();
  target.setTransform(scale, 0, 0, scale, 0, 0);
  target.fillStyle = "#fff";
  target.fillRect(0, 0, w, h);
  if (state.background && state.background.bitmap) {
    const fit = backgroundFit();
    const b = state.background.bitmap;
    target.drawImage(b, fit.x, fit.y, b.width * fit.scale, b.height * fit.scale);
  }
  target.strokeStyle = target.fillStyle = INK;
  target.lineCap = target.lineJoin = "round";
  for (const stroke of state.strokes) drawStroke(target, stroke);
}

function drawStroke(target, { width, points }) {
  target.lineWidth = width;
  if (points.length === 1) {
    target.beginPath();
    target.arc(points[0][0], points[0][1], width / 2, 0, 2 * Math.PI);
    target.fill();
    return;
  }
  // Quadratic curves through the midpoints: smooth lines from coarse pointer samples.
  target.beginPath();
  target.moveTo(points[0][0], points[0][1]);
  for (let i = 1; i < points.length - 1; i++) {
    const [x, y] = points[i];
    const [nx, ny] = points[i + 1];
    target.quadraticCurveTo(x, y, (x + nx) / 2, (y + ny) / 2);
  }
  const [lx, ly] = points[points.length - 1];
  target.lineTo(lx, ly);
  target.stroke();
}

function redraw() {
  paint(ctx, canvas.width / logicalSize()[0]);
  const empty = !state.strokes.length && !state.background;
  $("hint").hidden = !empty;
  $("undo").disabled = !state.strokes.length;
  $("clear").disabled = empty;
}

function toCanvas(event) {
  const rect = canvas.getBoundingClientRect();
  const [w, h] = logicalSize();
  return [((event.clientX - rect.left) / rect.width) * w, ((event.clientY - rect.top) / rect.height) * h];
}

canvas.addEventListener("pointerdown", (event) => {
  if (event.button !== 0) return;
  event.preventDefault();
  canvas.setPointerCapture(event.pointerId);
  state.drawing = { width: Number($("width").value), points: [toCanvas(event)], pointer: event.pointerId };
  state.strokes.push(state.drawing);
  redraw();
  changed();
});

canvas.addEventListener("pointermove", (event) => {
  const stroke = state.drawing;
  if (!stroke || event.pointerId !== stroke.pointer) return;
  const samples = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
  for (const sample of samples.length ? samples : [event]) stroke.points.push(toCanvas(sample));
  redraw();
  changed();
});

function endStroke(event) {
  if (!state.drawing || event.pointerId !== state.drawing.pointer) return;
  delete state.drawing.pointer;
  state.drawing = null;
  changed();
}
canvas.addEventListener("pointerup", endStroke);
canvas.addEventListener("pointercancel", endStroke);

function undo() {
  if (!state.strokes.length) return;
  state.strokes.pop();
  redraw();
  changed();
}

function clearAll() {
  state.strokes = [];
  state.background = null;
  redraw();
  changed();
}

// ---------------------------------------------------------------- asking the API

function changed() {
  if (state.timer === null) state.timer = setTimeout(predict, THROTTLE_MS);
  setPending();
}

// data-pending="false" once the answer on screen is for the drawing on screen (tests wait on it).
function setPending() {
  const pending = state.timer !== null || state.inFlight;
  $("result").dataset.pending = String(pending);
  $("busy").hidden = !pending;
}

function canvasBlob() {
  const [w, h] = logicalSize();
  const off = document.createElement("canvas");
  off.width = w;
  off.height = h;
  paint(off.getContext("2d"), 1);
  return new Promise((resolve) => off.toBlob(resolve, "image/png"));
}

async function predict() {
  state.timer = null;
  if (state.inFlight) {
    state.again = true;
    return;
  }
  if (!state.strokes.length && !state.background) {
    showEmpty();
    setPending();
    return;
  }
  state.inFlight = true;
  const mode = state.mode;
  const explain = $("explain").checked ? "&explain=true" : "";
  const url = `${mode === "number" ? "/api/v1/predict/number" : "/api/v1/predict"}?top_k=3${explain}`;
  let request;
  let fit = { scale: 1, x: 0, y: 0 }; // answer's pixels → logical canvas pixels
  if (state.background && !state.strokes.length) {
    const form = new FormData();
    form.append("file", state.background.file, state.background.file.name);
    request = { method: "POST", body: form };
    fit = backgroundFit();
  } else {
    request = { method: "POST", body: await canvasBlob(), headers: { "Content-Type": "image/png" } };
  }
  try {
    const response = await fetch(url, request);
    const data = await response.json().catch(() => ({ error: "bad_response", detail: response.statusText }));
    if (mode === state.mode) {
      if (response.ok) show({ ...data, mode, fit });
      else showError(data.detail || data.error || `HTTP ${response.status}`);
    }
  } catch (error) {
    showError(`cannot reach the server (${error.message})`);
  } finally {
    state.inFlight = false;
    if (state.again) {
      state.again = false;
      changed();
    }
    setPending();
  }
}

// ---------------------------------------------------------------- showing answers

function percent(p) {
  return `${(100 * p).toFixed(p >= 0.995 || p < 0.1 ? 1 : 0)}%`;
}

function setAnswer(text, kind, summary) {
  const answer = $("answer");
  answer.textContent = text;
  answer.dataset.state = kind;
  // Say it only when it changes, so screen readers are not flooded while drawing.
  if (`${text}|${summary}` !== state.lastAnnounced) {
    $("summary").textContent = summary;
    state.lastAnnounced = `${text}|${summary}`;
  }
}

/** An element of `tag` with class `className` and, if given, `text` as its text (never markup). */
function element(tag, className, text) {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function buildBars() {
  const bars = $("bars");
  for (let d = 0; d < 10; d++) {
    const li = document.createElement("li");
    const track = element("span", "track");
    track.append(element("span", "fill"));
    li.append(element("span", "digit", String(d)), track, element("span", "pct", "–"));
    bars.append(li);
  }
}

function setBars(probabilities) {
  const top = probabilities ? probabilities.indexOf(Math.max(...probabilities)) : -1;
  [...$("bars").children].forEach((li, d) => {
    const p = probabilities ? probabilities[d] : 0;
    li.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
    li.querySelector(".pct").textContent = probabilities ? percent(p) : "–";
    li.classList.toggle("is-top", d === top);
  });
}

function describeDigit(reading) {
  if (reading.no_digit) return `No digit: ${reading.reason || "nothing to read"}.`;
  return `It looks like a ${reading.label}, ${percent(reading.confidence)} sure.`;
}

function show(data) {
  state.last = data;
  if (data.mode === "number") return showNumber(data);
  $("digits").hidden = true;
  if (data.no_digit) setAnswer("no digit", "none", describeDigit(data));
  else setAnswer(data.label, "digit", describeDigit(data));
  $("seen").src = data.input_png;
  setBars(data.probabilities);
  const box = data.preprocess && data.preprocess.ink_box;
  setBoxes(box ? [{ box, label: "" }] : [], data.fit);
  showWhy(data);
}

// The explanation (?explain=true) over the picture it explains: the drawing, or an opened
// file where it is drawn (contained and centred: data.fit).
function showWhy(data) {
  const why = $("why");
  const size = data && (data.size || (data.preprocess && data.preprocess.size)); // [w, h] of the picture
  if (!data || !data.explanation || !size || !$("explain").checked) {
    why.hidden = true;
    why.removeAttribute("src");
    return;
  }
  const [w, h] = logicalSize();
  const fit = data.fit || { scale: 1, x: 0, y: 0 };
  why.style.left = `${(100 * fit.x) / w}%`;
  why.style.top = `${(100 * fit.y) / h}%`;
  why.style.width = `${(100 * size[0] * fit.scale) / w}%`;
  why.style.height = `${(100 * size[1] * fit.scale) / h}%`;
  why.src = data.explanation;
  why.hidden = false;
}

function showNumber(data) {
  showWhy(data.digits.length ? data : null);
  const digits = data.digits;
  if (!digits.length) {
    setAnswer("no digit", "none", "No digits found.");
    $("digits").hidden = true;
    $("seen").src = blankPixel();
    setBars(null);
    setBoxes([], data.fit);
    return;
  }
  state.selected = Math.min(state.selected, digits.length - 1);
  const summary = data.number
    ? `The number ${data.number}: ${digits.length} digit${digits.length > 1 ? "s" : ""}, ` +
      `the least sure at ${percent(data.confidence)}.`
    : `Read ${data.text}; ? marks a digit the model is not sure of.`;
  setAnswer(data.text, data.number ? "digit" : "unsure", summary);
  const tiles = $("digits");
  tiles.hidden = false;
  tiles.replaceChildren(...digits.map((d, i) => digitTile(d, i)));
  selectDigit(state.selected);
  setBoxes(digits.map((d) => ({ box: d.box, label: d.label ?? "?" })), data.fit);
}

function digitTile(reading, index) {
  const tile = document.createElement("button");
  tile.type = "button";
  tile.className = "tile";
  tile.setAttribute("aria-label", `Digit ${index + 1}: ${describeDigit(reading)} Show its probabilities.`);
  // Built as nodes, never as markup: a label comes from the model's checkpoint, which is data.
  const img = document.createElement("img");
  img.alt = "";
  img.width = 48;
  img.height = 48;
  img.src = reading.input_png;
  tile.append(img, element("span", "tile-digit", String(reading.label ?? "?")),
    element("span", "tile-pct", percent(reading.confidence)));
  tile.addEventListener("click", () => selectDigit(index));
  return tile;
}

function selectDigit(index) {
  const reading = state.last.digits[index];
  state.selected = index;
  [...$("digits").children].forEach((tile, i) => tile.setAttribute("aria-pressed", String(i === index)));
  drawBoxes();
  $("seen").src = reading.input_png;
  setBars(reading.probabilities);
}

function setBoxes(list = [], fit = { scale: 1, x: 0, y: 0 }) {
  state.boxes = { list, fit };
  drawBoxes();
}

function drawBoxes() {
  const { list: boxes, fit } = state.boxes;
  const [w, h] = logicalSize();
  octx.setTransform(overlay.width / w, 0, 0, overlay.width / w, 0, 0);
  octx.clearRect(0, 0, w, h);
  // Logical pixels per CSS pixel: labels and lines keep their on-screen size on any width.
  const css = w / (overlay.getBoundingClientRect().width || w);
  const accent = getComputedStyle(document.documentElement).getPropertyValue("--accent").trim() || "#4f46e5";
  boxes.forEach(({ box, label }, i) => {
    const pad = 4 * css;
    const x = fit.x + box[0] * fit.scale - pad;
    const y = fit.y + box[1] * fit.scale - pad;
    const bw = (box[2] - box[0]) * fit.scale + 2 * pad;
    const bh = (box[3] - box[1]) * fit.scale + 2 * pad;
    octx.lineWidth = 2 * css;
    octx.setLineDash(label ? [] : [6 * css, 5 * css]);
    octx.strokeStyle = accent;
    octx.globalAlpha = label ? 0.9 : 0.45;
    octx.strokeRect(x, y, bw, bh);
    octx.globalAlpha = 1;
    if (!label) return;
    const size = 14 * css;
    octx.font = `600 ${size}px system-ui, sans-serif`;
    const tw = octx.measureText(label).width + size * 0.8;
    const top = Math.max(0, y - size * 1.45);
    octx.globalAlpha = i === state.selected ? 1 : 0.75;
    octx.fillStyle = accent;
    octx.fillRect(x, top, tw, size * 1.45);
    octx.globalAlpha = 1;
    octx.fillStyle = "#fff";
    octx.fillText(label, x + size * 0.4, top + size * 1.08);
  });
}

function blankPixel() {
  return "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7";
}

function showEmpty() {
  state.last = null;
  setAnswer("?", "empty", state.mode === "number" ? "Write a number to start." : "Draw a digit to start.");
  $("seen").src = blankPixel();
  $("digits").hidden = true;
  setBars(null);
  setBoxes();
  showWhy(null);
}

function showError(detail) {
  setAnswer("!", "error", `Error: ${detail}`);
  setBars(null);
  setBoxes();
  showWhy(null);
}

// ---------------------------------------------------------------- files, modes, keys

async function openFile(file) {
  if (!file) return;
  if (file.type && !file.type.startsWith("image/")) {
    showError(`${file.name} is not an image`);
    return;
  }
  let bitmap = null;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    // The browser cannot show it; send it anyway and let the server say what is wrong.
  }
  state.strokes = [];
  state.background = { bitmap, file };
  redraw();
  changed();
}

function setMode(mode) {
  if (mode === state.mode) return;
  state.mode = mode;
  state.selected = 0;
  state.boxes = { list: [], fit: { scale: 1, x: 0, y: 0 } };
  $("mode-digit").setAttribute("aria-pressed", String(mode === "digit"));
  $("mode-number").setAttribute("aria-pressed", String(mode === "number"));
  $("hint").textContent = mode === "number" ? "Write a number here, or drop an image" : "Draw here, or drop an image";
  resizeCanvases();
  changed();
}

async function showModel() {
  try {
    const m = await (await fetch("/api/v1/model")).json();
    const accuracy = m.test_accuracy == null ? "" : ` · ${m.dataset || "mnist"} test accuracy ${(100 * m.test_accuracy).toFixed(2)}%`;
    // A model of another data set (Fashion-MNIST...) names its classes: label the bars with them.
    $("bars").classList.toggle("named", (m.classes || []).some((name) => name.length > 1));
    [...$("bars").children].forEach((li, d) => {
      if (m.classes && m.classes[d] !== undefined) li.querySelector(".digit").textContent = m.classes[d];
    });
    $("model-info").textContent = `Model ${m.name}${m.recipe ? ` (recipe ${m.recipe})` : ""}${accuracy} · digitlab ${m.digitlab_version}`;
  } catch {
    $("model-info").textContent = "Model description unavailable";
  }
}

function wire() {
  $("undo").addEventListener("click", undo);
  $("clear").addEventListener("click", clearAll);
  $("open").addEventListener("click", () => $("file").click());
  $("file").addEventListener("change", (event) => {
    openFile(event.target.files[0]);
    event.target.value = ""; // choosing the same file again still fires
  });
  $("explain").addEventListener("change", changed);
  $("mode-digit").addEventListener("click", () => setMode("digit"));
  $("mode-number").addEventListener("click", () => setMode("number"));
  $("width").addEventListener("input", (event) => {
    $("width-value").textContent = event.target.value;
  });
  const pad = $("pad");
  pad.addEventListener("dragover", (event) => {
    event.preventDefault();
    pad.classList.add("dropping");
  });
  pad.addEventListener("dragleave", () => pad.classList.remove("dropping"));
  pad.addEventListener("drop", (event) => {
    event.preventDefault();
    pad.classList.remove("dropping");
    openFile(event.dataTransfer.files[0]);
  });
  document.addEventListener("keydown", (event) => {
    if (event.target instanceof HTMLInputElement && event.target.type !== "range") return;
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z") {
      event.preventDefault();
      undo();
    } else if (event.key === "Escape") {
      clearAll();
    }
  });
  // Zooming or moving to another screen changes the pixel ratio: keep the ink sharp.
  window.addEventListener("resize", () => {
    if (Math.min(window.devicePixelRatio || 1, 3) !== state.ratio) resizeCanvases();
    else drawBoxes();
  });
}

buildBars();
wire();
resizeCanvases();
showEmpty();
showModel();
