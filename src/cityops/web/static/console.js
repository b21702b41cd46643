// The operator console: the incident queue of the key's scope, one incident at a time, and
// every move of the case workflow, with the server's refusals shown as the server gives them.
import { api, signIn, LiveStream, el, fmt, relative, dateTime, toast, showPhotos, STATUS_LABEL,
  STAFF_COLORS, loadNames, deptName, categoryName, caseTitle, caseTitleMark, roleName, word, span } from "/static/common.js";
import { initI18n, t, languageSwitcher, onLanguageChange, localName } from "/static/i18n.js";
import { CityMapView, PointsLayer, maplibregl } from "/static/mapview.js";

const OPEN = new Set(["collected", "registered", "dispatched", "accepted", "handled", "verified"]);
const NEEDS_CENTRE = new Set(["collected", "registered", "handled", "verified"]);
const state = { me: null, incidents: new Map(), selected: null, doc: null, sort: { key: "due", dir: 1 },
  filter: "open", search: "", q: 100000, tz: undefined, states: {}, departments: [], categories: [],
  picked: null, staffNames: [] };
window.cityops = { state };

let view, staffLayer, incidentMarker, pickMarker, mapBox;

async function main() {
  await initI18n(["console", "cameras", "storm"]);
  document.querySelector("header .right").prepend(languageSwitcher());
  const me = await signIn(t("console:signin"), ["admin", "operator", "department", "station"]);
  state.me = me;
  const who = () => `${roleName(me.role)}${me.scope && me.scope !== "*" ? " · " + me.scope : ""}`;
  document.getElementById("who").textContent = who();
  const [areas, categories] = await Promise.all([api("/api/v1/areas.geojson"), api("/api/v1/categories"), loadNames()]);
  state.areas = areas;
  state.names = new Map(areas.features.map((f) => [f.properties.code, f.properties]));
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
  onLanguageChange(() => {
    document.getElementById("who").textContent = who();
    connection(connState);
    fillStateAreas();
    fillCategories();
    showState();
    renderQueue();
    if (state.doc) renderDetail(state.doc, true);
  });
}

let connState = "connecting";
function connection(s) {
  connState = s;
  const c = document.getElementById("conn");
  c.textContent = t(`common:conn.${s}`, { defaultValue: s });
  c.className = `conn ${s}`;
}

const areaName = (code) => (code && state.names.has(code) ? localName(state.names.get(code)) : code || "–");
const depts = (list) => (list || []).map(deptName).join(t("common:listSep"));

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
  if (text) list = list.filter((i) => `${i.id} ${i.title} ${caseTitle(i)} ${i.category} ${categoryName(i.category)} ${areaName(i.village)} ${i.departments.join(" ")} ${depts(i.departments)}`.toLowerCase().includes(text));
  const key = { due: dueOf, status: (i) => i.status, title: (i) => caseTitle(i), area: (i) => areaName(i.village),
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
  const figures = ` · ${t("console:queue.figures", { open: fmt.format(c.open), overdue: fmt.format(c.overdue) })}`;
  return held < c.open ? `${figures} · ${t("console:queue.capped", { held: fmt.format(held), open: fmt.format(c.open) })}` : figures;
}

function renderQueue() {
  const list = rows();
  const now = Date.now() / 1000;
  document.getElementById("queue-count").textContent = `${t("console:queue.shown", { n: fmt.format(list.length) })}${queueNote()}`;
  const body = document.querySelector("#queue tbody");
  body.replaceChildren(...list.slice(0, 400).map((i) => {
    const due = dueOf(i);
    const late = Number.isFinite(due) && due < now;
    return el("tr", { "data-id": i.id, class: `${i.id === state.selected ? "selected" : ""} ${i.urgency}`,
      onclick: () => open(i.id) },
      el("td", { class: `due ${late || i.overdue ? "late" : ""}`, text: Number.isFinite(due) ? (late ? t("console:overdueBy", { span: span(due - now) }) : relative(due, now)) : "–" }),
      el("td", {}, el("span", { class: `st ${i.status}`, text: STATUS_LABEL[i.status] })),
      el("td", { class: "title" }, el("b", { text: caseTitle(i), translate: caseTitleMark(i) }), el("small", { text: categoryName(i.category) })),
      el("td", { text: areaName(i.village) }),
      el("td", { text: depts(i.departments) || "–" }),
      el("td", { class: "when", text: dateTime(i.reported_at, state.tz) }));
  }));
  if (!list.length) body.replaceChildren(el("tr", {}, el("td", { colspan: 6, class: "quiet", text: t("console:queue.empty") })));
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
      el("div", { class: "empty", text: e.status === 404 ? t("console:notHere") : "" }));
    return;
  }
  history.replaceState(null, "", `#incident=${encodeURIComponent(id)}`);
  renderDetail(state.doc, quiet);
}

