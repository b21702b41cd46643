// The big screen: the city on a wall, live.
import uPlot from "/static/vendor/uPlot.esm.js";
import { api, signIn, LiveStream, el, fmt, clockTime, relative, escapeHtml, STATUS_LABEL,
  STATUS_ORDER, STAFF_COLORS, loadNames, deptName, caseTitle, caseTitleMark, roleName, word } from "/static/common.js";
import { initI18n, t, languageSwitcher, onLanguageChange, localName, fmtNumber } from "/static/i18n.js";
import { CityMapView, PointsLayer } from "/static/mapview.js";
import { BinsLayer, LiveObjects } from "/static/bins.js";
import { Replay } from "/static/replay.js";

const URGENCY_COLOR = { urgent: "#ff4d4f", high: "#ff9f1a", normal: "#ffd43b", low: "#a0aec0" };
const STATUS_STROKE = { collected: "#ffffff", registered: "#9cc8ff", dispatched: "#3d8bff",
  accepted: "#22d3ee", handled: "#34d399", verified: "#34d399" };
const VEHICLE_COLOR = { muck_truck: [214, 120, 60], bus: [170, 120, 230] };
const OPEN = new Set(["collected", "registered", "dispatched", "accepted", "handled", "verified"]);
const kpiName = (kpi) => t(`screen:kpi.${kpi}`, { defaultValue: kpi });

// What the page holds of the city; the tests and `cityops bench screen` read it too.
// `counts` are the store's (open, overdue, by status) for the key's whole scope: the list of
// incidents the page holds is capped, so it is never what a figure for the scope counts.
const world = { q: 100000, incidents: new Map(), alerts: new Map(), staff: [], staffStatus: [],
  vehicles: new Map(), kpi: null, history: [], tz: undefined, me: null, counts: null,
  alertsCapped: false };
const stats = { firstRender: null, snapshots: 0, deltas: 0, updates: [], dropped: 0,
  applyMs: [], objects: 0, lastSnapshotAt: 0 };
window.cityops = { world, stats };

let view, staffLayer, vehicleLayer, binsLayer, objects, stream;
let focus = null;
let trail = [];

async function main() {
  performance.mark("cityops:start");
  // The map's start-up (a WebGL context, its workers) is the slowest part of the first
  // render, so it begins before the sign-in, and the areas and the live snapshot are fetched
  // while it runs; the snapshot fills the point buffers, which join the map when it is ready.
  // The translations are asked for first: making the map holds the page's thread for a few
  // hundred milliseconds, and their requests should be on the wire by then.
  const i18n = initI18n(["screen", "replay"]);
  const tiles = document.querySelector('meta[name="cityops-tiles"]').content;
  view = new CityMapView(document.getElementById("map"), { tiles, onFocus: focused,
    padding: { top: 30, right: 30, bottom: 30, left: 270 } });
  window.cityops.view = view;
  await i18n;
  document.querySelector("header .right").append(languageSwitcher());
  const me = await signIn(t("screen:signin"), ["admin", "operator", "department", "station", "field"]);
  world.me = me;
  await loadNames();
  onLanguageChange(relabel);
  performance.mark("cityops:signed-in");
  document.getElementById("who").textContent = `${roleName(me.role)}${me.scope && me.scope !== "*" ? " · " + me.scope : ""}`;
  staffLayer = new PointsLayer("staff", { size: 12 });
  vehicleLayer = new PointsLayer("vehicles", { size: 10, square: true });
  staffLayer.onRender = rendered;
  binsLayer = new BinsLayer("bins");
  window.cityops.layers = { staff: staffLayer, vehicles: vehicleLayer, bins: binsLayer };
  const areas = api("/api/v1/areas.geojson");
  // Vehicles come from /api/v1/live/objects (bins or points for the view), not the events.
  stream = new LiveStream({ onSnapshot: snapshot, onDelta: delta, onState: connection,
    path: "/api/v1/live?vehicles=false" }).start();
  window.cityops.stream = stream;
  await view.setAreas(await areas);
  performance.mark("cityops:map-ready");
  view.addPoints(binsLayer);
  view.addPoints(vehicleLayer);
  view.addPoints(staffLayer);
  view.addGeoJSON("alarms", [{ id: "alarms", type: "circle", paint: {
    "circle-radius": 6, "circle-color": "rgba(255,77,79,0.25)", "circle-stroke-color": "#ff4d4f",
    "circle-stroke-width": 2 } }]);
  view.addGeoJSON("incidents", [{ id: "incidents", type: "circle", paint: {
    "circle-radius": ["match", ["get", "urgency"], "urgent", 10, "high", 9, 8],
    "circle-color": ["match", ["get", "urgency"], "urgent", URGENCY_COLOR.urgent, "high",
      URGENCY_COLOR.high, "low", URGENCY_COLOR.low, URGENCY_COLOR.normal],
    "circle-stroke-width": 3,
    "circle-stroke-color": ["match", ["get", "status"], ...Object.entries(STATUS_STROKE).flat(), "#ffffff"] } }]);
  drawIncidents();
  drawAlarms();
  // The replay draws on layers of its own and hides these while it runs (replay.js).
  window.cityops.replay = new Replay({ view, world,
    live: { points: [staffLayer, vehicleLayer, binsLayer], geojson: ["incidents", "alarms"] },
    vehicleColor: (role) => VEHICLE_COLOR[role] || [150, 160, 175] });
  // Only the areas the key covers: a scoped key starts (and stops) at its own area.
  const start = me.scope && /^\d+$/.test(me.scope) ? me.scope : view.root;
  view.focus(start, { animate: false });
  objects = new LiveObjects({ map: view.map, points: vehicleLayer, bins: binsLayer,
    color: (role) => VEHICLE_COLOR[role] || [150, 160, 175], onFrame: objectsFrame });
  window.cityops.objects = objects;
  objects.look();
  setInterval(() => { document.getElementById("clock").textContent = clockTime(Date.now() / 1000, world.tz); }, 1000);
  setInterval(loadEvaluation, 30000);
  setInterval(loadSparklines, 300000);
  document.getElementById("crumbs").addEventListener("click", (e) => {
    const code = e.target.dataset && e.target.dataset.code;
    if (code) view.focus(code);
  });
}

