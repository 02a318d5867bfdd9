// lstmlens explorer front end: plain DOM, no framework, no external URL. It uses only the
// JSON API of the server. Text from the model or the corpus is only ever set through
// textContent (never innerHTML), so a token such as "<script>" shows as text.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { info: null, sentence: null, states: null, statesInput: null, selStart: null };

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function svg(tag, attrs) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  return e;
}

function showError(msg) {
  const box = $("error");
  box.textContent = msg;
  box.hidden = !msg;
}

async function api(path, body) {
  const opts = body === undefined ? {} : {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) };
  const resp = await fetch(path, opts);
  const data = await resp.json().catch(() => ({ detail: resp.statusText }));
  if (!resp.ok) {
    const d = data.detail;
    const msg = typeof d === "string" ? d : (Array.isArray(d) ? d.map((x) => x.msg).join("; ")
      : resp.statusText);
    throw new Error(msg);
  }
  return data;
}

async function guarded(fn) {
  showError("");
  document.body.classList.add("busy");
  try { await fn(); } catch (e) { showError(e.message || String(e)); }
  finally { document.body.classList.remove("busy"); }
}

// red = pushes towards the explained output, blue = against it (as in the HTML report)
function colour(v, vmax) {
  if (!vmax || !isFinite(v)) return "rgb(255,255,255)";
  const a = Math.max(-1, Math.min(1, v / vmax));
  const w = Math.round(255 * (1 - Math.abs(a)));
  return a >= 0 ? `rgb(255,${w},${w})` : `rgb(${w},${w},255)`;
}

// dark text on light backgrounds, white text on dark ones
function ink(v, vmax) { return vmax && isFinite(v) && Math.abs(v / vmax) > 0.6 ? "#fff" : ""; }

function fixed(v, digits = 3) { return v === null || v === undefined ? "—" : Number(v).toFixed(digits); }

function heat(v, lo, hi) {  // sequential: white → dark blue-green
  const t = hi > lo ? Math.max(0, Math.min(1, (v - lo) / (hi - lo))) : 0.5;
  return `rgb(${Math.round(255 - 230 * t)},${Math.round(255 - 140 * t)},${Math.round(255 - 90 * t)})`;
}

function diverging(v, vmax) { return colour(v, vmax); }

function itemOf(textId, selId) {
  const text = $(textId) ? $(textId).value : "";
  const seq = $(selId) ? $(selId).value : "";
  if (text.trim() || !state.info.reads_text) {
    if (text.trim() && state.info.reads_text) return { text };
  }
  if (seq !== "") return { sequence: Number(seq) };
  return { text };
}

// -- model card and tabs --------------------------------------------------------------
async function init() {
  const info = await api("/api/model");
  state.info = info;
  const layers = info.layers.map((l) => `${l.name}: ${l.num_layers}×${l.hidden_size}` +
    (l.bidirectional ? " bi" : "")).join("; ");
  const acc = info.metrics && info.metrics.test ? Object.entries(info.metrics.test)
    .filter(([, v]) => typeof v === "number").slice(0, 2)
    .map(([k, v]) => `${k} ${v.toFixed(3)}`).join(", ") : "";
  $("model-card").textContent = `${info.name} — ${info.kind}` + (info.task ? `, ${info.task}` : "") +
    ` — ${layers} — ${info.parameters.toLocaleString()} parameters` + (acc ? ` — test ${acc}` : "") +
    ` — corpus: ${info.store ? info.store.tokens.toLocaleString() + " tokens (store)" :
      info.corpus_size + " sequences"}`;
  for (const b of document.querySelectorAll("#tabs button")) {
    if (!info.views.includes(b.dataset.view)) b.hidden = true; else b.hidden = false;
    b.addEventListener("click", () => showView(b.dataset.view));
  }
  for (const m of info.methods) {
    const lab = el("label");
    const cb = el("input");
    cb.type = "checkbox"; cb.value = m; cb.checked = true; cb.className = "method-cb";
    lab.append(cb, " " + m);
    $("method-choice").append(lab);
  }
  const corpus = await api("/api/corpus?limit=200");
  for (const id of ["sentence-sequence", "states-sequence", "forecast-sequence"]) {
    const sel = $(id);
    if (info.reads_text) sel.append(el("option", "— or a corpus sequence —")), sel.lastChild.value = "";
    for (const it of corpus.items) {
      const o = el("option", `#${it.sequence}: ${String(it.preview).slice(0, 70)}`);
      o.value = it.sequence;
      sel.append(o);
    }
  }
  if (!info.reads_text) {
    for (const id of ["sentence-input", "states-input"]) $(id).hidden = true;
  }
  for (const f of info.features) $("feature").append(el("option", f));
  for (const m of info.methods) $("forecast-method").append(el("option", m));
  $("forecast-method").value = "integrated_gradients";
  for (const s of info.series) $("states-series").append(el("option", s));
  $("states-series").value = "cell";
}

