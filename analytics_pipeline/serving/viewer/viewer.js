// The viewer: asks v1/web-requests/stats twice (the whole period, and by day) with the
// pasted key, and shows the answers as two uPlot charts and two tables. No build step.
// URLs are relative to the page, so it works under a path prefix (an API Gateway stage) too.
"use strict";

const LEVEL_IDS = {
  global: [],
  client: ["client_id"],
  reseller: ["client_id", "reseller_id"],
  user: ["client_id", "reseller_id", "user_id"],
};
const MEASURES = ["unique_sessions", "requests", "requests_per_session", "products_per_request"];
const COLORS = ["#2454a6", "#d1495b", "#00798c", "#edae49", "#66a182", "#8d6a9f", "#3d3b30", "#c97c5d"];
const MAX_SERIES = COLORS.length;
const $ = (id) => document.getElementById(id);
const charts = {};

function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

function enableFilters() {
  const takes = LEVEL_IDS[$("level").value];
  for (const id of ["client_id", "reseller_id", "user_id"]) {
    $(id).disabled = !takes.includes(id);
  }
}

function queryParams(extra) {
  const params = new URLSearchParams({ level: $("level").value, from: $("from").value, to: $("to").value });
  for (const id of LEVEL_IDS[$("level").value]) {
    const value = $(id).value.trim();
    if (value) params.set(id, value);
  }
  for (const [name, value] of Object.entries(extra)) params.set(name, value);
  return params;
}

async function fetchStats(extra) {
  const response = await fetch(`v1/web-requests/stats?${queryParams(extra)}`, {
    headers: { Authorization: `Bearer ${$("key").value.trim()}` },
  });
  const body = await response.json();
  if (!response.ok) throw new Error(`${response.status}: ${body.detail}`);
  return body;
}

function entity(row, level) {
  const ids = LEVEL_IDS[level].map((id) => row[id]);
  return ids.length ? ids.join(" / ") : "all";
}

function fillTable(table, rows, columns) {
  table.tHead.innerHTML = "";
  table.tBodies[0].innerHTML = "";
  if (!rows.length) return;
  const head = table.tHead.insertRow();
  for (const column of columns) head.appendChild(document.createElement("th")).textContent = column;
  for (const row of rows) {
    const tr = table.tBodies[0].insertRow();
    for (const column of columns) {
      const value = row[column];
      tr.insertCell().textContent = typeof value === "number" && !Number.isInteger(value) ? value.toFixed(2) : value;
    }
  }
}

function drawChart(target, days, series, measure) {
  if (charts[target]) charts[target].destroy();
  delete charts[target];
  const names = Object.keys(series).slice(0, MAX_SERIES);
  if (!days.length) return;
  const x = days.map((day) => Date.parse(`${day}T00:00:00Z`) / 1000);
  const data = [x, ...names.map((name) => days.map((day) => series[name][day]?.[measure] ?? null))];
  const opts = {
    width: Math.min(560, window.innerWidth - 40),
    height: 240,
    padding: [8, 40, 0, 0],  // room for the last date label
    scales: { x: { time: true } },
    // Days are UTC dates: tick and label them in UTC, one label per day at most.
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
    axes: [
      {
        incrs: [86400, 2 * 86400, 7 * 86400, 14 * 86400, 28 * 86400, 91 * 86400],
        values: (u, ticks) => ticks.map((t) => isoDay(new Date(t * 1000))),
      },
      {},
    ],
    series: [{}, ...names.map((name, i) => ({ label: name, stroke: COLORS[i], width: 2, points: { show: true } }))],
  };
  charts[target] = new uPlot(opts, data, $(target));
}

function render(totals, daily) {
  const ids = LEVEL_IDS[totals.level];
  fillTable($("totals"), totals.rows, [...ids, ...MEASURES]);
  fillTable($("daily"), daily.rows, ["dt", ...ids, ...MEASURES]);
  const days = [...new Set(daily.rows.map((row) => row.dt))].sort();
  const series = {};
  for (const row of daily.rows) (series[entity(row, totals.level)] ??= {})[row.dt] = row;
  drawChart("chart-sessions", days, series, "unique_sessions");
  drawChart("chart-rps", days, series, "requests_per_session");
  const shown = Object.keys(series).length;
  $("status").textContent = `${totals.rows.length} row(s) from ${totals.from} to ${totals.to}` +
    (shown > MAX_SERIES ? `; the charts show the first ${MAX_SERIES} of ${shown}` : "");
}

function clear() {
  render({ level: $("level").value, rows: [] }, { rows: [] });
  $("status").textContent = "";
}

async function show(event) {
  event.preventDefault();
  $("error").hidden = true;
  sessionStorage.setItem("analytics-api-key", $("key").value.trim());
  try {
    const [totals, daily] = await Promise.all([fetchStats({}), fetchStats({ by: "day" })]);
    render(totals, daily);
  } catch (error) {
    clear();
    $("error").textContent = error.message;
    $("error").hidden = false;
  }
}

const today = new Date();
$("to").value = isoDay(today);
$("from").value = isoDay(new Date(today.getTime() - 29 * 86400000));
$("key").value = sessionStorage.getItem("analytics-api-key") || "";
$("level").addEventListener("change", enableFilters);
$("query").addEventListener("submit", show);
enableFilters();