let connState = "connecting";
function connection(state) {
  connState = state;
  const c = document.getElementById("conn");
  c.textContent = t(`common:conn.${state}`, { defaultValue: state });
  c.className = `conn ${state}`;
}

// Everything the script wrote, again in the language just chosen.
function relabel() {
  connection(connState);
  document.getElementById("who").textContent = `${roleName(world.me.role)}${world.me.scope && world.me.scope !== "*" ? " · " + world.me.scope : ""}`;
  if (focus) focused(focus, view.trail(focus));
  vitalDrawn = "";
  drawPanels();
}

// -- the stream -------------------------------------------------------------------------------

function snapshot(s, arrived) {
  const t0 = performance.now();
  if (!stats.snapshots) performance.mark("cityops:snapshot");
  stats.snapshots += 1;
  stats.dropped = s.dropped;
  stats.lastSnapshotAt = arrived;
  world.q = s.q;
  world.tz = s.city.timezone;
  document.getElementById("city").textContent = localName(s.city);
  world.incidents = new Map(s.incidents.map((i) => [i.id, i]));
  world.alerts = new Map(s.alerts.map((a) => [a.id, a]));
  world.counts = s.counts || null;
  world.alertsCapped = !!s.alerts_capped;
  staffLayer.count = 0;
  staffLayer.pos.fill(NaN);
  world.staff = [];
  world.staffStatus = [];
  const st = s.staff;
  for (let k = 0; k < st.i.length; k++) {
    const i = st.i[k];
    world.staff[i] = { id: st.id[k], name: st.name[k], dept: st.dept[k] };
    world.staffStatus[i] = st.status[k];
    if (st.lat[k] === null) { staffLayer.reserve(i + 1); staffLayer.hide(i); if (i >= staffLayer.count) staffLayer.count = i + 1; }
    else staffLayer.setMany([i], [st.lat[k]], [st.lon[k]], s.q);
    staffLayer.paint(i, STAFF_COLORS[st.status[k]] || STAFF_COLORS.available);
  }
  stats.objects = st.i.length + (objects ? objects.total : 0);
  world.kpi = s.kpi;
  world.history = s.history || [];
  view.applyStates(s.kpi.states);
  // The first render waits for the objects too (whichever of the two comes last).
  if (stats.firstRender !== null) awaiting(arrived, "snapshot");
  else if (objects && objects.frames) awaiting(arrived, "first");
  staffLayer.changed();
  drawIncidents();
  drawAlarms();
  schedulePanels();
  stats.applyMs.push(performance.now() - t0);
  if (stats.snapshots === 1) { loadEvaluation(); loadSparklines(); }
}

