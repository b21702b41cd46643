// Administration: keys, devices (one, a CSV file, lifecycles, silences), field staff (the
// roster: added, edited, retired; their status) and grid cells, all through the same API as
// the command line and scripts. The page decides nothing
// about scope: it asks, and when the server refuses (403) it shows the server's reason in a
// banner at the top, translated by its error code where a translation exists.
import { api, signIn, el, toast, dateTime, roleName, deptName, loadNames, word } from "/static/common.js";
import { CityMapView } from "/static/mapview.js";
import { initI18n, t, languageSwitcher, onLanguageChange, errorText, localName } from "/static/i18n.js";

const state = { me: null, keys: [], devices: [], devicesNext: null, silences: [], staff: [],
  status: {}, editing: null, areaNames: {}, beats: [], departments: [], cell: null, cells: [], areas: null };
window.cityops = { state };

// -- shared -------------------------------------------------------------------------------------

function refused(e) {
  const box = document.getElementById("refusal");
  const message = e.status ? `${errorText({ error: e.message, code: e.code })}` : String(e);
  box.textContent = e.status === 403 ? t("admin:refused", { message }) : (e.readable || message);
  box.dataset.status = e.status || "";
  box.hidden = false;
}

function done(message) {
  document.getElementById("refusal").hidden = true;
  toast(message, "ok");
}

// A form's submit: its values, the call, and what to do with the answer; a refusal is shown
// and the form kept as it was, so the person can correct it.
function onSubmit(id, work) {
  const form = document.getElementById(id);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await work(form, Object.fromEntries(new FormData(form)));
    } catch (e) {
      refused(e);
    } finally {
      button.disabled = false;
    }
  });
}

const when = (s) => (s ? dateTime(s) : "–");
const text = (tag, value, attrs = {}) => el(tag, { ...attrs, text: value ?? "" });

// -- keys ---------------------------------------------------------------------------------------

async function loadKeys() {
  state.keys = (await api("/api/v1/keys")).items;
  renderKeys();
}

function renderKeys() {
  const body = document.querySelector("#keys tbody");
  body.replaceChildren(...state.keys.slice().reverse().map((k) => {
    const stateWord = k.revoked ? t("admin:keys.revoked") : k.active ? t("admin:keys.active") : t("admin:keys.expired");
    const actions = el("td", { class: "actions" });
    if (k.active) {
      actions.append(
        el("button", { type: "button", "data-action": "rotate", text: t("admin:keys.rotate"), onclick: () => rotateKey(k) }),
        el("button", { type: "button", class: "danger", "data-action": "revoke", text: t("admin:keys.revoke"), onclick: () => revokeKey(k) }));
    }
    return el("tr", { "data-key": k.id, class: k.active ? "" : "off" },
      text("td", k.id, { class: "mono" }), text("td", roleName(k.role)), text("td", k.scope === "*" ? t("admin:keys.city") : k.scope),
      text("td", k.name), text("td", when(k.created_at)), text("td", when(k.expires_at)),
      text("td", stateWord, { class: "state" }), actions);
  }));
}

function showSecret(made) {
  const box = document.getElementById("secret-box");
  document.getElementById("secret").textContent = made.secret;
  box.dataset.key = made.key.id;
  box.hidden = false;
}

async function revokeKey(k) {
  if (!confirm(t("admin:keys.revoke_confirm", { id: k.id, name: k.name || k.role }))) return;
  try {
    await api(`/api/v1/keys/${encodeURIComponent(k.id)}`, { method: "DELETE", body: {} });
    done(t("admin:keys.revoked_done", { id: k.id }));
    await loadKeys();
  } catch (e) { refused(e); }
}

async function rotateKey(k) {
  const grace = prompt(t("admin:keys.grace_prompt"), "0");
  if (grace === null) return;
  try {
    const made = await api(`/api/v1/keys/${encodeURIComponent(k.id)}/rotate`, { method: "POST", body: { grace: grace.trim() || "0" } });
    showSecret(made);
    done(t("admin:keys.rotated_done", { id: k.id, next: made.key.id }));
    await loadKeys();
  } catch (e) { refused(e); }
}

