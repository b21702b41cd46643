// The field page: my work orders on a phone, and where I am when I allow it.
import { api, signIn, LiveStream, el, relative, toast, shrinkPhoto, STATUS_LABEL, loadNames, deptName,
  categoryName, caseTitle, caseTitleMark, word } from "/static/common.js";
import { initI18n, t, languageSwitcher, onLanguageChange, applyI18n, fmtNumber, fmtTime } from "/static/i18n.js";

// Open "done" forms by order: a refresh redraws the cards but must not lose what is typed.
const state = { me: null, person: null, orders: [], position: null, lastSent: 0, watch: null, busy: new Set(),
  forms: new Map() };
window.cityops = { state };
const SEND_EVERY_MS = 10000; // a fix at most this often: enough for the nearest-staff proposal

async function main() {
  await initI18n(["field"]);
  document.querySelector("header").append(languageSwitcher());
  const me = await signIn(t("field:signin"), ["field"]);
  state.person = await api("/api/v1/staff/me");
  await loadNames();
  state.me = { ...me, name: state.person.id };
  const meName = document.getElementById("me-name");
  meName.removeAttribute("data-i18n"); // a person's own name from here on, in any language
  meName.textContent = state.person.name;
  meName.translate = false;
  const dept = () => { document.getElementById("me-dept").textContent = `${state.person.id} · ${deptName(state.person.department)}`; };
  dept();
  onLanguageChange(() => { dept(); render(); conn(connState); });
  const status = document.getElementById("my-status");
  status.value = state.person.status;
  status.addEventListener("change", () => setStatus(status.value));
  document.getElementById("share").addEventListener("click", share);
  if (navigator.permissions) {
    try {
      const p = await navigator.permissions.query({ name: "geolocation" });
      if (p.state === "granted") share();
    } catch { /* ask on the button only */ }
  }
  await load();
  new LiveStream({ onSnapshot: () => load(), onDelta: (d) => { if (d.incidents) load(); },
    onState: conn }).start();
  setInterval(load, 20000);
}

let connState = "connecting";
function conn(s) {
  connState = s;
  document.getElementById("conn").textContent = t(s === "live" ? "field:live" : "field:offline");
}

async function load() {
  try {
    const r = await api("/api/v1/work-orders?mine=true");
    state.orders = r.items;
    render();
  } catch (e) {
    toast(e.readable || String(e));
  }
}

function mine(o) { return o.assignee === state.me.name; }
function offered(o) { return o.offer && o.offer.staff_id === state.me.name && !mine(o); }

function render() {
  const box = document.getElementById("orders");
  if (!state.orders.length) {
    box.replaceChildren(el("p", { class: "quiet", text: t("field:none") }));
    return;
  }
  const now = Date.now() / 1000;
  box.replaceChildren(...state.orders.map((o) => {
    const inc = o.incident;
    const due = o.status === "dispatched" ? (o.offer ? o.offer.ack_due : o.accept_due) : o.finish_due;
    const card = el("article", { class: `order ${o.status} ${inc.urgency}`, "data-order": o.id },
      el("div", { class: "top" }, el("span", { class: `urg ${inc.urgency}`, text: word("urgency", inc.urgency) }),
        el("span", { class: "st", text: offered(o) ? t("field:offered") : o.status === "done" ? t("field:doneWaiting")
          : o.progress ? word("progress", o.progress) : word("order", o.status) })),
      el("h2", { text: caseTitle(inc), translate: caseTitleMark(inc) }),
      el("p", { class: "meta", text: `${categoryName(inc.category)} · ${deptName(o.department)}` }),
      el("p", { class: "meta", text: [due ? t("field:due", { when: relative(due, now) }) : null, distanceText(inc)].filter(Boolean).join(" · ") }),
      state.forms.get(o.id) || el("div", { class: "buttons" }, ...buttons(o)));
    return card;
  }));
}

function distanceText(inc) {
  if (!state.position || inc.lat === null) return t("field:at", { lat: inc.lat?.toFixed(4), lon: inc.lon?.toFixed(4) });
  const [lat, lon] = state.position;
  const r = 6371000, k = Math.PI / 180;
  const a = Math.sin(((inc.lat - lat) * k) / 2) ** 2 + Math.cos(lat * k) * Math.cos(inc.lat * k) * Math.sin(((inc.lon - lon) * k) / 2) ** 2;
  const d = 2 * r * Math.asin(Math.sqrt(a));
  return d < 1000 ? t("field:awayM", { n: fmtNumber(Math.round(d)) })
    : t("field:awayKm", { n: fmtNumber(d / 1000, { minimumFractionDigits: 1, maximumFractionDigits: 1 }) });
}