function delta(d, arrived) {
  stats.deltas += 1;
  let moved = false;
  if (d.staff) { staffLayer.setMany(d.staff.i, d.staff.lat, d.staff.lon, world.q); moved = true; }
  if (d.staff_status) {
    d.staff_status.i.forEach((i, k) => {
      world.staffStatus[i] = d.staff_status.s[k];
      staffLayer.paint(i, STAFF_COLORS[d.staff_status.s[k]] || STAFF_COLORS.available);
    });
    moved = true;
  }
  if (moved) { awaiting(arrived, "update"); staffLayer.changed(); }
  let incidents = false;
  if (d.incidents) {
    for (const i of d.incidents) {
      const fresh = !world.incidents.has(i.id);
      world.incidents.set(i.id, i);
      if (fresh) flash(i);
    }
    incidents = true;
  }
  if (d.alerts) { for (const a of d.alerts) world.alerts.set(a.id, a); drawAlarms(); }
  if (d.alerts_cleared) { for (const id of d.alerts_cleared) world.alerts.delete(id); drawAlarms(); }
  if (d.kpi) {
    // Only the figures that changed arrive; the health counts area by area.
    world.kpi = { ...world.kpi, ...d.kpi, health: { ...world.kpi.health, ...(d.kpi.health || {}) } };
    const last = world.history[world.history.length - 1];
    if (!last || d.t - last[0] >= 5) world.history.push([d.t, world.kpi.ingest_rate]);
    if (world.history.length > 720) world.history.shift();
    if (d.kpi.states) view.applyStates(d.kpi.states);
  }
  if (d.counts) world.counts = d.counts;
  if (incidents) drawIncidents();
  schedulePanels();
}

// Update timing (Performance API clock): from the moment an update's bytes arrived to the
// first animation frame after the map drew it, i.e. when it is on screen.
let pending = null;
function awaiting(since, kind) {
  if (pending === null || kind === "first") pending = { since, kind };
}

function rendered() {
  if (pending === null) return;
  const { since, kind } = pending;
  pending = null;
  requestAnimationFrame(() => {
    const now = performance.now();
    if (kind === "first") { stats.firstRender = now; performance.mark("cityops:first-render"); }
    else if (kind === "update") stats.updates.push(now - since);
    if (stats.updates.length > 5000) stats.updates.splice(0, 1000);
  });
}

// A frame of the objects feed is on screen: timed as an update (the first one, with the
// snapshot, completes the first render).
function objectsFrame(h, arrived) {
  if (stats.firstRender !== null) awaiting(arrived, "update");
  else if (stats.snapshots && objects.frames === 1) awaiting(arrived, "first");
  stats.objects = world.staff.length + h.total;
  schedulePanels();
}

// -- what the map shows -----------------------------------------------------------------------

function drawIncidents() {
  const features = [];
  for (const i of world.incidents.values()) {
    if (!OPEN.has(i.status) || i.lat === null) continue;
    features.push({ type: "Feature", id: i.id, geometry: { type: "Point", coordinates: [i.lon, i.lat] },
      properties: { id: i.id, urgency: i.urgency, status: i.status } });
  }
  view.setGeoJSON("incidents", features);
}

function drawAlarms() {
  const features = [];
  for (const a of world.alerts.values()) {
    if (!a.device || a.lat === null) continue;
    features.push({ type: "Feature", geometry: { type: "Point", coordinates: [a.lon, a.lat] },
      properties: { id: a.id } });
  }
  view.setGeoJSON("alarms", features);
}

function flash(i) {
  // A new case in the feed is marked for a few seconds so the room notices it.
  i._new = Date.now();
}

function focused(code, t) {
  focus = code;
  trail = t;
  const crumbs = document.getElementById("crumbs");
  crumbs.replaceChildren(...t.flatMap((a, k) => {
    const b = el("button", { "data-code": a.code, class: k === t.length - 1 ? "here" : "", text: a.name,
      title: `${word("level", a.level)} ${a.code}` });
    return k ? [el("span", { class: "sep", text: "›" }), b] : [b];
  }));
  schedulePanels();
  loadEvaluation();
  loadSparklines();
}

// -- panels -----------------------------------------------------------------------------------