function setupKeys() {
  onSubmit("key-form", async (form, v) => {
    const body = { role: v.role, name: v.name.trim(), reason: v.reason.trim() };
    if (v.scope.trim()) body.scope = v.scope.trim();
    if (v.expires.trim()) body.expires = v.expires.trim();
    const made = await api("/api/v1/keys", { method: "POST", body });
    showSecret(made);
    form.reset();
    done(t("admin:keys.created_done", { id: made.key.id }));
    await loadKeys();
  });
  document.getElementById("secret-done").addEventListener("click", () => {
    // Gone from the page as well: the secret exists nowhere but where it was copied to.
    document.getElementById("secret").textContent = "";
    document.getElementById("secret-box").hidden = true;
  });
}

// -- devices ------------------------------------------------------------------------------------

async function loadDevices(more = false) {
  const q = more && state.devicesNext ? `?cursor=${state.devicesNext}` : "";
  const page = await api(`/api/v1/devices${q}`);
  state.devices = more ? state.devices.concat(page.items) : page.items;
  state.devicesNext = page.next;
  const kinds = [...new Set(state.devices.map((d) => d.kind))].sort();
  document.getElementById("kinds").replaceChildren(...kinds.map((k) => el("option", { value: k })));
  renderDevices();
}

function renderDevices() {
  document.querySelector("#devices tbody").replaceChildren(...state.devices.map((d) =>
    el("tr", { "data-device": d.id }, text("td", d.id, { class: "mono" }), text("td", d.kind),
      text("td", d.name), text("td", d.areas ? d.areas.village : "–"),
      text("td", t(`admin:lifecycle.${d.lifecycle}`, { defaultValue: d.lifecycle })))));
  document.getElementById("devices-more").hidden = !state.devicesNext;
}

async function loadSilences() {
  try {
    state.silences = (await api("/api/v1/silences?state=active")).items;
  } catch (e) {
    if (e.status !== 403) throw e;
    state.silences = [];
  }
  document.querySelector("#silences tbody").replaceChildren(...state.silences.map((s) => {
    const what = Object.entries(s.matchers).map(([k, v]) => `${k}: ${v.join(", ")}`).join("; ");
    return el("tr", { "data-silence": s.id }, text("td", what), text("td", when(s.ends_at)),
      text("td", s.comment), el("td", {}, el("button", { type: "button", text: t("admin:silences.end"),
        onclick: async () => {
          try {
            await api(`/api/v1/silences/${encodeURIComponent(s.id)}`, { method: "DELETE", body: {} });
            done(t("admin:silences.ended"));
            await loadSilences();
          } catch (e) { refused(e); }
        } })));
  }));
}

function setupDevices() {
  onSubmit("device-form", async (form, v) => {
    const body = { id: v.id.trim(), kind: v.kind.trim(), lat: Number(v.lat), lon: Number(v.lon) };
    if (v.name.trim()) body.name = v.name.trim();
    const out = await api("/api/v1/devices", { method: "POST", body });
    form.reset();
    done(t("admin:devices.registered", { id: out.id, area: out.areas ? out.areas.village : "–" }));
    await loadDevices();
  });
  onSubmit("import-form", async (form) => {
    const file = form.file.files[0];
    const out = await api("/api/v1/devices/import", { method: "POST", raw: true, body: await file.text(),
      headers: { "Content-Type": "text/csv" } });
    form.reset();
    done(t("admin:devices.imported", { count: out.registered, fresh: out.new }));
    await loadDevices();
  });
  onSubmit("lifecycle-form", async (form, v) => {
    const devices = v.devices.split(/[\s,]+/).filter(Boolean);
    const out = await api("/api/v1/devices/lifecycle", { method: "POST", body: { devices, to: v.to, reason: v.reason.trim() } });
    form.reset();
    done(t("admin:devices.moved", { count: out.changed, to: t(`admin:lifecycle.${out.to}`) }));
    await loadDevices();
  });
  onSubmit("silence-form", async (form, v) => {
    const matchers = { area: [v.area.trim()] };
    if (v.pack.trim()) matchers.pack = [v.pack.trim()];
    await api("/api/v1/silences", { method: "POST", body: { matchers, duration: v.duration.trim(), comment: v.comment.trim() } });
    form.reset();
    done(t("admin:silences.created"));
    await loadSilences();
  });
  document.getElementById("devices-more").addEventListener("click", () => loadDevices(true).catch(refused));
}

// -- staff --------------------------------------------------------------------------------------
// The roster (people with the version an edit must name) beside the staff board's statuses.
// Every change goes to the server with the version last read; a 409 means someone else was
// first, so the list is read again before the person tries once more.

