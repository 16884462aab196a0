// The rtagent inspector page: renders the records the inspector sends over /feed.
// No framework and no network access besides this page's own server.
"use strict";

const state = {
  tools: new Map(),       // call_id -> row element
  turns: [],              // {turn, source, first, done}
  tokensIn: 0, tokensOut: 0, cost: 0, pricedAs: new Set(),
  reconnects: 0, toolCount: 0,
  lastRow: null, lastKey: "", lastCount: 0,
};

const $ = (id) => document.getElementById(id);
const fmtTime = (t) => t.toFixed(3) + " s";
const fmtDuration = (s) => (s === null || s === undefined) ? "…" : (s < 1 ? Math.round(s * 1000) + " ms" : s.toFixed(2) + " s");
const short = (value, limit) => {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  if (text === undefined || text === null) return "";
  return text.length > limit ? text.slice(0, limit - 1) + "…" : text;
};

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function reset(title) {
  state.tools.clear(); state.turns = []; state.tokensIn = state.tokensOut = state.cost = 0;
  state.pricedAs.clear(); state.reconnects = 0; state.toolCount = 0;
  state.lastRow = null; state.lastKey = ""; state.lastCount = 0;
  $("tools").tBodies[0].replaceChildren(); $("timeline").replaceChildren(); $("connections").replaceChildren();
  $("title").textContent = title ? "· " + title : "";
  document.title = "rtagent inspector · " + (title || "");
  drawTurns(); summary();
}

function summary() {
  $("turn-count").textContent = state.turns.length;
  $("tool-count").textContent = state.toolCount;
  $("tokens").textContent = state.tokensIn + " / " + state.tokensOut;
  $("cost").textContent = "$" + state.cost.toFixed(4);
  $("priced-as").textContent = state.pricedAs.size ? "at list prices of " + [...state.pricedAs].join(", ") : "";
  $("reconnects").textContent = state.reconnects;
  $("tools-empty").style.display = state.toolCount ? "none" : "";
}

function timeline(record, type, text, cls) {
  const list = $("timeline");
  const key = record.source + "|" + (record.origin || "") + "|" + type;
  if (type.endsWith(".delta") || type === "input_audio_buffer.append") {
    if (state.lastRow && state.lastKey === key) {      // merge streams of deltas into one row
      state.lastCount += 1;
      state.lastRow.querySelector(".count").textContent = " ×" + state.lastCount;
      return;
    }
  }
  const dir = record.origin ? el("span", {class: "dir " + record.origin}, record.origin === "client" ? "→ " : "← ") : "";
  const row = el("li", {class: cls || "", "data-type": type},
    el("span", {class: "t"}, fmtTime(record.t)), el("span", {class: "src"}, record.source), dir,
    el("span", {class: "type"}, type), el("span", {class: "count"}, ""), " ", el("span", {class: "text"}, text || ""),
    el("pre", {}, JSON.stringify(record.data || record, null, 2)));
  row.addEventListener("click", () => row.classList.toggle("open"));
  list.append(row);
  state.lastRow = row; state.lastKey = key; state.lastCount = 1;
  if ($("follow").checked) list.scrollTop = list.scrollHeight;
}

function describe(data) {
  if (!data) return "";
  if (data.delta && typeof data.delta === "string" && data.type !== "response.output_audio.delta") return short(data.delta, 80);
  if (data.item) {
    const item = data.item;
    if (item.type === "message") {
      const parts = (item.content || []).map((c) => c.text || c.transcript || "").join(" ");
      return (item.role || "") + ": " + short(parts, 100);
    }
    if (item.type === "function_call") return item.name + "(" + short(item.arguments || "", 80) + ")";
    if (item.type === "function_call_output") return "output: " + short(item.output || "", 80);
  }
  if (data.response && data.response.status) return data.response.status;
  if (data.error && data.error.message) return data.error.message;
  return "";
}

