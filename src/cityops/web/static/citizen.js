// The citizen portal: report a problem on the map, follow my reports, orders and applications,
// find a service and apply (a bundle through its one merged form), my licences, rate what was
// finished, my cabinet pickups. Everything comes from the API with the citizen's own key.
import { api, key, signIn, signOut, el, relative, span, toast, shrinkPhoto, showPhotos, loadNames, deptName,
  categoryName, caseTitle } from "/static/common.js";
import { initI18n, t, languageSwitcher, onLanguageChange, language, fmtDateTime, mapLocale } from "/static/i18n.js";
import * as maplibregl from "/static/vendor/maplibre-gl.mjs";
import { baseStyle, bboxOf, credit, fallbackStyle, followLanguage, BASE_FIRST_LABEL, CJK_FONTS } from "/static/mapview.js";

const state = { me: null, citizen: null, services: [], map: null, marker: null, tab: "report",
  preview: null, uploaded: null };
window.cityops = { state };

const GRADES = ["very_satisfied", "satisfied", "neutral", "dissatisfied", "very_dissatisfied"];
// A status, a type or a group of the API in words (citizen:word), the code itself otherwise.
const words = (s) => (s ? t(`citizen:word.${s}`, { defaultValue: String(s).replace(/_/g, " ") }) : "");
const when = (s) => (s ? fmtDateTime(s * 1000) : "");
// The catalogue's own Chinese (name_zh, label_zh) on a Chinese page.
const zh = (x, field) => (language() === "zh-CN" && x[`${field}_zh`]) || x[field];
const optional = (label, required) => (required ? label : t("citizen:optional", { label }));
// An Open311 service is a case category ("event-greening-maintenance"): its name from the pack.
const serviceName = (s) => {
  const name = categoryName(s.service_code.replace(/-/g, "."));
  return name.includes(".") || name === s.service_code ? s.service_name : name;
};