const STATUSES = ["available", "en_route", "on_site", "off_duty"];
const skillList = (v) => [...new Set((v || "").split(/[,，\s]+/).map((x) => x.trim()).filter(Boolean))];

async function loadStaff() {
  const [roster, board] = await Promise.all([api("/api/v1/roster"),
    api("/api/v1/staff").catch(() => ({ items: [] }))]);
  state.staff = roster.items;
  state.status = Object.fromEntries(board.items.map((p) => [p.id, p.status]));
  renderStaff();
}

function statusCell(p) {
  if (!p.active) return text("td", t("admin:staff.retired"), { class: "state" });
  const select = el("select", { "aria-label": t("admin:staff.status"), onchange: async () => {
    try {
      await api(`/api/v1/staff/${encodeURIComponent(p.id)}/status`, { method: "PUT", body: { status: select.value } });
      state.status[p.id] = select.value;
      done(t("admin:staff.changed", { name: p.name, status: word("staff", select.value) }));
    } catch (e) { select.value = state.status[p.id] || "available"; refused(e); }
  } }, ...STATUSES.map((s) => el("option", { value: s, selected: s === (state.status[p.id] || "available"), text: word("staff", s) })));
  return el("td", {}, select);
}

function renderStaff() {
  const wanted = document.getElementById("staff-search").value.trim().toLowerCase();
  const department = document.getElementById("staff-filter").value;
  const shown = state.staff.filter((p) => (!department || p.department === department)
    && (!wanted || p.id.toLowerCase().includes(wanted) || p.name.toLowerCase().includes(wanted)));
  document.querySelector("#staff tbody").replaceChildren(...shown.map((p) => {
    const actions = el("td", { class: "actions" });
    if (p.active) {
      actions.append(
        el("button", { type: "button", "data-action": "edit", text: t("admin:staff.edit"), onclick: () => editStaff(p) }),
        el("button", { type: "button", class: "danger", "data-action": "retire", text: t("admin:staff.retire"), onclick: () => retireStaff(p) }));
    }
    return el("tr", { "data-staff": p.id, class: p.active ? "" : "off" }, text("td", p.id, { class: "mono" }),
      text("td", p.name), text("td", deptName(p.department)), text("td", areaLabel(p.home_area)),
      text("td", p.device_id, { class: "mono" }), text("td", p.skills.join(", ")), statusCell(p), actions);
  }));
}

const areaLabel = (code) => (state.areaNames[code] ? `${state.areaNames[code]} (${code})` : code);

function departmentOptions(select, withAll) {
  // Every department, whatever the key: the server says what this key may do, not the page.
  const keep = select.value;
  select.replaceChildren(...(withAll ? [el("option", { value: "", text: t("admin:staff.all_departments") })] : []),
    ...state.departments.map((d) => el("option", { value: d, text: deptName(d) })));
  if ([...select.options].some((o) => o.value === keep)) select.value = keep;
}

function editStaff(p) {
  const form = document.getElementById("staff-edit");
  state.editing = p;
  document.getElementById("staff-edit-id").textContent = p.id;
  form.name.value = p.name;
  form.department.value = p.department;
  form.home_area.value = p.home_area;
  form.device_id.value = p.device_id;
  form.skills.value = p.skills.join(", ");
  form.reason.value = "";
  form.hidden = false;
  form.name.focus();
}

function closeEdit() {
  state.editing = null;
  document.getElementById("staff-edit").hidden = true;
}

// A refusal because someone else changed the person first: read the list again, so the next
// try names the version now stored.
async function staffRefused(e) {
  refused(e);
  if (e.status === 409) {
    await loadStaff().catch(() => {});
    const now = state.editing && state.staff.find((p) => p.id === state.editing.id);
    if (now && now.active) state.editing = now;
    else closeEdit();
  }
}

async function retireStaff(p) {
  if (!confirm(t("admin:staff.retire_confirm", { id: p.id, name: p.name }))) return;
  try {
    await api(`/api/v1/roster/${encodeURIComponent(p.id)}/retire`, { method: "POST", body: { version: p.version } });
    if (state.editing && state.editing.id === p.id) closeEdit();
    done(t("admin:staff.retired_done", { name: p.name }));
    await loadStaff();
  } catch (e) { await staffRefused(e); }
}

