// The operator console: the incident queue of the key's scope, one incident at a time, and
// every move of the case workflow, with the server's refusals shown as the server gives them.
import { api, signIn, LiveStream, el, fmt, relative, dateTime, toast, showPhotos, STATUS_LABEL,
  STAFF_COLORS } from "/static/common.js";
import { CityMapView, PointsLayer, maplibregl } from "/static/mapview.js";

const OPEN = new Set(["collected", "registered", "dispatched", "accepted", "handled", "verified"]);
const NEEDS_CENTRE = new Set(["collected", "registered", "handled", "verified"]);
const state = { me: null, incidents: new Map(), selected: null, doc: null, sort: { key: "due", dir: 1 },
  filter: "open", search: "", q: 100000, tz: undefined, states: {}, departments: [], categories: [],
  picked: null, staffNames: [] };
window.cityops = { state };

let view, staffLayer, incidentMarker, pickMarker, mapBox;

async function main() {
  const me = await signIn("CityOps · Operator console", ["admin", "operator", "department", "station"]);
  state.me = me;
  document.getElementById("who").textContent = `${me.role}${me.scope && me.scope !== "*" ? " · " + me.scope : ""}`;
  const [areas, categories] = await Promise.all([api("/api/v1/areas.geojson"), api("/api/v1/categories")]);
  state.areas = areas;
  state.names = new Map(areas.features.map((f) => [f.properties.code, f.properties.name]));
  state.categories = categories.items;
  const depts = new Set();
  for (const c of categories.items) for (const d of c.departments || []) depts.add(d);
  try {
    const ev = await api("/api/v1/evaluation?group_by=department");
    for (const row of ev.items) if (row.group) depts.add(row.group);
  } catch { /* departments from the categories are enough */ }
  state.departments = [...depts].sort();
  setupStateSwitch();
  setupMap();
  setupQueue();
  setupDialogs();
  setupKeys();
  new LiveStream({ onSnapshot: snapshot, onDelta: delta, onState: connection }).start();
  const fromHash = () => {
    const wanted = new URLSearchParams(location.hash.slice(1)).get("incident");
    if (wanted && wanted !== state.selected) open(wanted);
  };
  window.addEventListener("hashchange", fromHash);
  fromHash();
}

function connection(s) {
  const c = document.getElementById("conn");
  c.textContent = { live: "● LIVE", connecting: "○ connecting", offline: "○ reconnecting…" }[s] || s;
  c.className = `conn ${s}`;
}

const areaName = (code) => (code && state.names.get(code)) || code || "–";

// -- live ------------------------------------------------------------------------------------

function snapshot(s) {
  state.q = s.q;
  state.tz = s.city.timezone;
  state.incidents = new Map(s.incidents.map((i) => [i.id, i]));
  state.counts = s.counts || null;
  state.states = s.kpi.states || {};
  staffLayer.pos.fill(NaN);
  const st = s.staff;
  for (let k = 0; k < st.i.length; k++) {
    state.staffNames[st.i[k]] = `${st.name[k]} (${st.id[k]})`;
    if (st.lat[k] !== null) staffLayer.setMany([st.i[k]], [st.lat[k]], [st.lon[k]], s.q);
    staffLayer.paint(st.i[k], STAFF_COLORS[st.status[k]] || STAFF_COLORS.available);
  }
  staffLayer.changed();
  view.applyStates(state.states);
  showState();
  renderQueue();
}

function delta(d) {
  if (d.staff) { staffLayer.setMany(d.staff.i, d.staff.lat, d.staff.lon, state.q); staffLayer.changed(); }
  if (d.staff_status) {
    d.staff_status.i.forEach((i, k) => staffLayer.paint(i, STAFF_COLORS[d.staff_status.s[k]] || STAFF_COLORS.available));
    staffLayer.changed();
  }
  if (d.kpi && d.kpi.states) { state.states = d.kpi.states; view.applyStates(state.states); showState(); }
  if (d.counts) { state.counts = d.counts; if (!d.incidents) renderQueue(); }
  if (d.incidents) {
    for (const i of d.incidents) state.incidents.set(i.id, i);
    renderQueue();
    if (state.selected && d.incidents.some((i) => i.id === state.selected)) open(state.selected, { quiet: true });
  }
}