function showView(name) {
  for (const b of document.querySelectorAll("#tabs button"))
    b.classList.toggle("active", b.dataset.view === name);
  for (const s of document.querySelectorAll(".view")) s.hidden = s.id !== `view-${name}`;
  showError("");
  if (name === "neurons" && !state.saturationShown) guarded(loadSaturation);
  if (name === "rules" && !state.rulesShown) guarded(loadRules);
  if (name === "evaluation" && !state.evaluationShown) guarded(loadEvaluation);
}

// -- sentence view --------------------------------------------------------------------
async function explainSentence() {
  const methods = [...document.querySelectorAll(".method-cb")].filter((c) => c.checked)
    .map((c) => c.value);
  const item = itemOf("sentence-input", "sentence-sequence");
  const res = await api("/api/explain", { ...item, methods });
  state.sentence = { item, res };
  const p = res.prediction;
  $("prediction").textContent = "";
  const line = el("p");
  line.append(el("b", "prediction: "), el("span", p.label, "pred-label"),
    el("span", p.confidence !== undefined ? ` (p = ${p.confidence.toFixed(3)})` :
      ` (value ${Number(p.value).toPrecision(4)})`));
  if (res.output_token !== undefined) line.append(el("span", ` — output token: ${res.output_token}`));
  $("prediction").append(line);
  const box = $("attributions");
  box.textContent = "";
  for (const [name, m] of Object.entries(res.methods)) {
    const row = el("div", null, "method-row");
    row.dataset.method = name;
    const label = el("span", name, "name");
    label.title = name;
    row.append(label);
    if (m.error) { row.append(el("span", "not applicable: " + m.error, "na")); box.append(row); continue; }
    const vmax = Math.max(...m.scores.map(Math.abs), 1e-12);
    res.tokens.forEach((t, i) => {
      const s = el("span", t, "tok");
      s.style.background = colour(m.scores[i], vmax);
      s.style.color = ink(m.scores[i], vmax);
      s.title = `${name}: ${m.scores[i]}`;
      s.dataset.step = i;
      s.addEventListener("click", () => guarded(() => showGates(i)));
      row.append(s);
    });
    if (m.delta !== null && m.delta !== undefined)
      row.append(el("span", `Δ ${Number(m.delta).toExponential(1)}`, "delta"));
    box.append(row);
  }
}

async function showGates(step) {
  const { item, res } = state.sentence;
  const g = await api("/api/gates", { ...item, step });
  for (const s of document.querySelectorAll("#attributions .tok"))
    s.classList.toggle("sel", Number(s.dataset.step) === step);
  $("gate-panel").hidden = false;
  $("gate-title").textContent = `gates at step ${step}: “${res.tokens[step]}”`;
  const table = $("gate-table");
  table.textContent = "";
  const head = el("tr");
  head.append(el("th", "layer · series"), el("th", "mean"), el("th", "units (0 … H−1)"));
  table.append(head);
  for (const key of g.keys) {
    const v = g.values[key];
    const tr = el("tr");
    tr.dataset.key = key;
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    tr.append(el("td", key), el("td", mean.toFixed(3)));
    const td = el("td");
    const c = el("canvas", null, "strip");
    c.width = Math.min(768, v.length * 6); c.height = 14;
    const ctx = c.getContext("2d");
    const sig = /gate$/.test(key);
    const w = c.width / v.length;
    v.forEach((x, u) => {
      ctx.fillStyle = sig ? heat(x, 0, 1) : diverging(x, 1);
      ctx.fillRect(u * w, 0, Math.ceil(w), 14);
    });
    c.title = `${key}: ${v.length} units`;
    td.append(c);
    tr.append(td);
    table.append(tr);
  }
}