let panelTimer = null;
function schedulePanels() {
  if (panelTimer) return;
  panelTimer = setTimeout(() => { panelTimer = null; drawPanels(); }, 400);
}

const inFocus = (i) => !focus || focus.length <= 6 || (i.village || i.town || "").startsWith(focus);

function drawPanels() {
  if (!world.kpi) return;
  drawBanner();
  drawStates();
  drawDepartments();
  drawFeed();
  drawVital();
  drawOps();
  drawLegend();
}

function drawBanner() {
  const states = world.kpi.states || {};
  const city = states.city || "daily";
  const here = view.stateAt(focus || "");
  const name = trail.length ? trail[trail.length - 1].name : "";
  const b = document.getElementById("banner");
  b.className = `banner ${here === "daily" && city === "daily" ? "daily" : (here === "emergency" || city === "emergency" ? "emergency" : "special")}`;
  b.replaceChildren(
    el("span", { class: `state ${city}`, text: t("screen:banner.city", { state: word("opstate", city).toUpperCase() }) }),
    trail.length > 1 ? el("span", { class: `state ${here}`, text: t("screen:banner.area", { name, state: word("opstate", here).toUpperCase() }) }) : "",
  );
}

// Whether the page holds fewer open cases than the store has in the key's scope: then the
// list is the newest of them, and the page says so ("showing 3,000 of 6,434").
function capped() {
  const c = world.counts;
  if (!c) return null;
  let shown = 0;
  for (const i of world.incidents.values()) if (OPEN.has(i.status)) shown += 1;
  return shown < c.open ? { shown, total: c.open } : null;
}

function counted() {
  const byState = Object.fromEntries(STATUS_ORDER.map((s) => [s, 0]));
  const byDept = {};
  let open = 0, overdue = 0;
  for (const i of world.incidents.values()) {
    if (!inFocus(i)) continue;
    byState[i.status] = (byState[i.status] || 0) + 1;
    if (!OPEN.has(i.status)) continue;
    open += 1;
    if (i.overdue) overdue += 1;
    const depts = i.departments.length ? i.departments : [""]; // "": not dispatched yet
    for (const d of depts) byDept[d] = (byDept[d] || 0) + 1;
  }
  // The whole scope in view: its figures are the store's, not the list's.
  const c = world.counts;
  if (c && (!focus || focus.length <= 6)) {
    open = c.open;
    overdue = c.overdue;
    for (const [s, n] of Object.entries(c.status)) byState[s] = n;
  }
  return { byState, byDept, open, overdue, capped: capped() };
}

const cappedNote = (cap) => t("screen:capped", { shown: fmt.format(cap.shown), total: fmt.format(cap.total) });

function bars(container, rows, cls) {
  const max = Math.max(1, ...rows.map((r) => r[1]));
  container.replaceChildren(...rows.map(([label, n, kind]) => el("div", { class: `bar ${cls || ""} ${kind || ""}` },
    el("span", { class: "label", text: label }),
    el("span", { class: "track" }, el("span", { class: "fill", style: `width:${(100 * n) / max}%` })),
    el("span", { class: "n", text: fmt.format(n) }))));
}

function drawStates() {
  const c = counted();
  const openCount = document.getElementById("open-count");
  openCount.textContent = `${t("screen:openCount", { open: fmt.format(c.open), overdue: fmt.format(c.overdue) })}${c.capped ? ` · ${cappedNote(c.capped)}` : ""}`;
  openCount.dataset.capped = c.capped ? "1" : "";
  bars(document.getElementById("by-state"), STATUS_ORDER.map((s) => [STATUS_LABEL[s], c.byState[s] || 0, s]), "state");
}

function drawDepartments() {
  const c = counted();
  const rows = Object.entries(c.byDept).sort((a, b) => b[1] - a[1]).slice(0, 8)
    .map(([d, n]) => [d ? deptName(d) : t("screen:notDispatched"), n]);
  const box = document.getElementById("by-dept");
  if (!rows.length) box.replaceChildren(el("p", { class: "quiet", text: t("screen:noOpen") }));
  else bars(box, rows, "dept");
  // Counted off the list: when it is capped, of its newest cases only.
  if (c.capped) box.append(el("p", { class: "quiet capped", text: t("screen:newestOnly", { note: cappedNote(c.capped) }) }));
}