// -- the queue -------------------------------------------------------------------------------

function dueOf(i) {
  return i.next_due ?? i.close_due ?? i.dispatch_due ?? Infinity;
}

function rows() {
  const now = Date.now() / 1000;
  const text = state.search.toLowerCase();
  let list = [...state.incidents.values()];
  if (state.filter === "open") list = list.filter((i) => OPEN.has(i.status));
  if (state.filter === "attention") list = list.filter((i) => NEEDS_CENTRE.has(i.status) || i.orders.some((o) => o.status === "park_requested"));
  if (state.filter === "overdue") list = list.filter((i) => OPEN.has(i.status) && (i.overdue || dueOf(i) < now));
  if (text) list = list.filter((i) => `${i.id} ${i.title} ${i.category} ${areaName(i.village)} ${i.departments.join(" ")}`.toLowerCase().includes(text));
  const key = { due: dueOf, status: (i) => i.status, title: (i) => i.title, area: (i) => areaName(i.village),
    departments: (i) => i.departments.join(","), reported: (i) => -i.reported_at }[state.sort.key];
  list.sort((a, b) => {
    const x = key(a), y = key(b);
    return (x < y ? -1 : x > y ? 1 : 0) * state.sort.dir || b.reported_at - a.reported_at;
  });
  return list;
}

// The store's counts for the key's scope; the queue holds the newest open cases only, and
// says so when the store has more ("showing 3,000 of 6,434 open").
function queueNote() {
  const c = state.counts;
  if (!c) return "";
  let held = 0;
  for (const i of state.incidents.values()) if (OPEN.has(i.status)) held += 1;
  const figures = ` · ${fmt.format(c.open)} open · ${fmt.format(c.overdue)} overdue`;
  return held < c.open ? `${figures} · showing ${fmt.format(held)} of ${fmt.format(c.open)} open` : figures;
}

function renderQueue() {
  const list = rows();
  const now = Date.now() / 1000;
  document.getElementById("queue-count").textContent = `${fmt.format(list.length)} shown${queueNote()}`;
  const body = document.querySelector("#queue tbody");
  body.replaceChildren(...list.slice(0, 400).map((i) => {
    const due = dueOf(i);
    const late = Number.isFinite(due) && due < now;
    return el("tr", { "data-id": i.id, class: `${i.id === state.selected ? "selected" : ""} ${i.urgency}`,
      onclick: () => open(i.id) },
      el("td", { class: `due ${late || i.overdue ? "late" : ""}`, text: Number.isFinite(due) ? (late ? `overdue ${relative(due, now).replace(" ago", "")}` : relative(due, now)) : "–" }),
      el("td", {}, el("span", { class: `st ${i.status}`, text: STATUS_LABEL[i.status] })),
      el("td", { class: "title" }, el("b", { text: i.title || i.category }), el("small", { text: i.category })),
      el("td", { text: areaName(i.village) }),
      el("td", { text: i.departments.join(", ").replace(/_/g, " ") || "–" }),
      el("td", { class: "when", text: dateTime(i.reported_at, state.tz) }));
  }));
  if (!list.length) body.replaceChildren(el("tr", {}, el("td", { colspan: 6, class: "quiet", text: "Nothing in the queue" })));
}