// -- states view ----------------------------------------------------------------------
async function loadStates() {
  const item = itemOf("states-input", "states-sequence");
  const g = await api("/api/gates", item);
  state.states = g;
  state.statesInput = item;
  state.selStart = null;
  const layers = [...new Set(g.keys.map((k) => k.slice(0, k.lastIndexOf("."))))];
  const sel = $("states-layer");
  const keep = sel.value;
  sel.textContent = "";
  for (const l of layers) sel.append(el("option", l));
  const fwd = layers.filter((l) => !l.endsWith(".backward"));
  if (layers.includes(keep)) sel.value = keep; else sel.value = fwd[fwd.length - 1] || layers[0];
  const toks = $("states-tokens");
  toks.textContent = "";
  g.tokens.forEach((t, i) => {
    const s = el("span", t, "tok");
    s.dataset.step = i;
    s.addEventListener("click", (ev) => pickSpan(i, ev.shiftKey));
    toks.append(s);
  });
  drawStates();
}

function pickSpan(i, extend) {
  if (extend && state.selStart !== null) {
    const a = Math.min(state.selStart, i), b = Math.max(state.selStart, i) + 1;
    $("match-start").value = a; $("match-end").value = b;
  } else {
    state.selStart = i;
    $("match-start").value = i; $("match-end").value = i + 1;
  }
  const a = Number($("match-start").value), b = Number($("match-end").value);
  for (const s of document.querySelectorAll("#states-tokens .tok"))
    s.classList.toggle("sel", Number(s.dataset.step) >= a && Number(s.dataset.step) < b);
}

function drawStates() {
  const g = state.states;
  if (!g) return;
  const key = `${$("states-layer").value}.${$("states-series").value}`;
  const v = g.values[key];
  const c = $("states-heatmap");
  const ctx = c.getContext("2d");
  ctx.clearRect(0, 0, c.width, c.height);
  if (!v) { showError(`no series ${key} in this model`); return; }
  const T = v.length, H = v[0].length;
  c.dataset.key = key; c.dataset.units = H; c.dataset.steps = T;
  const w = c.width / T, h = c.height / H;
  const sig = /gate$/.test(key);
  const vmax = sig ? 1 : Math.max(1e-6, ...v.flat().map(Math.abs));
  for (let t = 0; t < T; t++) for (let u = 0; u < H; u++) {
    ctx.fillStyle = sig ? heat(v[t][u], 0, 1) : diverging(v[t][u], vmax);
    ctx.fillRect(t * w, u * h, Math.ceil(w), Math.ceil(h));
  }
  c.onmousemove = (ev) => {
    const r = c.getBoundingClientRect();
    const t = Math.floor((ev.clientX - r.left) / r.width * T);
    const u = Math.floor((ev.clientY - r.top) / r.height * H);
    if (t >= 0 && t < T && u >= 0 && u < H)
      $("states-hover").textContent = `${key} unit ${u}, step ${t} (“${g.tokens[t]}”): ${v[t][u]}`;
  };
}

async function findMatches() {
  if (!state.statesInput) await loadStates();
  const units = $("match-units").value.split(/[\s,]+/).filter((s) => s !== "").map(Number);
  const body = { ...state.statesInput, key: `${$("states-layer").value}.cell`,
    start: Number($("match-start").value), end: Number($("match-end").value),
    threshold: Number($("match-threshold").value), top: 30 };
  if (units.length) body.units = units;
  const res = await api("/api/match", body);
  $("match-summary").textContent = res.message ? res.message :
    `${res.units.length} unit${res.units.length === 1 ? "" : "s"} on over “${res.selected.join(" ")}”: [${res.units.join(", ")}] — ` +
    `${res.matches.length} matches shown` + (res.total !== undefined ? ` of ${res.total}` : "");
  const ol = $("matches");
  ol.textContent = "";
  for (const m of res.matches) {
    const li = el("li", null, "match");
    if (m.before !== undefined) {
      li.append(el("span", `#${m.sequence} ${m.start}:${m.end} `, "muted"),
        el("span", m.before.join(" ") + " "), el("span", m.tokens.join(" "), "hit"),
        el("span", " " + m.after.join(" ")));
    } else {
      li.append(el("span", `document ${m.document}, steps ${m.start}:${m.end} `, "muted"),
        el("span", (m.tokens || []).join(" "), "hit"));
    }
    ol.append(li);
  }
}