function drawFeed() {
  const list = [...world.incidents.values()].filter(inFocus)
    .sort((a, b) => b.updated_at - a.updated_at).slice(0, 14);
  const ol = document.getElementById("feed-list");
  if (!list.length) { ol.replaceChildren(el("li", { class: "quiet", text: t("screen:nothingYet") })); return; }
  ol.replaceChildren(...list.map((i) => el("li", { class: `${i.urgency} ${i._new && Date.now() - i._new < 8000 ? "new" : ""}`, "data-id": i.id },
    el("span", { class: "dot", style: `background:${URGENCY_COLOR[i.urgency] || URGENCY_COLOR.normal}` }),
    el("span", { class: "what" }, el("b", { text: caseTitle(i), translate: caseTitleMark(i) }),
      el("small", { text: `${view.name(i.village || i.town || "")} · ${(i.departments || []).map(deptName).join(t("common:listSep")) || word("source", i.source)}` })),
    el("span", { class: `st ${i.status}`, text: STATUS_LABEL[i.status] }),
    el("span", { class: "when", text: clockTime(i.updated_at, world.tz) }))));
}

const sparks = new Map();
function spark(container, key, xs, ys, color) {
  let plot = sparks.get(key);
  const data = [xs, ys];
  if (plot && plot.root.isConnected) { plot.setData(data); return; }
  const { width } = container.getBoundingClientRect();
  plot = new uPlot({ width: Math.max(60, Math.floor(width)), height: 38, legend: { show: false },
    cursor: { show: false }, select: { show: false }, scales: { x: { time: false } },
    axes: [{ show: false }, { show: false }],
    series: [{}, { stroke: color, width: 2, fill: color + "22", points: { show: false } }] }, data, container);
  sparks.set(key, plot);
}

const kpiHistory = new Map(); // device id -> [ts[], value[]]
async function loadSparklines() {
  if (!world.kpi || !focus) return;
  const wanted = world.kpi.vital.filter((s) => s.area === focus).slice(0, 6);
  const from = Date.now() / 1000 - 48 * 3600;
  await Promise.all(wanted.map(async (s) => {
    try {
      const r = await api(`/api/v1/devices/${encodeURIComponent(s.id)}/readings?from=${from}&limit=200`);
      const rows = r.items.filter((x) => x.channel === undefined || x.channel === "value");
      kpiHistory.set(s.id, [rows.map((x) => x.ts_s ?? Date.parse(x.ts) / 1000), rows.map((x) => x.value)]);
    } catch { /* a series the key cannot read keeps its live values only */ }
  }));
  drawVital();
}

let vitalDrawn = "";
function drawVital() {
  const box = document.getElementById("vital-list");
  const list = world.kpi.vital.filter((s) => s.area === focus).slice(0, 6);
  // Charts are rebuilt only when what they show changed, not at every panel refresh.
  const signature = JSON.stringify([focus, list.map((s) => [s.id, s.value, s.baseline, s.status, s.ts]),
    list.map((s) => (kpiHistory.get(s.id) || [[]])[0].length)]);
  if (signature === vitalDrawn) return;
  vitalDrawn = signature;
  if (!list.length) {
    box.replaceChildren(el("p", { class: "quiet", text: t("screen:vital.none") }));
    return;
  }
  const rows = list.map((s) => {
    const base = s.baseline;
    const diff = base ? Math.round((100 * (s.value - base)) / base) : null;
    const row = el("div", { class: `vital ${s.status}` },
      el("div", { class: "name", text: kpiName(s.kpi) }),
      el("div", { class: "value", text: fmt.format(Math.round(s.value * 10) / 10) }),
      el("div", { class: "base", text: base === null ? t("screen:vital.learning") :
        t("screen:vital.baseline", { value: fmt.format(Math.round(base * 10) / 10), diff: `${diff >= 0 ? "+" : ""}${diff}` }) }),
      el("div", { class: "spark" }));
    return [row, s];
  });
  box.replaceChildren(...rows.map((r) => r[0]));
  for (const [row, s] of rows) {
    const h = kpiHistory.get(s.id) || [[], []];
    const xs = [...h[0]], ys = [...h[1]];
    if (!xs.length || xs[xs.length - 1] < s.ts) { xs.push(s.ts); ys.push(s.value); }
    if (xs.length === 1) { xs.unshift(s.ts - 3600); ys.unshift(s.baseline ?? s.value); }
    sparks.delete(s.id);
    spark(row.querySelector(".spark"), s.id, xs, ys, s.status === "high" ? "#ff6b6b" : "#4dabf7");
  }
}