function onTool(record) {
  let row = state.tools.get(record.call_id);
  if (!row) {
    state.toolCount += 1;
    row = el("tr", {"data-call-id": record.call_id},
      el("td", {class: "mono"}, fmtTime(record.t)), el("td", {}, record.source),
      el("td", {class: "name mono"}, record.name || ""), el("td", {class: "args mono"}, short(record.arguments || "", 200)),
      el("td", {class: "result mono"}, "running…"), el("td", {class: "duration mono"}, "…"));
    row.className = "running";
    $("tools").tBodies[0].append(row);
    state.tools.set(record.call_id, row);
  }
  if (record.name) row.querySelector(".name").textContent = record.name;
  if (record.status === "done") {
    row.className = record.ok === false ? "failed" : "ok";
    row.querySelector(".result").textContent = (record.ok === false ? "✗ " : "→ ") + short(record.output || "", 300);
    row.querySelector(".duration").textContent = fmtDuration(record.duration);
    timeline(record, "tool " + (record.name || ""), (record.ok === false ? "failed: " : "→ ") + short(record.output || "", 80) + " in " + fmtDuration(record.duration), record.ok === false ? "tool error" : "tool");
  } else {
    timeline(record, "tool " + (record.name || ""), "started " + short(record.arguments || "", 80), "tool");
  }
}

function drawTurns() {
  const svg = $("turns");
  svg.replaceChildren();
  const ns = "http://www.w3.org/2000/svg";
  const width = svg.clientWidth || 600, height = 180, left = 44, bottom = 24;
  const turns = state.turns.slice(-40);
  const max = Math.max(0.05, ...turns.map((t) => t.done || 0));
  const add = (tag, attrs, text) => {
    const node = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    svg.append(node); return node;
  };
  add("text", {x: 0, y: 12}, fmtDuration(max));
  add("text", {x: 0, y: height - bottom}, "0");
  const slot = turns.length ? Math.min(60, (width - left) / turns.length) : 60;
  turns.forEach((turn, i) => {
    const x = left + i * slot;
    const scale = (v) => (height - bottom - 8) * (v / max);
    const done = scale(turn.done || 0), first = scale(turn.first || 0);
    const bar = add("rect", {class: "done", x, y: height - bottom - done, width: slot * 0.7, height: done, "data-turn": turn.turn});
    add("title", {}, "turn " + turn.turn + ": first token " + fmtDuration(turn.first) + ", complete " + fmtDuration(turn.done));
    bar.append(svg.lastChild);
    add("rect", {class: "first", x, y: height - bottom - first, width: slot * 0.35, height: first});
    add("text", {x: x + 2, y: height - 8}, "#" + turn.turn);
  });
}

function onRecord(record) {
  switch (record.kind) {
    case "event": {
      const type = record.type || "?";
      timeline(record, type, describe(record.data), type === "error" ? "error" : "");
      break;
    }
    case "tool": onTool(record); break;
    case "usage":
      state.tokensIn += record.input_tokens; state.tokensOut += record.output_tokens; state.cost += record.cost;
      if (record.priced_as) state.pricedAs.add(record.priced_as);
      break;
    case "turn":
      state.turns.push(record);
      timeline(record, "turn " + record.turn, "first token " + fmtDuration(record.first) + ", complete " + fmtDuration(record.done) + (record.rounds ? ", " + record.rounds + " tool round(s)" : ""), "tool");
      drawTurns();
      break;
    case "connection": {
      if (record.state === "reconnected") state.reconnects += 1;
      $("connections").append(el("li", {class: record.state}, fmtTime(record.t) + " " + record.source + ": " + record.state + (record.detail ? " — " + record.detail : "")));
      timeline(record, "connection " + record.state, record.detail, record.state === "lost" ? "error" : "");
      break;
    }
    default:
      timeline(record, record.title || record.kind, record.text || "");
  }
}

function connect() {
  const status = $("status");
  const socket = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/feed");
  socket.onmessage = (message) => {
    const data = JSON.parse(message.data);
    if (data.kind === "hello") reset(data.title);
    for (const record of data.records) onRecord(record);
    summary();
    status.textContent = "live"; status.className = "status live";
    document.body.dataset.records = String(document.querySelectorAll("#timeline li").length);
  };
  socket.onclose = () => {
    status.textContent = "disconnected: retrying…"; status.className = "status closed";
    setTimeout(connect, 1000);
  };
}

window.addEventListener("resize", drawTurns);
connect();
