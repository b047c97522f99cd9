// statuspipe dashboard: fetches /dashboard/data, draws the chart and tables, runs the live feed.
// No framework and nothing from another origin: the page works without the internet.
"use strict";

const REFRESH_MS = 15000;
const FEED_MAX = 100;
const SVG = "http://www.w3.org/2000/svg";

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = String(text);
  return node;
}

function fillRows(tableId, rows, cells, empty) {
  const body = document.querySelector(`#${tableId} tbody`);
  body.replaceChildren();
  if (!rows.length) {
    const cols = document.querySelectorAll(`#${tableId} thead th`).length;
    const tr = el("tr");
    tr.append(el("td", { colspan: cols, class: "empty" }, empty));
    body.append(tr);
    return;
  }
  for (const row of rows) {
    const tr = el("tr");
    for (const [value, cls] of cells(row)) tr.append(el("td", cls ? { class: cls } : {}, value ?? ""));
    body.append(tr);
  }
}

function seconds(s) {
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 120) return `${s.toFixed(1)} s`;
  return `${Math.round(s / 60)} min`;
}

// Bars of the delivery rate (0-100 %) per day; days with no settled message show no bar.
function drawChart(days) {
  // Drawn at the box's own width, so that text is never stretched.
  const width = Math.max(480, document.getElementById("chart").clientWidth);
  const height = 220, left = 36, bottom = 34, top = 18;
  const plotH = height - bottom - top;
  const step = (width - left) / days.length;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img" });
  for (const pct of [0, 50, 100]) {
    const y = top + plotH * (1 - pct / 100);
    root.append(svg("line", { class: "axis", x1: left, x2: width, y1: y, y2: y }));
    root.append(svg("text", { x: 2, y: y + 4 }, `${pct}%`));
  }
  days.forEach((day, i) => {
    const x = left + i * step;
    const label = day.date.slice(5);
    root.append(svg("text", { x: x + step / 2, y: height - 18, "text-anchor": "middle" }, label));
    if (day.delivery_rate === null || day.delivery_rate === undefined) {
      root.append(svg("text", { x: x + step / 2, y: top + plotH - 4, "text-anchor": "middle" }, "–"));
      return;
    }
    const pct = day.delivery_rate * 100;
    const h = Math.max(1, plotH * day.delivery_rate);
    const bar = svg("rect", {
      class: pct < 90 ? "bar low" : "bar",
      x: x + step * 0.15, y: top + plotH - h, width: step * 0.7, height: h,
      "data-date": day.date, "data-rate": day.delivery_rate,
    });
    bar.append(svg("title", {}, `${day.date}: ${pct.toFixed(1)}% of ${day.settled} settled`));
    root.append(bar);
    root.append(svg("text", { class: "value", x: x + step / 2, y: top + plotH - h - 4, "text-anchor": "middle" },
                    `${Math.round(pct)}%`));
    root.append(svg("text", { x: x + step / 2, y: height - 4, "text-anchor": "middle" }, day.settled));
  });
  document.getElementById("chart").replaceChildren(root);
}

function render(data) {
  document.getElementById("tz").textContent = `(days in ${data.timezone}; settled messages under the bars)`;
  drawChart(data.days);
  const p = data.pipeline;
  document.getElementById("backlog").textContent = p.available ? p.backlog.toLocaleString() : "?";
  document.getElementById("pending").textContent = p.available ? p.pending.toLocaleString() : "?";
  document.getElementById("lag").textContent = p.available ? seconds(p.lag_seconds) : "?";
  document.getElementById("updated").textContent = new Date(data.generated_at).toLocaleTimeString();
  const counts = Object.entries(data.today.counts).sort((a, b) => b[1] - a[1]);
  fillRows("today", counts, ([status, n]) => [[status], [n.toLocaleString(), "n"]], "No messages yet today");
  fillRows("errors", data.today.top_error_codes,
           (r) => [[r.code ?? "(none)"], [r.count.toLocaleString(), "n"], [`${r.action}: ${r.reason}`]],
           "No failures today");
  fillRows("actions", data.actions,
           (a) => [[a.id], [a.message_sid], [a.kind], [a.error_code], [a.state], [a.outcome], [a.detail], [a.updated_at]],
           "No actions yet");
  fillRows("alerts", data.alerts,
           (g) => [[g.id], [g.kind], [g.code], [g.summary], [g.state], [g.window_end], [g.sent_at]],
           "No alerts yet");
}

async function refresh() {
  try {
    const res = await fetch("/dashboard/data", { credentials: "same-origin", cache: "no-store" });
    if (res.status === 401) { window.location.assign("/dashboard"); return; }
    if (res.ok) render(await res.json());
  } finally {
    setTimeout(refresh, REFRESH_MS);
  }
}

// --- live feed: an EventSource on /api/stream with a short-lived token from our session -----

function addChange(change) {
  const feed = document.getElementById("feed");
  const at = change.at ? new Date(change.at).toLocaleTimeString() : "";
  const code = change.error_code ? ` ${change.error_code}` : "";
  const item = el("li", { class: `status-${change.status}`, "data-sid": change.sid },
                  `${at}  ${change.sid}  ${change.status}${code}${change.to ? "  to " + change.to : ""}`);
  feed.prepend(item);
  while (feed.children.length > FEED_MAX) feed.lastElementChild.remove();
}

let source = null;
let lastEventId = "";  // resumes the feed without a gap when it reconnects with a new token

async function connectFeed() {
  const state = document.getElementById("feed-state");
  try {
    const res = await fetch("/dashboard/stream-token", { credentials: "same-origin", cache: "no-store" });
    if (res.status === 401) { window.location.assign("/dashboard"); return; }
    if (!res.ok) throw new Error(`stream token: ${res.status}`);
    const { token, url } = await res.json();
    const resume = lastEventId ? `&last_event_id=${encodeURIComponent(lastEventId)}` : "";
    source = new EventSource(`${url}?token=${encodeURIComponent(token)}${resume}`);
    source.onmessage = (event) => {
      if (event.lastEventId) lastEventId = event.lastEventId;
      addChange(JSON.parse(event.data));
    };
    source.addEventListener("gap", () => {
      const item = el("li", { class: "gap" }, "… some changes were missed while disconnected");
      document.getElementById("feed").prepend(item);
    });
    source.onopen = () => { state.textContent = "live"; state.dataset.state = "open"; };
    source.onerror = () => {
      // The token is short-lived: reconnect with a new one rather than let the browser retry.
      state.textContent = "reconnecting…";
      state.dataset.state = "closed";
      source.close();
      setTimeout(connectFeed, 3000);
    };
  } catch (err) {
    state.textContent = "unavailable, retrying…";
    setTimeout(connectFeed, 5000);
  }
}

refresh();
connectFeed();