function setupQueue() {
  for (const th of document.querySelectorAll("#queue th")) {
    th.addEventListener("click", () => {
      const key = th.dataset.sort;
      state.sort = { key, dir: state.sort.key === key ? -state.sort.dir : 1 };
      for (const h of document.querySelectorAll("#queue th")) h.className = "";
      th.className = `sorted ${state.sort.dir > 0 ? "asc" : "desc"}`;
      renderQueue();
    });
  }
  document.getElementById("queue-filter").addEventListener("change", (e) => { state.filter = e.target.value; renderQueue(); });
  document.getElementById("queue-search").addEventListener("input", (e) => { state.search = e.target.value; renderQueue(); });
  setInterval(renderQueue, 30000); // deadlines move on even when nothing happens
}

// -- one incident -----------------------------------------------------------------------------

async function open(id, { quiet = false } = {}) {
  state.selected = id;
  for (const tr of document.querySelectorAll("#queue tbody tr")) tr.classList.toggle("selected", tr.dataset.id === id);
  try {
    state.doc = await api(`/api/v1/incidents/${encodeURIComponent(id)}`);
  } catch (e) {
    state.doc = null;
    const box = document.getElementById("detail");
    box.replaceChildren(el("div", { class: "refusal", role: "alert", text: e.readable || String(e) }),
      el("div", { class: "empty", text: e.status === 404 ? "This incident does not exist, or lies outside the area your key covers." : "" }));
    return;
  }
  history.replaceState(null, "", `#incident=${encodeURIComponent(id)}`);
  renderDetail(state.doc, quiet);
}

const INCIDENT_ACTIONS = [
  ["register", "Register", "r", ["collected"]],
  ["dispatch", "Dispatch…", "d", ["registered"]],
  ["verify", "Verify", "v", ["handled"]],
  ["close", "Close", "c", ["verified"]],
  ["rework", "Rework…", "", ["handled", "verified"]],
  ["cancel", "Cancel case…", "x", ["collected", "registered"]],
  ["redispatch", "Add department…", "", ["dispatched", "accepted"]],
  ["reopen", "Reopen…", "", ["closed"]],
];