// -- neurons view ---------------------------------------------------------------------
async function loadSaturation() {
  const s = await api("/api/neurons/saturation");
  state.saturationShown = true;
  const box = $("saturation");
  box.textContent = "";
  const colours = { input_gate: "#2b6cb0", forget_gate: "#c53030", output_gate: "#2f855a" };
  const layers = [...new Set(Object.keys(s.gates).map((k) => k.slice(0, k.lastIndexOf("."))))];
  for (const layer of layers) {
    const fig = el("figure");
    const S = 220;
    const plot = svg("svg", { width: S + 30, height: S + 40, class: "saturation-plot" });
    plot.append(svg("rect", { x: 20, y: 5, width: S, height: S, fill: "none", stroke: "#999" }));
    plot.append(svg("line", { x1: 20, y1: S + 5, x2: S + 20, y2: 5, stroke: "#ddd" }));
    const axis = (text, attrs) => { const t = svg("text", { "font-size": 11, fill: "#555", ...attrs });
      t.textContent = text; plot.append(t); };
    axis("0", { x: 16, y: S + 18, "text-anchor": "end" });
    axis("1", { x: S + 20, y: S + 18, "text-anchor": "middle" });
    axis("1", { x: 16, y: 14, "text-anchor": "end" });
    axis("fraction of steps < 0.1 (left)", { x: 20 + S / 2, y: S + 32, "text-anchor": "middle" });
    axis("> 0.9 (right)", { x: 12, y: 5 + S / 2, "text-anchor": "middle",
      transform: `rotate(-90 12 ${5 + S / 2})` });
    for (const [key, g] of Object.entries(s.gates)) {
      if (!key.startsWith(layer + ".")) continue;
      const gate = key.slice(layer.length + 1);
      g.left.forEach((l, u) => {
        const dot = svg("circle", { cx: 20 + l * S, cy: 5 + S - g.right[u] * S, r: 2.5,
          fill: colours[gate] || "#555", "fill-opacity": 0.6 });
        const t = svg("title"); t.textContent = `${gate} unit ${u}: left ${l}, right ${g.right[u]}`;
        dot.append(t);
        plot.append(dot);
      });
    }
    fig.append(plot, el("figcaption", `${layer} (blue input, red forget, green output)`, "muted"));
    box.append(fig);
  }
}

async function rankUnits() {
  const r = await api(`/api/neurons/units?feature=${encodeURIComponent($("feature").value)}&k=15`);
  const t = $("units-table");
  t.textContent = "";
  const head = el("tr");
  for (const h of ["#", "unit", r.metric, "sign"]) head.append(el("th", h));
  t.append(head);
  r.units.forEach((u, i) => {
    const tr = el("tr", null, "unit-row");
    tr.append(el("td", i + 1), el("td", u.unit), el("td", fixed(u.score)),
      el("td", u.sign > 0 ? "+" : "−"));
    tr.addEventListener("click", () => {
      $("context-unit").value = u.index; $("context-key").value = u.key;
      guarded(showContexts);
    });
    t.append(tr);
  });
}

async function showContexts() {
  const unit = Number($("context-unit").value);
  const key = $("context-key").value.trim();
  const r = await api(`/api/neurons/contexts?unit=${unit}&k=10` +
    (key ? `&key=${encodeURIComponent(key)}` : ""));
  $("contexts-title").textContent = `Top-activating contexts of ${r.key}[${r.unit}]`;
  const ol = $("contexts");
  ol.textContent = "";
  for (const c of r.contexts) {
    const li = el("li", null, "context");
    c.tokens.forEach((t, i) => li.append(el("span", t, i === c.at ? "hit" : ""), " "));
    li.append(el("span", `(${fixed(c.value)})`, "muted"));
    ol.append(li);
  }
}

// -- rules, automata, evaluation ------------------------------------------------------
async function loadRules() {
  state.rulesShown = true;
  try {
    const r = await api("/api/rules?top=40");
    $("rules-summary").textContent = `${r.rules.length} rules shown (${r.source}); default class ` +
      `${r.default}` + (r.fidelity_on_corpus !== undefined ?
        `; fidelity to the model on the corpus ${(100 * r.fidelity_on_corpus).toFixed(1)}%` : "");
    const t = $("rules-table");
    t.textContent = "";
    const head = el("tr");
    for (const h of ["#", "pattern", "class", "support", "precision"]) head.append(el("th", h));
    t.append(head);
    r.rules.forEach((rule, i) => {
      const tr = el("tr", null, "rule-row");
      tr.append(el("td", i + 1), el("td", rule.pattern.join(" … ")), el("td", rule.class_name),
        el("td", rule.support), el("td", Number(rule.precision).toFixed(3)));
      t.append(tr);
    });
  } catch (e) {
    $("rules-summary").textContent = e.message;
  }
  if (state.info.has_automaton) {
    $("automaton-box").hidden = false;
    $("automaton-summary").textContent = "extracting (this can take a few seconds)…";
    let a;
    try { a = await api("/api/automaton"); } catch (e) {
      $("automaton-summary").textContent = e.message; return;
    }
    $("automaton-summary").textContent = a.summary;
    $("automaton").src = "data:image/svg+xml;base64," +
      btoa(unescape(encodeURIComponent(a.svg)));
  }
}