// The beats' names in the page's language: the table's column and the home-area choices.
function beatNames() {
  state.areaNames = Object.fromEntries(state.beats.map((a) => [a.code, localName(a)]));
  document.getElementById("staff-areas").replaceChildren(...state.beats.map((a) =>
    el("option", { value: a.code, label: state.areaNames[a.code] })));
}

async function setupStaff() {
  const [areas, devices] = await Promise.all([
    api("/api/v1/areas").catch(() => ({ items: [] })),
    api("/api/v1/devices?kind=gps&limit=1000").catch(() => ({ items: [] }))]);
  const beats = areas.items.filter((a) => a.level === "town" || a.level === "village");
  state.beats = beats;
  beatNames();
  document.getElementById("staff-devices").replaceChildren(...devices.items.map((d) => el("option", { value: d.id, label: d.name || d.id })));
  departmentOptions(document.getElementById("staff-filter"), true);
  for (const id of ["staff-add", "staff-edit"]) departmentOptions(document.getElementById(id).department, false);
  document.getElementById("staff-search").addEventListener("input", renderStaff);
  document.getElementById("staff-filter").addEventListener("change", renderStaff);
  document.getElementById("staff-edit-cancel").addEventListener("click", closeEdit);
  onSubmit("staff-add", async (form, v) => {
    const body = { id: v.id.trim(), name: v.name.trim(), department: v.department, home_area: v.home_area.trim(),
      device_id: v.device_id.trim(), skills: skillList(v.skills), reason: v.reason.trim() };
    const made = await api("/api/v1/roster", { method: "POST", body });
    form.reset();
    departmentOptions(form.department, false);
    done(t("admin:staff.added", { name: made.name, id: made.id }));
    await loadStaff();
  });
  const edit = document.getElementById("staff-edit");
  edit.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const p = state.editing;
    const v = Object.fromEntries(new FormData(edit));
    const button = edit.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const body = { version: p.version, name: v.name.trim(), department: v.department, home_area: v.home_area.trim(),
        device_id: v.device_id.trim(), skills: skillList(v.skills), reason: v.reason.trim() };
      const saved = await api(`/api/v1/roster/${encodeURIComponent(p.id)}`, { method: "PATCH", body });
      closeEdit();
      done(t("admin:staff.saved", { name: saved.name }));
      await loadStaff();
    } catch (e) {
      await staffRefused(e);
    } finally {
      button.disabled = false;
    }
  });
}

// -- grid cells ---------------------------------------------------------------------------------

let view;

function ownerWords(owner) {
  if (!owner) return "–";
  if (owner.startsWith("station:")) return t("admin:cells.station", { village: areaName(owner.slice(8)) });
  return deptName(owner);
}

const areaName = (code) => (view && view.features && view.features.has(code) ? view.name(code) : code);

function cellFeature(c, selected = false) {
  const ring = c.boundary.map(([lon, lat]) => [lon, lat]);
  ring.push(ring[0]);
  return { type: "Feature", properties: { cell: c.cell, owner: c.owner, selected },
    geometry: { type: "Polygon", coordinates: [ring] } };
}

function drawCells() {
  const features = state.cells.map((c) => cellFeature(c));
  if (state.cell) features.push(cellFeature(state.cell, true));
  view.setGeoJSON("cells", features);
}

function showCell(c) {
  state.cell = c;
  document.getElementById("cell-info").hidden = false;
  document.getElementById("cell-id").textContent = c.cell;
  document.getElementById("cell-village").textContent = areaName(c.village);
  document.getElementById("cell-owner").textContent = ownerWords(c.owner);
  document.getElementById("cell-source").textContent = t(`admin:cells.from.${c.source}`);
  const form = document.getElementById("cell-form");
  form.hidden = false;
  const current = c.source === "territory" ? "" : c.owner;
  const options = [el("option", { value: "", text: t("admin:cells.to_station") }),
    ...state.departments.map((d) => el("option", { value: d, text: deptName(d) }))];
  if (c.source === "override") options.push(el("option", { value: "__pack__", text: t("admin:cells.to_pack") }));
  form.owner.replaceChildren(...options);
  form.owner.value = state.departments.includes(current) ? current : "";
  drawCells();
}

async function loadCells() {
  const out = [];
  let cursor = 0;
  // Paged by the server; a city names a few thousand cells at most.
  for (let i = 0; i < 20; i++) {
    const page = await api(`/api/v1/cells?limit=5000&cursor=${cursor}`);
    out.push(...page.items);
    if (!page.next) break;
    cursor = page.next;
  }
  state.cells = out;
  drawCells();
}