function buttons(o) {
  const out = [];
  // data-action stays the English word: the tests and the page's own code find buttons by it.
  const b = (action, cls, fn) => el("button", { class: cls, "data-action": action,
    disabled: state.busy.has(o.id), onclick: fn }, t(`field:do.${action}`));
  if (offered(o)) out.push(b("accept", "primary", () => move(o, "acknowledge")));
  else if (mine(o) && o.status === "dispatched") out.push(b("accept", "primary", () => move(o, "accept")));
  if (mine(o) && o.status === "accepted") {
    if (o.progress !== "en_route" && o.progress !== "on_site") out.push(b("en_route", "primary", () => progress(o, "en_route")));
    if (o.progress !== "on_site") out.push(b("on_site", o.progress === "en_route" ? "primary" : "", () => progress(o, "on_site")));
    out.push(b("done", o.progress === "on_site" ? "primary" : "", (ev) => finishForm(o, ev.target.closest("article"))));
  }
  if (o.status === "done") out.push(el("span", { class: "quiet", text: t("field:doneNote") }));
  if (o.status === "park_requested") out.push(el("span", { class: "quiet", text: t("field:parkNote") }));
  return out;
}

async function move(o, action, body = {}) {
  state.busy.add(o.id);
  render();
  try {
    await api(`/api/v1/work-orders/${encodeURIComponent(o.id)}/actions/${action}`, { method: "POST", body });
    toast(t(action === "acknowledge" || action === "accept" ? "field:accepted" : "field:saved"), "ok");
    return true;
  } catch (e) {
    toast(e.readable || String(e));
    return false;
  } finally {
    state.busy.delete(o.id);
    await load();
  }
}

async function progress(o, step) {
  if (await move(o, "progress", { progress: step })) await setStatus(step, true);
}

async function setStatus(value, quiet) {
  try {
    await api(`/api/v1/staff/${encodeURIComponent(state.me.name)}/status`, { method: "PUT", body: { status: value } });
    document.getElementById("my-status").value = value;
    if (!quiet) toast(t("field:youAre", { status: word("staff", value) }), "ok");
  } catch (e) {
    toast(e.readable || String(e));
  }
}

function finishForm(o, card) {
  const form = document.getElementById("finish-form").content.firstElementChild.cloneNode(true);
  applyI18n(form);
  state.forms.set(o.id, form);
  card.querySelector(".buttons").replaceWith(form);
  form.querySelector(".cancel").addEventListener("click", () => { state.forms.delete(o.id); render(); });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const error = form.querySelector(".error");
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    error.textContent = "";
    try {
      const photos = [];
      const file = form.photo.files[0];
      if (file) {
        error.textContent = t("field:sendingPhoto");
        const blob = await shrinkPhoto(file);
        const r = await api(`/api/v1/work-orders/${encodeURIComponent(o.id)}/photos`, { method: "POST",
          body: blob, raw: true, headers: { "Content-Type": blob.type } });
        photos.push(r.id);  // the evidence cites the photo by its CityOps id
      }
      await api(`/api/v1/work-orders/${encodeURIComponent(o.id)}/actions/finish`, { method: "POST",
        body: { note: form.note.value.trim(), photos } });
      state.forms.delete(o.id);
      await setStatus("available", true);
      toast(t("field:reportedDone"), "ok");
      await load();
    } catch (e) {
      error.textContent = e.readable || String(e);
      submit.disabled = false;
    }
  });
}

function share() {
  const text = document.getElementById("where-text");
  text.removeAttribute("data-i18n"); // what the position does is said by the script from here
  if (!navigator.geolocation) { text.textContent = t("field:where.cannot"); return; }
  if (state.watch !== null) return;
  text.textContent = t("field:where.finding");
  state.watch = navigator.geolocation.watchPosition(sendPosition, (err) => {
    text.textContent = err.code === 1 ? t("field:where.denied") : t("field:where.failed", { reason: err.message });
    navigator.geolocation.clearWatch(state.watch);
    state.watch = null;
  }, { enableHighAccuracy: true, maximumAge: 5000, timeout: 30000 });
  document.getElementById("share").hidden = true;
}

async function sendPosition(pos) {
  const c = pos.coords;
  state.position = [c.latitude, c.longitude];
  const now = Date.now();
  if (now - state.lastSent < SEND_EVERY_MS) return;
  state.lastSent = now;
  const text = document.getElementById("where-text");
  try {
    await api("/api/v1/staff/me/position", { method: "POST", body: { lat: c.latitude, lon: c.longitude,
      accuracy: c.accuracy, speed: c.speed ?? undefined, heading: c.heading ?? undefined } });
    text.textContent = t("field:where.shared", { m: Math.round(c.accuracy), when: fmtTime(new Date(), { timeStyle: "medium", hourCycle: "h23" }) });
  } catch (e) {
    text.textContent = t("field:where.refused", { reason: e.readable || e.message });
  }
}

main().catch((e) => {
  document.body.append(el("div", { class: "fatal", text: t("field:fatal", { reason: e.readable || e.message }) }));
  throw e;
});