function renderDetail(inc, quiet) {
  const box = document.getElementById("detail");
  const now = Date.now() / 1000;
  const refusal = el("div", { class: "refusal", role: "alert", hidden: true });
  const actions = el("div", { class: "actions" }, ...INCIDENT_ACTIONS.map(([action, label, k, when]) =>
    el("button", { class: when.includes(inc.status) ? "primary" : "", "data-action": action,
      title: k ? `${label} (${k})` : label, onclick: () => incidentAction(action) }, label,
      k ? el("kbd", { text: k }) : null)));
  const orders = el("table", { class: "orders" }, el("thead", {}, el("tr", {},
    ...["Department", "State", "Field staff", "Deadline", "Evidence", ""].map((h) => el("th", { text: h })))),
  el("tbody", {}, ...inc.orders.map((o) => orderRow(inc, o, now))));
  if (!inc.orders.length) orders.append(el("tbody", {}, el("tr", {}, el("td", { colspan: 6, class: "quiet", text: "Not dispatched yet" }))));
  const opening = (inc.timeline.find((e) => e.action === "collect") || { detail: {} }).detail.report;
  const isOpen = !["closed", "cancelled"].includes(inc.status);
  const reports = el("ol", { class: "reports" }, ...inc.reports_filed.map((r) => el("li", { "data-report": r.key },
    el("b", { text: `${r.source}` }), ` · ${dateTime(r.at, state.tz)}${r.reporter ? " · " + r.reporter : ""}`,
    r.category && r.category !== inc.category ? ` · filed as ${r.category}` : "",
    // A report merged by mistake goes back out into a case of its own.
    isOpen && r.key !== opening ? el("button", { class: "split", "data-split": r.key, title: "Not the same problem: take it out into its own case",
      onclick: () => withReason(`Split this report out of ${inc.id}`, (reason) => run("split", async () =>
        (await api(`/api/v1/incidents/${encodeURIComponent(inc.id)}/split`, { method: "POST", body: { report: r.key, reason } })).incident)) }, "Split out…") : null,
    r.text ? el("div", { text: r.text }) : null, reportMedia(r))));
  const alerts = inc.alerts && inc.alerts.length ? el("p", { class: "alerts quiet",
    text: `Alerts (${inc.alerts.length}): ${inc.alerts.slice(0, 20).join(", ")}${inc.alerts.length > 20 ? " …" : ""}` }) : null;
  const timeline = el("ol", { class: "timeline" }, ...[...inc.timeline].reverse().map((e) => el("li", {},
    el("span", { class: "when", text: dateTime(e.at, state.tz) }),
    el("span", { class: "what" }, el("b", { text: e.action.replace("order.", "order ") }),
      e.before !== e.after ? ` ${e.before || "new"} → ${e.after}` : "", e.order_id ? ` · ${e.order_id}` : ""),
    el("span", { class: "who", text: e.actor_name || e.actor }),
    e.reason ? el("div", { class: "reason", text: e.reason }) : null)));
  const due = inc.next_due;
  box.replaceChildren(
    el("div", { class: "head" },
      el("h1", { text: inc.title || inc.category }),
      el("span", { class: `st big ${inc.status}`, text: STATUS_LABEL[inc.status] }),
      el("span", { class: `urg ${inc.urgency}`, text: inc.urgency }),
      inc.overdue ? el("span", { class: "urg urgent", text: "overdue" }) : null),
    el("div", { class: "meta", text: [inc.id, inc.category, `${areaName(inc.areas && inc.areas.village)}, ${areaName(inc.areas && inc.areas.town)}`,
      `reported ${dateTime(inc.reported_at, state.tz)}`, `${inc.reports} report${inc.reports === 1 ? "" : "s"}`,
      due ? `next deadline ${relative(due, now)}` : null].filter(Boolean).join(" · ") }),
    refusal, actions,
    el("div", { class: "orders-box" }, el("h2", { text: "Work orders" }), orders),
    el("div", { class: "cols" },
      el("section", {}, mapBox, el("h2", { text: `Merged reports (${inc.reports_filed.length})` }), alerts, reports),
      el("section", {}, el("h2", { text: "Timeline" }), timeline)));
  view.map.resize();
  if (inc.lat !== null) {
    incidentMarker.setLngLat([inc.lon, inc.lat]).addTo(view.map);
    if (!quiet) view.map.easeTo({ center: [inc.lon, inc.lat], zoom: Math.max(view.map.getZoom(), 13), duration: 400 });
  }
  showPhotos(box);
}

function orderRow(inc, o, now) {
  const who = o.assignee ? o.assignee : o.offer ? `offered to ${o.offer.staff_id}` : "–";
  const due = o.status === "dispatched" ? o.accept_due : o.finish_due;
  const live = ["dispatched", "accepted", "park_requested", "parked"].includes(o.status);
  const buttons = [];
  if (live && !o.assignee && ["dispatched", "accepted"].includes(o.status)) {
    buttons.push(el("button", { "data-order-action": "assign", title: "Offer to the nearest available qualified person (a)",
      onclick: () => orderAction(o.id, "assign") }, "Assign nearest"));
  }
  if (o.status === "park_requested") {
    buttons.push(el("button", { class: "primary", "data-order-action": "approve_park", onclick: () => orderAction(o.id, "approve_park") }, "Approve park"));
    buttons.push(el("button", { "data-order-action": "deny_park", onclick: () => withReason("Deny the postponement", (reason) => orderAction(o.id, "deny_park", { reason })) }, "Deny park…"));
  }
  if (live) {
    buttons.push(el("button", { "data-order-action": "escalate", title: "Escalate one level up (e)",
      onclick: () => withReason(`Escalate ${o.id}`, (reason) => orderAction(o.id, "escalate", { reason })) }, "Escalate…"));
  }
  return el("tr", { "data-order": o.id, class: o.status },
    el("td", {}, el("b", { text: o.department.replace(/_/g, " ") }),
      el("small", { class: "level", text: `${o.level}${o.escalations ? ` · escalated ${o.escalations}×` : ""}` })),
    el("td", {}, el("span", { class: `st ${o.status}`, text: o.status.replace("_", " ") }),
      o.progress ? el("small", { text: ` ${o.progress.replace("_", " ")}` }) : null),
    el("td", { text: who }),
    el("td", { class: due && due < now && live ? "late" : "", text: due && live ? relative(due, now) : o.done_at ? `done ${dateTime(o.done_at, state.tz)}` : "–" }),
    el("td", { class: "evidence" }, o.note ? el("div", { text: o.note }) : null,
      ...o.photos.map((p) => el("img", { "data-src": p, alt: "evidence photo", class: "thumb" }))),
    el("td", {}, el("div", { class: "order-actions" }, ...buttons)));
}