// The move, its shortcut, and the states it is the next step in (its label: console:do.<move>).
const INCIDENT_ACTIONS = [
  ["register", "r", ["collected"]],
  ["dispatch", "d", ["registered"]],
  ["verify", "v", ["handled"]],
  ["close", "c", ["verified"]],
  ["rework", "", ["handled", "verified"]],
  ["cancel", "x", ["collected", "registered"]],
  ["redispatch", "", ["dispatched", "accepted"]],
  ["reopen", "", ["closed"]],
];

// A state in words, of a case or of a work order (a timeline names both).
const stateWord = (s) => (!s ? t("console:fresh") : t(`common:status.${s}`, { defaultValue: "" }) || word("order", s));

function renderDetail(inc, quiet) {
  const box = document.getElementById("detail");
  const now = Date.now() / 1000;
  const refusal = el("div", { class: "refusal", role: "alert", hidden: true });
  const actions = el("div", { class: "actions" }, ...INCIDENT_ACTIONS.map(([action, k, when]) => [action, t(`console:do.${action}`), k, when]).map(([action, label, k, when]) =>
    el("button", { class: when.includes(inc.status) ? "primary" : "", "data-action": action,
      title: k ? `${label} (${k})` : label, onclick: () => incidentAction(action) }, label,
      k ? el("kbd", { text: k }) : null)));
  const orders = el("table", { class: "orders" }, el("thead", {}, el("tr", {},
    ...["department", "state", "staff", "due", "evidence"].map((h) => el("th", { text: t(`console:orders.${h}`) })), el("th"))),
  el("tbody", {}, ...inc.orders.map((o) => orderRow(inc, o, now))));
  if (!inc.orders.length) orders.append(el("tbody", {}, el("tr", {}, el("td", { colspan: 6, class: "quiet", text: t("console:orders.none") }))));
  const opening = (inc.timeline.find((e) => e.action === "collect") || { detail: {} }).detail.report;
  const isOpen = !["closed", "cancelled"].includes(inc.status);
  const reports = el("ol", { class: "reports" }, ...inc.reports_filed.map((r) => el("li", { "data-report": r.key },
    el("b", { text: word("source", r.source) }), ` · ${dateTime(r.at, state.tz)}`, r.reporter ? el("span", { translate: "no" }, ` · ${r.reporter}`) : "",
    r.category && r.category !== inc.category ? ` · ${t("console:filedAs", { category: categoryName(r.category) })}` : "",
    // A report merged by mistake goes back out into a case of its own.
    isOpen && r.key !== opening ? el("button", { class: "split", "data-split": r.key, title: t("console:split.title"),
      onclick: () => withReason(t("console:split.reason", { id: inc.id }), (reason) => run(t("console:do.split"), async () =>
        (await api(`/api/v1/incidents/${encodeURIComponent(inc.id)}/split`, { method: "POST", body: { report: r.key, reason } })).incident)) }, t("console:split.button")) : null,
    r.text ? el("div", { text: r.text, translate: "no" }) : null, reportMedia(r))));
  const alerts = inc.alerts && inc.alerts.length ? el("p", { class: "alerts quiet" },
    `${t("console:alerts", { n: inc.alerts.length })} `, el("span", { translate: "no", text: `${inc.alerts.slice(0, 20).join(", ")}${inc.alerts.length > 20 ? " …" : ""}` })) : null;
  const timeline = el("ol", { class: "timeline" }, ...[...inc.timeline].reverse().map((e) => el("li", {},
    el("span", { class: "when", text: dateTime(e.at, state.tz) }),
    el("span", { class: "what" }, el("b", { text: word("action", e.action) }),
      e.before !== e.after ? ` ${stateWord(e.before)} → ${stateWord(e.after)}` : "", e.order_id ? ` · ${e.order_id}` : ""),
    el("span", { class: "who", text: e.actor_name || e.actor, translate: "no" }),
    e.reason ? el("div", { class: "reason", text: e.reason, translate: "no" }) : null)));
  const due = inc.next_due;
  box.replaceChildren(
    el("div", { class: "head" },
      el("h1", { text: caseTitle(inc), translate: caseTitleMark(inc) }),
      el("span", { class: `st big ${inc.status}`, text: STATUS_LABEL[inc.status] }),
      el("span", { class: `urg ${inc.urgency}`, text: word("urgency", inc.urgency) }),
      inc.overdue ? el("span", { class: "urg urgent", text: t("console:overdue") }) : null),
    el("div", { class: "meta", text: [inc.id, categoryName(inc.category), `${areaName(inc.areas && inc.areas.village)}${t("common:listSep")}${areaName(inc.areas && inc.areas.town)}`,
      t("console:reportedAt", { when: dateTime(inc.reported_at, state.tz) }), t("console:reports", { count: inc.reports }),
      due ? t("console:nextDue", { when: relative(due, now) }) : null].filter(Boolean).join(" · ") }),
    refusal, actions,
    el("div", { class: "orders-box" }, el("h2", { text: t("console:orders.title") }), orders),
    el("div", { class: "cols" },
      el("section", {}, mapBox, el("h2", { text: t("console:merged", { n: inc.reports_filed.length }) }), alerts, reports),
      el("section", {}, el("h2", { text: t("console:timeline") }), timeline)));
  view.map.resize();
  if (inc.lat !== null) {
    incidentMarker.setLngLat([inc.lon, inc.lat]).addTo(view.map);
    if (!quiet) view.map.easeTo({ center: [inc.lon, inc.lat], zoom: Math.max(view.map.getZoom(), 13), duration: 400 });
  }
  showPhotos(box);
}