async function setupCells() {
  const box = document.getElementById("cell-map");
  view = new CityMapView(box, { tiles: document.querySelector('meta[name="cityops-tiles"]').content, labels: true });
  window.cityops.view = view;
  await view.setAreas(state.areas);
  view.addGeoJSON("cells", [
    { id: "cells-fill", type: "fill", paint: { "fill-color": ["case", ["get", "selected"], "#ffd43b", "#4dabf7"],
      "fill-opacity": ["case", ["get", "selected"], 0.45, 0.2] } },
    { id: "cells-line", type: "line", paint: { "line-color": ["case", ["get", "selected"], "#ffd43b", "#74c0fc"],
      "line-width": ["case", ["get", "selected"], 2.5, 1] } }]);
  if (view.root) view.focus(view.root, { animate: false });
  view.map.on("click", async (e) => {
    try {
      showCell(await api(`/api/v1/cells/at?lat=${e.lngLat.lat}&lon=${e.lngLat.lng}`));
    } catch (err) { refused(err); }
  });
  onSubmit("cell-form", async (form, v) => {
    const owner = v.owner === "__pack__" ? null : v.owner;
    const c = await api(`/api/v1/cells/${encodeURIComponent(state.cell.cell)}/owner`, { method: "PUT", body: { owner, reason: v.reason.trim() } });
    form.reason.value = "";
    done(t("admin:cells.assigned", { cell: c.cell, owner: ownerWords(c.owner) }));
    showCell(c);
    await loadCells();
  });
  await loadCells();
}

// -- the page -----------------------------------------------------------------------------------

function setupTabs() {
  const tabs = [...document.querySelectorAll("[role=tab]")];
  const show = (name) => {
    for (const b of tabs) b.setAttribute("aria-selected", String(b.dataset.tab === name));
    for (const s of document.querySelectorAll(".tab")) s.hidden = s.id !== `tab-${name}`;
    if (name === "cells" && view) view.map.resize();
    history.replaceState(null, "", `${location.pathname}${location.search}#${name}`);
  };
  for (const b of tabs) b.addEventListener("click", () => show(b.dataset.tab));
  const wanted = location.hash.slice(1);
  if (tabs.some((b) => b.dataset.tab === wanted)) show(wanted);
  return show;
}

async function main() {
  await initI18n(["admin"]);
  document.getElementById("lang").append(languageSwitcher());
  const me = await signIn(t("admin:sign_in"), ["admin", "operator", "department"]);
  state.me = me;
  document.getElementById("who").textContent = `${roleName(me.role)}${me.scope && me.scope !== "*" ? " · " + me.scope : ""}`;
  // Keys are an admin's alone: an operator's page has the other three, a department's its
  // own field staff only.
  const dropped = me.role === "admin" ? [] : me.role === "department" ? ["keys", "devices", "cells"] : ["keys"];
  for (const name of dropped) {
    document.querySelector(`[data-tab="${name}"]`).remove();
    document.getElementById(`tab-${name}`).remove();
  }
  const show = setupTabs();
  if (me.role !== "admin" && !location.hash) show(me.role === "department" ? "staff" : "devices");
  const [areas] = await Promise.all([api("/api/v1/areas.geojson"), loadNames()]);
  state.areas = areas;
  try {
    const names = await api("/api/v1/names");
    state.departments = names.departments.map((d) => d.code).sort();
  } catch { state.departments = []; }
  if (me.role === "admin") { setupKeys(); await loadKeys().catch(refused); }
  const devicesToo = me.role !== "department";
  if (devicesToo) setupDevices();
  await setupStaff();
  // One part that cannot load (no act side for the staff, say) leaves the others usable.
  await Promise.all([...(devicesToo ? [loadDevices(), loadSilences()] : []), loadStaff()].map((p) => p.catch(refused)));
  if (devicesToo) await setupCells().catch(refused);
  onLanguageChange(() => {
    if (me.role === "admin") renderKeys();
    if (devicesToo) renderDevices();
    departmentOptions(document.getElementById("staff-filter"), true);
    for (const id of ["staff-add", "staff-edit"]) departmentOptions(document.getElementById(id).department, false);
    beatNames();
    renderStaff();
    if (state.cell) showCell(state.cell);
  });
  document.body.dataset.ready = "true";
}

main().catch((e) => { refused(e); console.error(e); });