// The photo a report came with (Open311 media_url): one a citizen uploaded here is shown (it
// needs the key, like evidence); one hosted elsewhere is a link, since the page loads nothing
// from another host.
function reportMedia(r) {
  const media = r.data && r.data.media_url;
  if (!media) return null;
  let url;
  try { url = new URL(media, location.href); } catch { return null; }
  if (!["http:", "https:"].includes(url.protocol)) return null;
  if (url.pathname.startsWith("/api/v1/citizen-photos/")) {
    return el("div", { class: "report-photo" }, el("img", { "data-src": url.pathname, alt: "photo sent with the report", class: "thumb big" }));
  }
  return el("div", { class: "report-photo" }, el("a", { href: url.href, target: "_blank", rel: "noopener noreferrer", text: "photo (link)" }));
}

function refuse(e) {
  const r = document.querySelector("#detail .refusal");
  const text = e.readable || String(e);
  if (r) { r.textContent = text; r.hidden = false; }
  toast(text, "error");
}

async function run(what, call) {
  try {
    const doc = await call();
    toast(`${what}: done`, "ok");
    const id = doc && doc.id ? doc.id : state.selected;
    if (doc && doc.id) state.incidents.set(doc.id, { ...(state.incidents.get(doc.id) || {}), ...summaryOf(doc) });
    await open(id, { quiet: true });
    renderQueue();
  } catch (e) {
    refuse(e);
  }
}

function summaryOf(doc) {
  return { id: doc.id, title: doc.title, category: doc.category, status: doc.status, urgency: doc.urgency,
    village: doc.areas && doc.areas.village, town: doc.areas && doc.areas.town, departments: doc.departments,
    reported_at: doc.reported_at, updated_at: doc.updated_at, next_due: doc.next_due ?? doc.close_due,
    close_due: doc.close_due, dispatch_due: doc.dispatch_due, overdue: doc.overdue, orders: doc.orders, lat: doc.lat, lon: doc.lon };
}

function incidentAction(action) {
  const inc = state.doc;
  if (!inc) return;
  const path = `/api/v1/incidents/${encodeURIComponent(inc.id)}/actions/${action}`;
  if (action === "dispatch" || action === "redispatch") return chooseDepartments(inc, action);
  if (["cancel", "rework", "reopen"].includes(action)) {
    return withReason(`${action[0].toUpperCase()}${action.slice(1)} ${inc.id}`, (reason) =>
      run(action, () => api(path, { method: "POST", body: { reason } })));
  }
  return run(action, () => api(path, { method: "POST", body: {} }));
}

function orderAction(orderId, action, body = {}) {
  const path = action === "assign" ? `/api/v1/work-orders/${encodeURIComponent(orderId)}/assign`
    : `/api/v1/work-orders/${encodeURIComponent(orderId)}/actions/${action}`;
  return run(`${action.replace("_", " ")} ${orderId}`, () => api(path, { method: "POST", body }));
}

// -- dialogs ------------------------------------------------------------------------------------

function setupDialogs() {
  document.getElementById("new-button").addEventListener("click", newReport);
  document.getElementById("help-button").addEventListener("click", () => document.getElementById("help-dialog").showModal());
  const sel = document.querySelector("#new-form select[name=category]");
  sel.replaceChildren(...state.categories.map((c) => el("option", { value: c.code, text: `${c.name} (${c.code})` })));
}