function orderRow(inc, o, now) {
  const who = o.assignee ? o.assignee : o.offer ? t("console:offeredTo", { id: o.offer.staff_id }) : "–";
  const due = o.status === "dispatched" ? o.accept_due : o.finish_due;
  const live = ["dispatched", "accepted", "park_requested", "parked"].includes(o.status);
  const buttons = [];
  if (live && !o.assignee && ["dispatched", "accepted"].includes(o.status)) {
    buttons.push(el("button", { "data-order-action": "assign", title: t("console:assign.title"),
      onclick: () => orderAction(o.id, "assign") }, t("console:assign.button")));
  }
  if (o.status === "park_requested") {
    buttons.push(el("button", { class: "primary", "data-order-action": "approve_park", onclick: () => orderAction(o.id, "approve_park") }, t("console:park.approve")));
    buttons.push(el("button", { "data-order-action": "deny_park", onclick: () => withReason(t("console:park.denyTitle"), (reason) => orderAction(o.id, "deny_park", { reason })) }, t("console:park.deny")));
  }
  if (live) {
    buttons.push(el("button", { "data-order-action": "escalate", title: t("console:escalate.title"),
      onclick: () => withReason(t("console:escalate.reason", { id: o.id }), (reason) => orderAction(o.id, "escalate", { reason })) }, t("console:escalate.button")));
  }
  return el("tr", { "data-order": o.id, class: o.status },
    el("td", {}, el("b", { text: deptName(o.department) }),
      el("small", { class: "level", text: `${word("level", o.level)}${o.escalations ? ` · ${t("console:escalated", { n: o.escalations })}` : ""}` })),
    el("td", {}, el("span", { class: `st ${o.status}`, text: word("order", o.status) }),
      o.progress ? el("small", { text: ` ${word("progress", o.progress)}` }) : null),
    el("td", { text: who }),
    el("td", { class: due && due < now && live ? "late" : "", text: due && live ? relative(due, now) : o.done_at ? t("console:doneAt", { when: dateTime(o.done_at, state.tz) }) : "–" }),
    el("td", { class: "evidence" }, o.note ? el("div", { text: o.note, translate: "no" }) : null,
      ...o.photos.map((p) => el("img", { "data-src": p, alt: t("console:evidencePhoto"), class: "thumb" }))),
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
    return el("div", { class: "report-photo" }, el("img", { "data-src": url.pathname, alt: t("console:reportPhoto"), class: "thumb big" }));
  }
  return el("div", { class: "report-photo" }, el("a", { href: url.href, target: "_blank", rel: "noopener noreferrer", text: t("console:photoLink") }));
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
    toast(t("console:done", { what }), "ok");
    const id = doc && doc.id ? doc.id : state.selected;
    if (doc && doc.id) state.incidents.set(doc.id, { ...(state.incidents.get(doc.id) || {}), ...summaryOf(doc) });
    await open(id, { quiet: true });
    renderQueue();
  } catch (e) {
    refuse(e);
  }
}