async function loadEvaluation() {
  state.evaluationShown = true;
  let r;
  try { r = await api("/api/evaluation"); } catch (e) {
    $("evaluation-summary").textContent = e.message; return;
  }
  $("evaluation-summary").textContent = `from ${r.source}; 95% bootstrap intervals in brackets`;
  const methods = Object.keys(r.methods).filter((m) => !r.methods[m].skipped);
  const metrics = [...new Set(methods.flatMap((m) => Object.keys(r.methods[m])))];
  const t = $("evaluation-table");
  t.textContent = "";
  const head = el("tr");
  head.append(el("th", "method"));
  for (const k of metrics) head.append(el("th", `${k} (${(r.better || {})[k] || ""})`));
  t.append(head);
  for (const m of methods) {
    const tr = el("tr");
    tr.append(el("td", m));
    for (const k of metrics) {
      const f = r.methods[m][k];
      tr.append(el("td", f && f.value !== null && f.value !== undefined ?
        `${fixed(f.value)} [${fixed(f.ci_low)}, ${fixed(f.ci_high)}]` : "—"));
    }
    t.append(tr);
  }
  const box = $("evaluation-curves");
  box.textContent = "";
  const names = Object.keys(r.curves || {});
  for (const kind of ["deletion", "insertion"]) {
    const all = names.flatMap((m) => r.curves[m][kind] || []).filter((y) => y !== null);
    if (!all.length) continue;
    const W = 360, H = 220, X = 44;
    const plot = svg("svg", { width: W + X + 180, height: H + 30, class: "curve-plot" });
    plot.append(svg("rect", { x: X, y: 5, width: W, height: H, fill: "none", stroke: "#999" }));
    const lo = Math.min(...all), hi = Math.max(...all);
    for (const [v, y] of [[hi, 14], [lo, H + 5]]) {
      const t = svg("text", { x: X - 4, y, "font-size": 11, fill: "#555", "text-anchor": "end" });
      t.textContent = Number(v).toPrecision(3);
      plot.append(t);
    }
    names.forEach((m, j) => {
      const ys = r.curves[m][kind] || [];
      const pts = ys.map((y, i) => [i, y]).filter(([, y]) => y !== null)
        .map(([i, y]) => `${X + W * i / Math.max(1, ys.length - 1)},` +
        `${5 + H - H * (y - lo) / Math.max(1e-9, hi - lo)}`).join(" ");
      const hue = (j * 47) % 360;
      plot.append(svg("polyline", { points: pts, fill: "none", stroke: `hsl(${hue},60%,45%)`,
        "stroke-width": m === "random" ? 1 : 2, "stroke-dasharray": m === "random" ? "4 3" : "" }));
      const lab = svg("text", { x: X + W + 6, y: 16 + 14 * j, fill: `hsl(${hue},60%,45%)`,
        "font-size": 11, class: "legend" });
      lab.textContent = m;
      plot.append(lab);
    });
    const cap = svg("text", { x: X + 4, y: H + 22, "font-size": 12 });
    cap.textContent = `${kind}: output as the top-ranked tokens are ${kind === "deletion" ?
      "removed" : "inserted"} (x: fraction of tokens)`;
    plot.append(cap);
    box.append(plot);
  }
}