function newReport() {
  const dialog = document.getElementById("new-dialog");
  const form = document.getElementById("new-form");
  form.reset();
  form.querySelector(".error").textContent = "";
  if (state.picked) { form.lat.value = state.picked[1].toFixed(5); form.lon.value = state.picked[0].toFixed(5); }
  dialog.showModal();
  form.onsubmit = async (ev) => {
    if (ev.submitter && ev.submitter.value === "cancel") return;
    ev.preventDefault();
    try {
      const doc = await api("/api/v1/incidents", { method: "POST", body: { category: form.category.value,
        title: form.title.value, description: form.description.value, source: "operator",
        lat: Number(form.lat.value), lon: Number(form.lon.value), key: crypto.randomUUID() } });
      dialog.close();
      state.incidents.set(doc.id, summaryOf(doc));
      toast(doc.merged ? `Merged into ${doc.id}` : `Filed ${doc.id}`, "ok");
      renderQueue();
      open(doc.id);
    } catch (e) {
      form.querySelector(".error").textContent = e.readable || String(e);
    }
  };
}

function chooseDepartments(inc, action) {
  const dialog = document.getElementById("dispatch-dialog");
  const form = document.getElementById("dispatch-form");
  const have = new Set(inc.orders.filter((o) => !["returned", "withdrawn"].includes(o.status)).map((o) => o.department));
  const preset = new Set(action === "dispatch" ? inc.default_departments : []);
  form.querySelector(".checks").replaceChildren(...state.departments.filter((d) => !have.has(d)).map((d) =>
    el("label", {}, el("input", { type: "checkbox", name: "dept", value: d, checked: preset.has(d) }), ` ${d.replace(/_/g, " ")}`)));
  form.querySelector("h2").textContent = action === "dispatch" ? "Dispatch to departments" : "Add departments";
  form.querySelector(".error").textContent = "";
  dialog.showModal();
  form.onsubmit = async (ev) => {
    if (ev.submitter && ev.submitter.value === "cancel") return;
    ev.preventDefault();
    const departments = [...form.querySelectorAll("input[name=dept]:checked")].map((x) => x.value);
    if (!departments.length) { form.querySelector(".error").textContent = "Tick at least one department."; return; }
    dialog.close();
    await run(action, () => api(`/api/v1/incidents/${encodeURIComponent(inc.id)}/actions/${action}`,
      { method: "POST", body: { departments } }));
  };
}

function withReason(title, then) {
  const dialog = document.getElementById("reason-dialog");
  const form = document.getElementById("reason-form");
  form.reset();
  form.querySelector("h2").textContent = title;
  form.querySelector(".error").textContent = "";
  dialog.showModal();
  form.onsubmit = async (ev) => {
    if (ev.submitter && ev.submitter.value === "cancel") return;
    ev.preventDefault();
    dialog.close();
    await then(form.reason.value.trim());
  };
}

// -- map and state switch ---------------------------------------------------------------------------

function setupMap() {
  mapBox = el("div", { class: "map", id: "detail-map" });
  document.body.append(mapBox);
  view = new CityMapView(mapBox, { tiles: document.querySelector('meta[name="cityops-tiles"]').content, labels: true });
  window.cityops.view = view;
  staffLayer = new PointsLayer("staff", { size: 9 });
  view.setAreas(state.areas).then(() => {
    const start = state.me.scope && /^\d+$/.test(state.me.scope) ? state.me.scope : view.root;
    view.focus(start, { animate: false });
    view.addPoints(staffLayer);
  });
  incidentMarker = new maplibregl.Marker({ color: "#ff4d4f" });
  pickMarker = new maplibregl.Marker({ color: "#ffd43b" });
  view.map.on("click", (e) => {
    state.picked = [e.lngLat.lng, e.lngLat.lat];
    pickMarker.setLngLat(e.lngLat).addTo(view.map);
  });
  mapBox.remove();
}