function drawOps() {
  const k = world.kpi;
  document.getElementById("ingest-rate").textContent = fmt.format(k.ingest_rate);
  const h = k.health[focus] || [0, 0];
  const pct = h[1] ? (100 * h[0]) / h[1] : 0;
  document.getElementById("health").textContent = h[1] ? fmtNumber(pct / 100, { style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1 }) : "–";
  document.getElementById("health-detail").textContent =
    t("screen:ops.detail", { up: fmt.format(h[0]), all: fmt.format(h[1]), silent: fmt.format(h[1] - h[0]) });
  const alarms = [...world.alerts.values()].filter(inFocus).length;
  // The alert list is capped too: past its limit, the count is "at least".
  document.getElementById("alarm-count").textContent = `${fmt.format(alarms)}${world.alertsCapped ? "+" : ""}`;
  const xs = world.history.map((p) => p[0]), ys = world.history.map((p) => p[1]);
  if (xs.length >= 2) spark(document.getElementById("ingest-spark"), "ingest", xs, ys, "#4dabf7");
}

function drawLegend() {
  const counts = { available: 0, en_route: 0, on_site: 0, off_duty: 0 };
  world.staffStatus.forEach((s, i) => { if (s && staffLayer.position(i)) counts[s] = (counts[s] || 0) + 1; });
  const rows = Object.entries(counts).map(([s, n]) => el("div", { class: "row" },
    el("span", { class: "sw dot", style: `background:rgb(${STAFF_COLORS[s].join(",")})` }),
    el("span", { text: word("staff", s) }), el("b", { text: fmt.format(n) })));
  const trucks = objects ? objects.roleCount("muck_truck") : 0;
  // The legend counts what the map draws (the whole city); the panels count the shown area.
  const openHere = [...world.incidents.values()].filter((i) => OPEN.has(i.status) && i.lat !== null).length;
  const alarms = [...world.alerts.values()].filter((a) => a.device).length;
  document.getElementById("legend").replaceChildren(
    el("h3", { text: t("screen:legend.title") }), ...rows,
    el("div", { class: "row" }, el("span", { class: "sw square", style: "background:rgb(214,120,60)" }),
      el("span", { text: t("screen:legend.trucks") }), el("b", { text: fmt.format(trucks || (objects ? objects.total : 0)) })),
    el("div", { class: "row" }, el("span", { class: "sw ring" }), el("span", { text: t("screen:legend.alarms") }),
      el("b", { text: fmt.format(alarms) })),
    el("div", { class: "row" }, el("span", { class: "sw dot", style: `background:${URGENCY_COLOR.high};outline:2px solid #3d8bff` }),
      el("span", { text: t("screen:legend.open") }), el("b", { text: fmt.format(openHere) })));
}

async function loadEvaluation() {
  const box = document.getElementById("ontime");
  try {
    const r = await api(`/api/v1/evaluation?group_by=area`);
    let due = 0, onTime = 0, closed = 0;
    for (const row of r.items) {
      if (focus && focus.length > 6 && !(row.group || "").startsWith(focus)) continue;
      due += row.due; onTime += row.closed_on_time; closed += row.closed;
    }
    const rate = due ? (100 * onTime) / due : null;
    const shown = document.getElementById("ontime-rate");
    shown.textContent = rate === null ? "–" : fmtNumber(rate / 100, { style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1 });
    // Green at or above 90 % (a typical target for on-time closure), amber above 70 %, red under.
    shown.className = `big ${rate === null ? "" : rate >= 90 ? "good" : rate >= 70 ? "fair" : "poor"}`;
    document.getElementById("ontime-detail").textContent = due
      ? t("screen:ontime.detail", { onTime: fmt.format(onTime), due: fmt.format(due), closed: fmt.format(closed) })
      : t("screen:ontime.none");
    box.classList.remove("na");
  } catch (e) {
    document.getElementById("ontime-rate").textContent = "–";
    document.getElementById("ontime-detail").textContent = t(e.status === 403 ? "screen:ontime.notForKey" : "screen:ontime.na");
    box.classList.add("na");
  }
}

main().catch((e) => {
  document.body.append(el("div", { class: "fatal", text: t("screen:fatal", { reason: e.readable || e.message }) }));
  throw e;
});