// The citizen's own reports, kept by the server for every key of theirs: a page at a time.
const MY_REPORTS = "/api/v1/citizens/me/reports";
const reportsPage = (cursor, limit) => api(`${MY_REPORTS}?limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);

// Open311 speaks its own error shape: [{"code", "description"}].
async function open311(path, { form } = {}) {
  const opts = { headers: { Authorization: `Bearer ${key()}` } };
  if (form) {
    opts.method = "POST";
    opts.headers["Content-Type"] = "application/x-www-form-urlencoded";
    opts.body = new URLSearchParams(form).toString();
  }
  const r = await fetch(`/open311/v2/${path}`, opts);
  const data = await r.json().catch(() => null);
  if (!r.ok) {
    const why = Array.isArray(data) && data[0] ? data[0].description : r.statusText;
    throw new Error(t("citizen:notAccepted", { status: r.status, why }));
  }
  return data;
}

async function main() {
  await initI18n(["citizen"]);
  document.querySelector("header").append(languageSwitcher());
  document.getElementById("sign-out").addEventListener("click", signOut);
  state.me = await signIn(t("citizen:signin"), ["citizen"]);
  await loadNames();
  const name = document.getElementById("me-name");
  const sub = document.getElementById("me-sub");
  name.removeAttribute("data-i18n");
  sub.removeAttribute("data-i18n");
  const me = () => {
    if (state.citizen) sub.textContent = t("citizen:meSub", { id: state.citizen.id });
    else name.textContent = t("citizen:citizen");
  };
  try {
    state.citizen = await api("/api/v1/citizens/me");
    name.textContent = state.citizen.name;
    name.translate = false;
  } catch { /* the page works without the registry's record */ }
  me();
  onLanguageChange(() => { me(); relabel(); });
  for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => show(b.dataset.tab));
  setupReport();
  document.getElementById("search-form").addEventListener("submit", (ev) => { ev.preventDefault(); search(); });
  const hash = new URLSearchParams(location.hash.slice(1)).get("tab");
  show(hash || "report");
  document.body.classList.add("ready");
}

// What the script wrote, again in the language just chosen: the open tab is drawn again (a form
// being filled in keeps what was typed: only lists are redrawn).
function relabel() {
  fillServices();
  if (state.tab !== "report" && state.tab !== "services") show(state.tab);
}

function show(tab) {
  state.tab = tab;
  for (const b of document.querySelectorAll("#tabs button")) b.setAttribute("aria-selected", String(b.dataset.tab === tab));
  for (const s of document.querySelectorAll("section.tab")) s.hidden = s.id !== `tab-${tab}`;
  const load = { mine: loadMine, services: search, licences: loadLicences, rate: loadRate, pickups: loadPickups }[tab];
  if (load) load().catch((e) => toast(e.readable || String(e)));
  if (tab === "report" && state.map) state.map.resize();
}

// -- report ------------------------------------------------------------------------------------

async function setupReport() {
  const form = document.getElementById("report-form");
  const select = form.service_code;
  try {
    state.services = await open311("services.json");
    fillServices();
  } catch (e) {
    toast(String(e.message || e));
  }
  select.addEventListener("change", () => loadDefinition(select.value));
  form.lat.addEventListener("change", placeFromInputs);
  form.long.addEventListener("change", placeFromInputs);
  document.getElementById("here").addEventListener("click", () => {
    navigator.geolocation.getCurrentPosition((p) => setPin(p.coords.latitude, p.coords.longitude, true),
      (e) => toast(t("citizen:report.noPosition", { reason: e.message })), { enableHighAccuracy: true, timeout: 15000 });
  });
  form.photo.addEventListener("change", () => showChosenPhoto(form));
  document.getElementById("photo-clear").addEventListener("click", () => { form.photo.value = ""; showChosenPhoto(form); });
  form.addEventListener("submit", (ev) => { ev.preventDefault(); sendReport(form); });
  setupMap().catch((e) => { document.getElementById("map").replaceChildren(el("p", { class: "quiet", text: t("citizen:report.noMap", { reason: e.message }) })); });
}

function fillServices() {
  const select = document.getElementById("report-form").service_code;
  if (!state.services.length) return;
  const chosen = select.value;
  select.replaceChildren(el("option", { value: "", text: t("citizen:choose") }),
    ...groupBy(state.services, (s) => s.group).map(([group, list]) =>
      el("optgroup", { label: words(group) }, ...list.map((s) => el("option", { value: s.service_code, text: serviceName(s) })))));
  select.value = chosen;
}

function groupBy(list, f) {
  const m = new Map();
  for (const x of list) { const k = f(x) || "other"; if (!m.has(k)) m.set(k, []); m.get(k).push(x); }
  return [...m.entries()];
}

async function setupMap() {
  // A light street map of the node's own (streets, water, names) for picking the place;
  // without one, the village polygons on a dark background as before.
  const base = await baseStyle({ theme: "light" });
  const style = base || fallbackStyle(document.body.dataset.tiles);
  const map = new maplibregl.Map({ container: "map", style, center: [121.5, 31.2], zoom: 9, attributionControl: false,
    dragRotate: false, pitchWithRotate: false, fadeDuration: 0, localIdeographFontFamily: CJK_FONTS,
    locale: mapLocale() });
  state.map = map;
  await new Promise((ok) => map.on("load", ok));
  const fc = await api("/api/v1/areas.geojson?level=village");
  map.addSource("areas", { type: "geojson", data: fc });
  if (base) {
    followLanguage(map);
    credit(map, base);
    // Only the outlines over the street map: a fill would hide the streets being picked from.
    map.addLayer({ id: "areas-line", type: "line", source: "areas",
      paint: { "line-color": "#7b5ea7", "line-width": 1, "line-opacity": 0.6 } }, BASE_FIRST_LABEL);
  } else {
    map.addLayer({ id: "areas-fill", type: "fill", source: "areas", paint: { "fill-color": "#14304f", "fill-opacity": 0.7 } });
    map.addLayer({ id: "areas-line", type: "line", source: "areas", paint: { "line-color": "#3d7cc9", "line-width": 1 } });
  }
  // The person's own village when the account names one (close enough to see its streets),
  // else the whole city.
  const home = state.citizen && state.citizen.area && fc.features.find((f) => f.properties.code === state.citizen.area);
  const b = bboxOfAll(home ? [home] : fc.features);
  if (b) map.fitBounds(b, { padding: 10, duration: 0 });
  map.on("click", (e) => setPin(e.lngLat.lat, e.lngLat.lng, false));
  document.getElementById("map").dataset.ready = "1";
}

function bboxOfAll(features) {
  let b = null;
  for (const f of features) {
    const [[w, s], [e, n]] = bboxOf(f.geometry);
    b = b ? [[Math.min(b[0][0], w), Math.min(b[0][1], s)], [Math.max(b[1][0], e), Math.max(b[1][1], n)]] : [[w, s], [e, n]];
  }
  return b;
}

function setPin(lat, lon, move) {
  const form = document.getElementById("report-form");
  form.lat.value = lat.toFixed(6);
  form.long.value = lon.toFixed(6);
  if (!state.map) return;
  if (!state.marker) state.marker = new maplibregl.Marker({ color: "#ff5c5c" });
  state.marker.setLngLat([lon, lat]).addTo(state.map);
  if (move) state.map.easeTo({ center: [lon, lat], zoom: Math.max(state.map.getZoom(), 13), duration: 0 });
}

function placeFromInputs() {
  const form = document.getElementById("report-form");
  const lat = Number(form.lat.value), lon = Number(form.long.value);
  if (form.lat.value && form.long.value && Number.isFinite(lat) && Number.isFinite(lon)) setPin(lat, lon, true);
}

async function loadDefinition(code) {
  const box = document.getElementById("attributes");
  const notice = document.getElementById("service-notice");
  box.replaceChildren();
  notice.hidden = true;
  if (!code) return;
  const service = state.services.find((s) => s.service_code === code);
  if (!service || !service.metadata) return;
  const def = await open311(`services/${encodeURIComponent(code)}.json`);
  for (const a of [...def.attributes].sort((x, y) => x.order - y.order)) {
    if (!a.variable) { notice.textContent = a.description; notice.hidden = false; continue; }
    const name = `attribute[${a.code}]`;
    const label = optional(a.description, a.required);
    if (a.datatype === "singlevaluelist") {
      box.append(el("label", {}, label, el("select", { name, required: a.required, "data-attribute": a.code },
        el("option", { value: "", text: t("citizen:choose") }), ...a.values.map((v) => el("option", { value: v.key, text: v.name })))));
    } else if (a.datatype === "multivaluelist") {
      box.append(el("fieldset", { class: "multi", "data-attribute": a.code }, el("legend", { text: label }),
        ...a.values.map((v) => el("label", { class: "check" }, el("input", { type: "checkbox", name: `${name}[]`, value: v.key }), v.name))));
    } else {
      box.append(el("label", {}, label, el("input", { name, required: a.required, "data-attribute": a.code,
        inputmode: a.datatype === "number" ? "decimal" : undefined })));
    }
  }
}

function showChosenPhoto(form) {
  const box = document.getElementById("photo-preview");
  const img = box.querySelector("img");
  const file = form.photo.files[0];
  if (state.preview) URL.revokeObjectURL(state.preview);
  state.preview = file ? URL.createObjectURL(file) : null;
  if (state.preview) img.src = state.preview; else img.removeAttribute("src");
  box.hidden = !file;
  form.querySelector(".error").textContent = "";
}

// The photo goes up first, on its own, and the report carries its URL as Open311 media_url.
// A report sent again after a refusal reuses the photo already taken.
async function uploadPhoto(file) {
  if (state.uploaded && state.uploaded.file === file) return state.uploaded.url;
  const blob = await shrinkPhoto(file);
  const answer = await api("/api/v1/citizens/me/photos", { method: "POST", body: blob, raw: true,
    headers: { "Content-Type": blob.type || "application/octet-stream" } });
  state.uploaded = { file, url: answer.url };
  return answer.url;
}

async function sendReport(form) {
  const error = form.querySelector(".error");
  error.textContent = "";
  const fields = [];
  for (const [k, v] of new FormData(form).entries()) {
    if (typeof v === "string" && v.trim() !== "") fields.push([k, v.trim()]);
  }
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const file = form.photo.files[0];
    if (file) {
      error.textContent = t("citizen:report.sendingPhoto");
      try {
        fields.push(["media_url", await uploadPhoto(file)]);
      } catch (e) {
        error.textContent = t("citizen:report.photoRefused", { reason: e.readable || e.message || e });
        return;
      }
      error.textContent = "";
    }
    const [answer] = await open311("requests.json", { form: fields });
    form.reset();
    state.uploaded = null;
    showChosenPhoto(form);
    document.getElementById("attributes").replaceChildren();
    if (state.marker) state.marker.remove();
    toast(t("citizen:report.sent", { id: answer.service_request_id, notice: answer.service_notice || "" }), "ok");
    show("mine");
  } catch (e) {
    error.textContent = e.message || String(e);
  } finally {
    button.disabled = false;
  }
}

// -- mine --------------------------------------------------------------------------------------

async function loadMine() {
  const reports = document.getElementById("my-reports");
  const first = await reportsPage(null, 20);
  if (!first.items.length) reports.replaceChildren(el("p", { class: "quiet", text: t("citizen:mine.noReports") }));
  else {
    reports.replaceChildren();
    showReports(reports, first);
  }
  const [orders, subs] = await Promise.all([api("/api/v1/hotline/orders"), api("/api/v1/submissions")]);
  const ordersBox = document.getElementById("my-orders");
  ordersBox.replaceChildren(...(orders.items.length ? orders.items.map((o) => el("article", { class: `card order ${o.status}`, "data-order": o.number },
    el("span", { class: "st", text: words(o.status) }), el("h2", { text: o.title, translate: "no" }),
    el("p", { class: "meta", text: `${o.number} · ${words(o.type)}${o.department ? " · " + deptName(o.department) : ""}` }),
    o.answer ? el("p", {}, t("citizen:mine.answer"), el("span", { text: o.answer, translate: "no" })) : null))
    : [el("p", { class: "quiet", text: t("citizen:mine.noOrders") })]));
  const subsBox = document.getElementById("my-submissions");
  subsBox.replaceChildren(...(subs.items.length ? subs.items.map(submissionCard) : [el("p", { class: "quiet", text: t("citizen:mine.noApplications") })]));
}

function reportCard(r) {
  return el("article", { class: `card report ${r.status}`, "data-request": r.service_request_id, "data-incident": r.incident_id },
    el("span", { class: "st", text: words(r.status) }),
    el("h2", { text: r.service_code ? serviceName(r) : r.service_name }),
    el("p", { class: "meta", text: `${r.service_request_id} · ${r.address || ""}`, translate: "no" }),
    r.description ? el("p", { text: r.description, translate: "no" }) : null,
    ownPhoto(r.media_url),
    el("p", { class: "meta notes", text: r.status_notes || "", translate: "no" }),
    el("p", { class: "meta", text: [r.agency_responsible, r.expected_datetime ? t("citizen:mine.expected", { when: r.expected_datetime.slice(0, 16).replace("T", " ") }) : null].filter(Boolean).join(" · ") }));
}

// Appends a page of reports, and a button for the next page while there is one.
function showReports(box, page) {
  const cards = page.items.map(reportCard);
  box.append(...cards);
  for (const card of cards) showPhotos(card);
  if (!page.next) return;
  const more = el("button", { type: "button", class: "small", "data-action": "more-reports" }, t("citizen:mine.older"));
  more.addEventListener("click", async () => {
    more.disabled = true;
    try {
      const next = await reportsPage(page.next, 20);
      more.remove();
      showReports(box, next);
    } catch (e) {
      more.disabled = false;
      toast(e.readable || String(e));
    }
  });
  box.append(more);
}

// Only a photo uploaded here is shown (fetched with the key); the page loads nothing from
// another host.
function ownPhoto(media) {
  if (!media) return null;
  let url;
  try { url = new URL(media, location.href); } catch { return null; }
  if (!url.pathname.startsWith("/api/v1/citizen-photos/")) return null;
  return el("img", { class: "report-photo", "data-src": url.pathname, alt: t("citizen:mine.photoAlt") });
}

function submissionCard(s) {
  return el("article", { class: `card submission ${s.status}`, "data-submission": s.id },
    el("span", { class: "st", text: words(s.status) }), el("h2", { text: s.title }),
    el("p", { class: "meta", text: t("citizen:mine.sent", { id: s.id, when: when(s.submitted_at) }) }),
    ...(s.applications || []).map((a) => el("p", { class: "meta app", "data-application": a.id },
      `${a.item_name || words(a.item)} · ${deptName(a.department)} · ${words(a.status)}`)));
}

// -- services ------------------------------------------------------------------------------------

async function search() {
  const q = document.getElementById("search-form").q.value.trim();
  const r = await api(`/api/v1/services?q=${encodeURIComponent(q)}`);
  const box = document.getElementById("results");
  box.replaceChildren(...(r.items.length ? r.items.slice(0, 30).map((s) => el("article", { class: `card service ${s.kind}`, "data-code": s.code },
    el("span", { class: `kind ${s.kind}`, text: t(s.kind === "bundle" ? "citizen:services.bundle" : "citizen:services.item") }),
    el("h2", { text: zh(s, "name") }),
    s.name_zh && language() !== "zh-CN" ? el("p", { class: "meta", text: s.name_zh }) : null,
    el("p", { class: "meta", text: s.kind === "bundle" ? `${t("citizen:services.items", { count: (s.items || []).length })} · ${(s.departments || []).map(deptName).join(t("common:listSep"))}`
      : `${deptName(s.department)}${s.time_limit ? " · " + s.time_limit : ""}` }),
    el("button", { type: "button", class: "small", "data-action": "apply", onclick: () => openForm(s.kind, s.code, zh(s, "name")) }, t("citizen:services.apply"))))
    : [el("p", { class: "quiet", text: t("citizen:services.none") })]));
}

async function openForm(kind, code, name) {
  const path = kind === "bundle" ? `/api/v1/bundles/${encodeURIComponent(code)}/form` : `/api/v1/services/${encodeURIComponent(code)}/form`;
  const f = await api(path);
  const box = document.getElementById("apply");
  const form = el("form", { class: "applyform", id: "apply-form", autocomplete: "off" });
  form.append(el("h2", { text: name }),
    el("p", { class: "meta quiet", text: t("citizen:form.oneForm", { count: f.items.length, items: f.items.map((i) => zh(i, "name")).join(t("citizen:form.itemSep")) }) }));
  for (const fld of f.fields) form.append(fieldInput(fld));
  form.append(el("h2", { text: t("citizen:form.materials") }));
  for (const m of f.materials) {
    const asked = m.status === "asked" || m.status === undefined;
    const said = m.status === "attached" ? t("citizen:material.attached", { number: m.licence_number || t("citizen:material.eLicence") })
      : ["shared", "pending", "provided"].includes(m.status) ? t(`citizen:material.${m.status}`)
        : t(m.required ? "citizen:material.handIn" : "citizen:material.optional");
    form.append(el("div", { class: `material ${asked ? "asked" : m.status}`, "data-material": m.code },
      el("span", { text: zh(m, "name") }), el("span", { class: "ms", text: said })));
    if (m.reason) form.append(el("p", { class: "notice", text: m.reason }));
    if (asked) form.append(el("label", {}, optional(t("citizen:material.reference", { name: zh(m, "name") }), m.required),
      el("input", { name: `material:${m.code}`, required: m.required, placeholder: t("citizen:material.referenceHint") })));
  }
  form.append(el("p", { class: "error", role: "alert" }), el("button", { type: "submit", class: "primary" }, t("citizen:form.submit")));
  form.addEventListener("submit", (ev) => { ev.preventDefault(); submitForm(form, kind, code, f); });
  box.replaceChildren(form);
  form.scrollIntoView({ block: "start" });
}

function fieldInput(fld) {
  const label = optional(zh(fld, "label"), fld.required);
  const v = fld.value;
  // What the registry holds is filled in, and sent back only when the citizen changes it (the
  // server takes the registry's own value otherwise).
  const attrs = { name: `field:${fld.code}`, required: fld.required, "data-type": fld.type,
    "data-prefill": v !== undefined && v !== null ? String(v) : undefined };
  if (fld.type === "boolean") {
    return el("label", { class: "check" }, el("input", { ...attrs, required: false, type: "checkbox", checked: v === true }), label);
  }
  if (fld.type === "choice") {
    const s = el("select", attrs, el("option", { value: "", text: t("citizen:choose") }), ...fld.choices.map((c) => el("option", { value: c, text: c })));
    if (v !== undefined) s.value = String(v);
    return el("label", {}, label, s);
  }
  const type = { number: "number", integer: "number", date: "date", phone: "tel" }[fld.type] || "text";
  const input = el("input", { ...attrs, type, step: fld.type === "number" ? "any" : undefined });
  if (v !== undefined && v !== null) input.value = String(v);
  return el("label", {}, label, input);
}

async function submitForm(form, kind, code, f) {
  const error = form.querySelector(".error");
  error.textContent = "";
  const answers = {}, materials = {};
  for (const input of form.querySelectorAll("[name]")) {
    const [what, name] = input.name.split(":");
    if (what === "field") {
      const t = input.dataset.type;
      if (t === "boolean") { answers[name] = input.checked; continue; }
      const raw = input.value.trim();
      if (raw === "" || (input.dataset.prefill !== undefined && raw === input.dataset.prefill)) continue;
      answers[name] = t === "number" || t === "integer" ? Number(raw) : raw;
    } else if (what === "material" && input.value.trim()) materials[name] = input.value.trim();
  }
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    if (!form.dataset.key) form.dataset.key = `portal-${crypto.randomUUID()}`;
    const sub = await api("/api/v1/applications", { method: "POST",
      body: { [kind === "bundle" ? "bundle" : "service"]: code, answers, materials, key: form.dataset.key } });
    document.getElementById("apply").replaceChildren(el("div", { class: "done-msg", id: "applied" },
      el("b", { text: t("citizen:form.sent", { title: sub.title }) }), el("p", { text: t("citizen:form.submission", { id: sub.id, count: sub.applications.length }) })),
    submissionCard(sub));
    toast(t("citizen:form.toast"), "ok");
  } catch (e) {
    const detail = Array.isArray(e.detail) ? "\n" + e.detail.join("\n") : "";
    error.textContent = (e.readable || String(e)) + detail;
  } finally {
    button.disabled = false;
  }
}

// -- licences --------------------------------------------------------------------------------------

async function loadLicences() {
  const r = await api("/api/v1/licences");
  document.getElementById("licences").replaceChildren(...(r.items.length ? r.items.map((l) => el("article", { class: `card licence ${l.state}`, "data-licence": l.id },
    el("span", { class: "st", text: words(l.state) }), el("h2", { text: l.type_name || words(l.type) }),
    el("p", { class: "meta", text: t("citizen:licence.number", { number: l.number }) }),
    el("p", { class: "meta", text: `${t(l.valid_until ? "citizen:licence.validFromTo" : "citizen:licence.validFrom", { from: l.valid_from, to: l.valid_until })}${l.issuer ? " · " + deptName(l.issuer) : ""}` })))
    : [el("p", { class: "quiet", text: t("citizen:licence.none") })]));
}

// -- rate ------------------------------------------------------------------------------------------

async function loadRate() {
  const [orders, subs, reviews] = await Promise.all([api("/api/v1/hotline/orders"), api("/api/v1/submissions"), api("/api/v1/reviews")]);
  const rated = new Map(reviews.items.map((r) => [`${r.subject_kind}:${r.subject_id}`, r]));
  const things = [];
  // Several reports may have joined one case: it is rated once. Only the newest 500 reports
  // are looked through, as every one of them costs the server a read of its case.
  const cases = new Set();
  let cursor = null;
  for (let pages = 0; pages < 5; pages++) {
    const page = await reportsPage(cursor, 100);
    for (const r of page.items) {
      if (!r.finished || cases.has(r.incident_id)) continue;
      cases.add(r.incident_id);
      things.push({ kind: "incident", id: r.incident_id, title: caseTitle(r) || t("citizen:rate.report", { id: r.service_request_id }), what: t("citizen:rate.myReport", { id: r.service_request_id }) });
    }
    cursor = page.next;
    if (!cursor) break;
  }
  for (const o of orders.items) if (["answered", "closed"].includes(o.status)) things.push({ kind: "hotline_order", id: o.number, title: o.title, what: t("citizen:rate.order", { id: o.number }) });
  for (const s of subs.items) for (const a of s.applications || []) {
    if (a.status === "result_issued") things.push({ kind: "application", id: a.id, title: a.item_name || words(a.item), what: t("citizen:rate.application", { id: a.id }) });
  }
  const box = document.getElementById("to-rate");
  box.replaceChildren(...(things.length ? things.map((t) => rateCard(t, rated.get(`${t.kind}:${t.id}`)))
    : [el("p", { class: "quiet", text: t("citizen:rate.none") })]));
}

function rateCard(thing, review) {
  const grade = el("select", { name: "grade", "aria-label": t("citizen:rate.grade") }, ...GRADES.map((v) => el("option", { value: v, text: t(`citizen:grade.${v}`) })));
  if (review) grade.value = review.grade;
  const comment = el("textarea", { name: "comment", rows: 2, placeholder: t("citizen:rate.commentHint") });
  const card = el("article", { class: "card rate", "data-subject": `${thing.kind}:${thing.id}` },
    el("span", { class: "st", text: review ? t("citizen:rate.rated", { grade: words(review.grade) }) : t("citizen:rate.notYet") }),
    el("h2", { text: thing.title }), el("p", { class: "meta", text: thing.what }),
    el("label", {}, t("citizen:rate.how"), grade), el("label", {}, t("citizen:rate.comment"), comment));
  const button = el("button", { type: "button", class: "primary", "data-action": "rate", disabled: review && review.rerate_left === 0 }, t(review ? "citizen:rate.change" : "citizen:rate.send"));
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const r = await api("/api/v1/reviews", { method: "POST", body: { subject_kind: thing.kind, subject_id: thing.id, grade: grade.value,
        ...(comment.value.trim() ? { comment: comment.value.trim() } : {}) } });
      card.querySelector(".st").textContent = t("citizen:rate.rated", { grade: words(r.grade) });
      toast(t(r.bad ? "citizen:rate.thanksBad" : "citizen:rate.thanks"), "ok");
    } catch (e) {
      toast(e.readable || String(e));
    } finally {
      button.disabled = false;
    }
  });
  card.append(button);
  return card;
}

// -- pickups ---------------------------------------------------------------------------------------

async function loadPickups() {
  const r = await api("/api/v1/cabinet-items");
  const now = Date.now() / 1000;
  document.getElementById("pickups").replaceChildren(...(r.items.length ? r.items.map((i) => {
    const card = el("article", { class: `card pickup ${i.status}`, "data-item": i.id },
      el("span", { class: "st", text: words(i.status) }), el("h2", { text: i.description || t("citizen:pickups.item"), translate: i.description ? "no" : null }),
      el("p", { class: "meta", text: t("citizen:pickups.where", { cabinet: i.cabinet_id, compartment: i.compartment }) }),
      el("p", { class: "meta", text: i.status === "waiting" ? t("citizen:pickups.collect", { span: span(i.expires - now), when: when(i.expires) }) : i.collected_at ? t("citizen:pickups.collected", { when: when(i.collected_at) }) : "" }));
    if (i.status === "waiting") {
      const code = el("input", { name: "code", inputmode: "numeric", placeholder: t("citizen:pickups.codeHint"), "aria-label": t("citizen:pickups.code") });
      const button = el("button", { type: "button", class: "primary" }, t("citizen:pickups.open"));
      button.addEventListener("click", async () => {
        try {
          const res = await api(`/api/v1/cabinets/${encodeURIComponent(i.cabinet_id)}/pickup`, { method: "POST", body: { code: code.value.trim() } });
          toast(t("citizen:pickups.opened", { compartment: res.compartment }), "ok");
          loadPickups();
        } catch (e) { toast(e.readable || String(e)); }
      });
      card.append(el("label", {}, t("citizen:pickups.code"), code), button);
    }
    return card;
  }) : [el("p", { class: "quiet", text: t("citizen:pickups.none") })]));
}

main().catch((e) => { document.body.append(el("div", { class: "fatal", text: t("citizen:fatal", { reason: e.readable || e.message || e }) })); });