function setupStateSwitch() {
  const select = document.getElementById("state-area");
  const scoped = state.me.scope && /^\d+$/.test(state.me.scope);
  const opts = [];
  if (!scoped && state.me.scope === "*") opts.push(el("option", { value: "city", text: "the whole city" }));
  for (const f of state.areas.features) {
    const p = f.properties;
    if (scoped && !p.code.startsWith(state.me.scope)) continue;
    if (p.level === "village" && state.areas.features.length > 200) continue;
    opts.push(el("option", { value: p.code, text: `${"  ".repeat(p.code.length / 3 - 2)}${p.name} (${p.level})` }));
  }
  select.replaceChildren(...opts);
  select.addEventListener("change", showState);
  document.getElementById("state-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const form = ev.target;
    const code = form.area.value;
    const path = code === "city" ? "/api/v1/state" : `/api/v1/areas/${code}/state`;
    try {
      await api(path, { method: "PUT", body: { state: form.state.value, reason: form.reason.value } });
      state.states = { ...state.states, [code]: form.state.value };
      view.applyStates(state.states);
      showState();
      form.reason.value = "";
      toast(`${code === "city" ? "The city" : areaName(code)} is now in ${form.state.value} state`, "ok");
    } catch (e) {
      toast(e.readable || String(e), "error");
    }
  });
}

function showState() {
  const code = document.getElementById("state-area").value;
  const s = code === "city" ? (state.states.city || "daily") : stateAt(code);
  const tag = document.getElementById("state-now");
  tag.textContent = s.toUpperCase();
  tag.className = `state ${s}`;
}

function stateAt(code) {
  let best = state.states.city || "daily";
  let len = 0;
  for (const [c, s] of Object.entries(state.states)) if (c !== "city" && code.startsWith(c) && c.length > len) { best = s; len = c.length; }
  return best;
}

// -- keyboard ---------------------------------------------------------------------------------

function setupKeys() {
  document.addEventListener("keydown", (ev) => {
    if (ev.target.closest("input, textarea, select, dialog[open]") || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const list = rows();
    const at = list.findIndex((i) => i.id === state.selected);
    const go = (k) => { const i = list[Math.max(0, Math.min(list.length - 1, k))]; if (i) { state.selected = i.id; renderQueue(); scrollToSelected(); } };
    const firstOrder = (pred) => state.doc && state.doc.orders.find(pred);
    switch (ev.key) {
      case "j": case "ArrowDown": go(at + 1); break;
      case "k": case "ArrowUp": go(at < 0 ? 0 : at - 1); break;
      case "Enter": if (state.selected) open(state.selected); break;
      case "n": newReport(); break;
      case "r": incidentAction("register"); break;
      case "d": incidentAction("dispatch"); break;
      case "v": incidentAction("verify"); break;
      case "c": incidentAction("close"); break;
      case "x": incidentAction("cancel"); break;
      case "a": { const o = firstOrder((o) => !o.assignee && ["dispatched", "accepted"].includes(o.status)); if (o) orderAction(o.id, "assign"); break; }
      case "e": { const o = firstOrder((o) => ["dispatched", "accepted", "park_requested", "parked"].includes(o.status));
        if (o) withReason(`Escalate ${o.id}`, (reason) => orderAction(o.id, "escalate", { reason })); break; }
      case "/": document.getElementById("queue-search").focus(); break;
      case "?": document.getElementById("help-dialog").showModal(); break;
      default: return;
    }
    ev.preventDefault();
  });
}

function scrollToSelected() {
  const tr = document.querySelector("#queue tbody tr.selected");
  if (tr) tr.scrollIntoView({ block: "nearest" });
}

main().catch((e) => {
  document.body.append(el("div", { class: "fatal", text: `The console could not start: ${e.readable || e.message}` }));
  throw e;
});