// -- task views -----------------------------------------------------------------------
async function translate() {
  const r = await api("/api/translate", { text: $("translation-input").value });
  $("translation-output").textContent = r.text;
  const c = $("alignment");
  const ctx = c.getContext("2d");
  const rows = r.tokens.length, cols = r.source_tokens.length;
  const left = 110, top = 90;
  const w = Math.max(8, Math.min(40, (c.width - left) / Math.max(1, cols)));
  const h = Math.max(8, Math.min(30, (c.height - top) / Math.max(1, rows)));
  ctx.clearRect(0, 0, c.width, c.height);
  ctx.font = "11px sans-serif";
  ctx.fillStyle = "#222";
  r.source_tokens.forEach((t, j) => {
    ctx.save(); ctx.translate(left + j * w + w / 2, top - 4); ctx.rotate(-Math.PI / 3);
    ctx.fillText(t, 0, 0); ctx.restore();
  });
  r.tokens.forEach((t, i) => {
    ctx.fillStyle = "#222"; ctx.fillText(t, 4, top + i * h + h * 0.7);
    r.attention[i].forEach((a, j) => {
      ctx.fillStyle = heat(a, 0, 1);
      ctx.fillRect(left + j * w, top + i * h, w - 1, h - 1);
    });
  });
  c.dataset.rows = rows; c.dataset.cols = cols;
}

async function forecast() {
  const seq = $("forecast-sequence").value || 0;
  const r = await api(`/api/forecast?sequence=${seq}&method=${
    encodeURIComponent($("forecast-method").value)}`);
  const series = r.window.map((row) => row[0]);
  $("forecast-summary").textContent = `forecast ${r.forecast.map((v) => Number(v).toPrecision(4))
    .join(", ")} — scores by ${r.method}` + (r.delta !== null ? ` (Δ ${Number(r.delta)
      .toExponential(1)})` : "");
  const W = 880, H = 200;
  const all = series.concat(r.forecast);
  const lo = Math.min(...all), hi = Math.max(...all);
  const n = all.length;
  const x = (i) => 10 + W * i / Math.max(1, n - 1);
  const y = (v) => 10 + H - H * (v - lo) / Math.max(1e-9, hi - lo);
  const plot = svg("svg", { width: W + 20, height: H + 20, class: "forecast-plot" });
  plot.append(svg("polyline", { points: series.map((v, i) => `${x(i)},${y(v)}`).join(" "),
    fill: "none", stroke: "#2b6cb0", "stroke-width": 2 }));
  plot.append(svg("polyline", { points: [series.length - 1, ...r.forecast.map((_, k) =>
    series.length + k)].map((i) => `${x(i)},${y(all[i])}`).join(" "), fill: "none",
  stroke: "#c53030", "stroke-width": 2, "stroke-dasharray": "5 3" }));
  $("forecast-chart").textContent = "";
  $("forecast-chart").append(plot);
  $("forecast-caption").textContent = "Chart: the window's first feature (blue) and the " +
    `forecast (red, dashed). Strip: the ${r.method} score of each step (a column under its ` +
    `point of the chart) and feature (rows 0 … ${r.window[0].length - 1}); red raises the ` +
    `forecast of step ${r.step}, blue lowers it.`;
  // the score of step t is drawn under the chart's point t
  const c = $("forecast-heatmap");
  const ctx = c.getContext("2d");
  ctx.clearRect(0, 0, c.width, c.height);
  const T = r.scores.length, F = r.scores[0].length;
  const dx = W / Math.max(1, n - 1);
  const vmax = Math.max(1e-12, ...r.scores.flat().map(Math.abs));
  for (let t = 0; t < T; t++) for (let f = 0; f < F; f++) {
    ctx.fillStyle = diverging(r.scores[t][f], vmax);
    const a = Math.max(0, x(t) - dx / 2), b = Math.min(c.width, x(t) + dx / 2);
    ctx.fillRect(a, f * c.height / F, Math.ceil(b - a), Math.ceil(c.height / F));
  }
}

// -- wiring ---------------------------------------------------------------------------
$("explain-btn").addEventListener("click", () => guarded(explainSentence));
$("sentence-input").addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); guarded(explainSentence); }
});
$("states-btn").addEventListener("click", () => guarded(loadStates));
$("states-layer").addEventListener("change", drawStates);
$("states-series").addEventListener("change", drawStates);
$("match-btn").addEventListener("click", () => guarded(findMatches));
$("units-btn").addEventListener("click", () => guarded(rankUnits));
$("contexts-btn").addEventListener("click", () => guarded(showContexts));
$("translate-btn").addEventListener("click", () => guarded(translate));
$("forecast-btn").addEventListener("click", () => guarded(forecast));
guarded(init).then(() => { document.body.dataset.ready = "1"; });