function summaryOf(doc) {
  return { id: doc.id, title: doc.title, titles: doc.titles, category: doc.category, status: doc.status, urgency: doc.urgency,
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
    return withReason(t(`console:ask.${action}`, { id: inc.id }), (reason) =>
      run(t(`console:do.${action}`), () => api(path, { method: "POST", body: { reason } })));
  }
  return run(t(`console:do.${action}`), () => api(path, { method: "POST", body: {} }));
}

function orderAction(orderId, action, body = {}) {
  const path = action === "assign" ? `/api/v1/work-orders/${encodeURIComponent(orderId)}/assign`
    : `/api/v1/work-orders/${encodeURIComponent(orderId)}/actions/${action}`;
  return run(`${t(`console:orderDo.${action}`)} ${orderId}`, () => api(path, { method: "POST", body }));
}

// -- dialogs ------------------------------------------------------------------------------------

function setupDialogs() {
  document.getElementById("new-button").addEventListener("click", newReport);
  document.getElementById("help-button").addEventListener("click", () => document.getElementById("help-dialog").showModal());
  fillCategories();
}

function fillCategories() {
  const sel = document.querySelector("#new-form select[name=category]");
  const chosen = sel.value;
  sel.replaceChildren(...state.categories.map((c) => el("option", { value: c.code, text: `${localName(c)} (${c.code})` })));
  if (chosen) sel.value = chosen;
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
      toast(t(doc.merged ? "console:new.merged" : "console:new.filed", { id: doc.id }), "ok");
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
    el("label", {}, el("input", { type: "checkbox", name: "dept", value: d, checked: preset.has(d) }), ` ${deptName(d)}`)));
  form.querySelector("h2").textContent = t(action === "dispatch" ? "console:dispatch.title" : "console:dispatch.add");
  form.querySelector(".error").textContent = "";
  dialog.showModal();
  form.onsubmit = async (ev) => {
    if (ev.submitter && ev.submitter.value === "cancel") return;
    ev.preventDefault();
    const departments = [...form.querySelectorAll("input[name=dept]:checked")].map((x) => x.value);
    if (!departments.length) { form.querySelector(".error").textContent = t("console:dispatch.none"); return; }
    dialog.close();
    await run(t(`console:do.${action}`), () => api(`/api/v1/incidents/${encodeURIComponent(inc.id)}/actions/${action}`,
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

function fillStateAreas() {
  const select = document.getElementById("state-area");
  const chosen = select.value;
  const scoped = state.me.scope && /^\d+$/.test(state.me.scope);
  const opts = [];
  if (!scoped && state.me.scope === "*") opts.push(el("option", { value: "city", text: t("console:state.city") }));
  for (const f of state.areas.features) {
    const p = f.properties;
    if (scoped && !p.code.startsWith(state.me.scope)) continue;
    if (p.level === "village" && state.areas.features.length > 200) continue;
    opts.push(el("option", { value: p.code, text: `${"  ".repeat(p.code.length / 3 - 2)}${localName(p)} (${word("level", p.level)})` }));
  }
  select.replaceChildren(...opts);
  if (chosen) select.value = chosen;
}

function setupStateSwitch() {
  const select = document.getElementById("state-area");
  fillStateAreas();
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
      toast(t("console:state.now", { area: code === "city" ? t("console:state.theCity") : areaName(code), state: word("opstate", form.state.value) }), "ok");
    } catch (e) {
      toast(e.readable || String(e), "error");
    }
  });
}

function showState() {
  const code = document.getElementById("state-area").value;
  const s = code === "city" ? (state.states.city || "daily") : stateAt(code);
  const tag = document.getElementById("state-now");
  tag.textContent = word("opstate", s).toUpperCase();
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
        if (o) withReason(t("console:escalate.reason", { id: o.id }), (reason) => orderAction(o.id, "escalate", { reason })); break; }
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
  document.body.append(el("div", { class: "fatal", text: t("console:fatal", { reason: e.readable || e.message }) }));
  throw e;
});
