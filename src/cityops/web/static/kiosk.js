// The 24-hour self-service kiosk: sign in with an ID card and an SMS code, apply for the
// catalogue's kiosk items, print receipts and e-licences, take a queue number.
//
// A kiosk is shared by strangers, so it keeps the short-lived key it is given in this page's
// memory only (never in storage, so a reload forgets it), and wipes everything when left idle:
// the key is revoked on the server, every screen is emptied, the language goes back to
// Chinese for the next person. `?idle=SECONDS` sets how long idle is (the kiosk's start URL).
import {
  initI18n, t, setLanguage, language, languageSwitcher, onLanguageChange, fmtDateTime,
} from "/static/i18n.js";
import { mountCitizen, leave as leaveWindow } from "/static/window.js";

const params = new URLSearchParams(location.search);
const IDLE_S = Math.min(900, Math.max(5, Number(params.get("idle")) || 120));
const WARN_S = Math.min(15, Math.floor(IDLE_S / 2));
// Chinese first, whatever the browser says, unless the kiosk's URL names a language.
if (!params.has("lang")) localStorage.setItem("cityops.lang", "zh-CN");

// What the tests read: the screen shown, the PDFs printed, how often the session was wiped.
const state = {
  screen: "welcome", key: null, citizen: null, name: "", challenge: null, form: null,
  submission: null, printed: [], wipes: 0, lastActive: Date.now(), blobs: [],
};
window.cityopsKiosk = state;

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c != null) node.append(c);
  return node;
}

class Refusal extends Error {
  constructor(status, body) {
    super((body && body.error) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.code;
    this.detail = body && body.detail;
  }
}

// The kiosk's own calls: its key (when signed in) in the header, refusals as `Refusal`.
async function call(path, { method = "GET", body, blob = false } = {}) {
  const headers = {};
  if (state.key) headers.Authorization = `Bearer ${state.key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (r.ok) {
    if (blob) return await r.blob();
    return r.status === 204 ? null : await r.json();
  }
  let data = null;
  try { data = await r.json(); } catch { data = null; }
  if (r.status === 401 && state.key) {
    // The key ran out (its fifteen minutes) or was revoked: start over.
    wipe("kiosk:message.expired");
  }
  throw new Refusal(r.status, data);
}

function refusalText(e) {
  if (!(e instanceof Refusal)) return t("kiosk:message.failed");
  const fallback = e.message;
  if (e.code === "kiosk_wrong_code" && e.detail) {
    return t("kiosk:errors.kiosk_wrong_code", { count: e.detail.attempts_left, defaultValue: fallback });
  }
  return e.code ? t(`kiosk:errors.${e.code}`, { defaultValue: t(`queue:errors.${e.code}`, { defaultValue: fallback }) }) : fallback;
}

function say(text, ok = false) {
  const m = $("message");
  m.textContent = text;
  m.classList.toggle("ok", ok);
  m.hidden = !text;
}

function show(screen) {
  state.screen = screen;
  for (const s of document.querySelectorAll(".screen")) s.hidden = s.id !== `screen-${screen}`;
  $("sign-out").hidden = !state.key;
  window.scrollTo(0, 0);
}

// -- the keypad: digits (and X for a card's check character) into one input ----------------------

function buildKeypad(pad) {
  const input = $(pad.dataset.for);
  const keys = ["1", "2", "3", "4", "5", "6", "7", "8", "9", pad.dataset.x ? "X" : "", "0", "⌫"];
  for (const k of keys) {
    if (!k) { pad.append(el("span")); continue; }
    pad.append(el("button", {
      type: "button", text: k, "data-key": k,
      "aria-label": k === "⌫" ? t("kiosk:keypad.delete") : k,
      onclick: () => {
        if (k === "⌫") input.value = input.value.slice(0, -1);
        else if (input.value.length < Number(input.maxLength)) input.value += k;
        input.dispatchEvent(new Event("input"));
      },
    }));
  }
}

// -- signing in -------------------------------------------------------------------------------------

// The card stays in the reader while the person types the code: a new code is asked for the
// same number. Forgotten on sign-in and on every wipe.
let cardHeld = "";

async function readCard(number) {
  say("");
  if (!number) { say(t("kiosk:welcome.empty")); return; }
  try {
    const started = await call("/api/v1/kiosk/card", { method: "POST", body: { card_number: number, lang: language() } });
    state.challenge = started;
    cardHeld = number;
    $("code-lead").textContent = t("kiosk:code.sent", { phone: started.phone });
    $("sms-code").value = "";
    show("code");
  } catch (e) {
    say(refusalText(e));
  }
}

async function signIn() {
  say("");
  const code = $("sms-code").value.trim();
  if (!state.challenge || code.length !== 6) { say(t("kiosk:code.short")); return; }
  try {
    const session = await call("/api/v1/kiosk/session", {
      method: "POST", body: { challenge: state.challenge.challenge, code } });
    state.key = session.key;
    state.citizen = session.citizen;
    state.name = session.name;
    state.challenge = null;
    cardHeld = "";
    $("card-number").value = "";
    $("sms-code").value = "";
    $("who").textContent = session.name;
    $("home-title").textContent = t("kiosk:home.title", { name: session.name });
    show("home");
  } catch (e) {
    say(refusalText(e));
    if (["kiosk_code_used", "kiosk_code_expired", "kiosk_code_locked", "kiosk_unknown_challenge"].includes(e.code)) {
      state.challenge = null;
      show("welcome");
    }
  }
}

// -- the catalogue and applying ------------------------------------------------------------------------

const zh = () => language() === "zh-CN";
const nameOf = (thing) => (zh() && thing.name_zh) || thing.name;
const labelOf = (field) => (zh() && field.label_zh) || field.label;

async function loadServices() {
  const q = $("service-q").value.trim();
  const list = $("service-list");
  list.replaceChildren();
  try {
    const found = await call(`/api/v1/services?channel=kiosk&q=${encodeURIComponent(q)}`);
    if (!found.items.length) list.append(el("li", { text: t("kiosk:services.none") }));
    for (const item of found.items) {
      list.append(el("li", { "data-code": item.code },
        el("div", {}, el("div", { class: "name", text: nameOf(item) }),
          el("div", { class: "quiet", text: item.kind === "bundle"
            ? item.items.map((i) => i.department_name || i.department).join(" · ")
            : item.department_name || item.department })),
        el("button", { type: "button", class: "primary", text: t("kiosk:services.apply"),
          onclick: () => openForm(item) })));
    }
  } catch (e) {
    say(refusalText(e));
  }
}

async function openForm(item) {
  say("");
  const path = item.kind === "bundle" ? `/api/v1/bundles/${item.code}/form` : `/api/v1/services/${item.code}/form`;
  try {
    state.form = await call(path);
  } catch (e) {
    say(refusalText(e));
    return;
  }
  state.form.kind = item.kind;
  state.form.name_zh = item.name_zh;
  drawForm();
  show("form");
}

function fieldInput(f) {
  const value = f.value == null ? "" : f.value;
  if (f.type === "choice") {
    return el("select", { name: f.code, required: f.required },
      el("option", { value: "", text: "" }),
      ...f.choices.map((c) => el("option", { value: c, text: t(`kiosk:choice.${c}`, { defaultValue: c }), selected: c === value })));
  }
  if (f.type === "boolean") return el("input", { type: "checkbox", name: f.code, checked: value === true });
  const types = { date: "date", number: "text", integer: "text" };
  const modes = { number: "decimal", integer: "numeric", phone: "tel", id_number: "text" };
  return el("input", { type: types[f.type] || "text", name: f.code, value: String(value),
    inputmode: modes[f.type], required: f.required, maxlength: 300 });
}

function materialNote(m) {
  const key = `kiosk:material.${m.status}`;
  if (m.status === "attached") return t(key, { number: m.licence_number, until: m.valid_until || "—" });
  if (m.status === "asked") return `${t(key)}${m.reason ? ` (${m.reason})` : ""}`;
  return t(key);
}

function drawForm() {
  const form = state.form;
  $("form-title").textContent = (zh() && form.name_zh) || form.title;
  const fields = $("form-fields");
  fields.replaceChildren(...form.fields.map((f) => el("label", {},
    el("span", { text: `${labelOf(f)}${f.required ? " *" : ""}` }), fieldInput(f))));
  const mats = $("form-materials");
  mats.replaceChildren(...form.materials.map((m) => el("li", { class: m.status, "data-code": m.code },
    el("b", { text: (zh() && m.name_zh) || m.name }),
    el("span", { class: "how", text: materialNote(m) }))));
  if (!form.materials.length) mats.append(el("li", { text: t("kiosk:form.noMaterials") }));
  // Paper cannot be scanned here: a required material still asked must go to a window.
  const blocked = form.materials.filter((m) => m.status === "asked" && m.required);
  const problems = $("form-problems");
  problems.replaceChildren(...blocked.map((m) => el("li", { text: t("kiosk:form.window", { name: (zh() && m.name_zh) || m.name }) })));
  problems.hidden = !blocked.length;
  $("apply-submit").disabled = blocked.length > 0;
}

function answers() {
  const out = {};
  for (const f of state.form.fields) {
    const input = $("apply-form").elements[f.code];
    if (!input) continue;
    if (f.type === "boolean") { out[f.code] = input.checked; continue; }
    const v = input.value.trim();
    if (!v) continue;
    out[f.code] = (f.type === "number" || f.type === "integer") && !Number.isNaN(Number(v)) ? Number(v) : v;
  }
  return out;
}

async function submitForm(event) {
  event.preventDefault();
  say("");
  const form = state.form;
  const body = { answers: answers(), channel: "kiosk", key: `kiosk-${crypto.randomUUID()}` };
  body[form.kind === "bundle" ? "bundle" : "service"] = form.bundle || form.service;
  $("apply-submit").disabled = true;
  try {
    state.submission = await call("/api/v1/applications", { method: "POST", body });
    drawDone();
    show("done");
  } catch (e) {
    const problems = $("form-problems");
    const list = Array.isArray(e.detail) ? e.detail : [refusalText(e)];
    problems.replaceChildren(...list.map((p) => el("li", { text: p })));
    problems.hidden = false;
  } finally {
    $("apply-submit").disabled = false;
  }
}

function drawDone() {
  const sub = state.submission;
  $("done-ref").textContent = sub.id;
  $("done-apps").replaceChildren(...sub.applications.map((a) => el("li", {},
    el("div", {}, el("div", { class: "name", text: a.item_name }),
      el("div", { class: "quiet", text: a.due
        ? t("kiosk:done.due", { department: a.department, due: fmtDateTime(a.due * 1000) })
        : a.department })))));
}

// -- printing: the PDF goes to the kiosk's printer through the browser's own print ----------------------

async function printPdf(path, what) {
  say("");
  let pdf;
  try {
    pdf = await call(path, { blob: true });
  } catch (e) {
    say(e.status === 404 && what === "licence" ? t("kiosk:licences.noPrint") : refusalText(e));
    return false;
  }
  if (pdf.type !== "application/pdf") { say(t("kiosk:message.failed")); return false; }
  const url = URL.createObjectURL(pdf);
  state.blobs.push(url);
  // A fresh frame per document: the browser's PDF viewer is not asked to swap documents.
  const old = $("print-frame");
  const frame = el("iframe", { id: "print-frame", title: "Printing", hidden: true });
  old.replaceWith(frame);
  // A browser driven by automation has nobody to answer the print dialog (and headless
  // Chromium's PDF viewer may not survive it): the PDF is loaded, not sent to print().
  if (!navigator.webdriver) {
    frame.onload = () => {
      try { frame.contentWindow.print(); } catch { /* a viewer without print: the notice says where */ }
    };
  }
  frame.src = url;
  state.printed.push({ path, bytes: pdf.size, url });
  const notice = $("printed");
  notice.textContent = t("kiosk:printed");
  notice.hidden = false;
  return true;
}

// -- licences --------------------------------------------------------------------------------------------

async function loadLicences() {
  const list = $("licence-list");
  list.replaceChildren();
  try {
    const mine = await call("/api/v1/licences");
    if (!mine.items.length) list.append(el("li", { text: t("kiosk:licences.none") }));
    for (const lic of mine.items) {
      list.append(el("li", { "data-id": lic.id },
        el("div", {}, el("div", { class: "name", text: lic.type_name }),
          el("div", { class: "quiet", text: `No. ${lic.number} · ${t(`kiosk:licences.state.${lic.state}`, { defaultValue: lic.state })}` })),
        el("button", { type: "button", class: "primary", text: t("kiosk:licences.print"),
          onclick: () => printPdf(`/api/v1/licences/${encodeURIComponent(lic.id)}.pdf`, "licence") })));
    }
  } catch (e) {
    say(refusalText(e));
  }
}

// -- queue numbers -------------------------------------------------------------------------------------------

function minutes(s) {
  return s == null ? t("queue:wait.unknown") : t("queue:wait.minutes", { count: Math.max(1, Math.round(s / 60)) });
}

function drawTicket(ticket) {
  const box = $("my-ticket");
  box.replaceChildren(
    el("div", { text: ticket.counter_name }),
    el("div", { class: "label", text: ticket.label }),
    el("div", { text: ticket.status === "called"
      ? t("queue:ticket.called", { window: ticket.window })
      : t("queue:ticket.ahead", { count: ticket.ahead, wait: minutes(ticket.estimated_wait_s) }) }));
  box.hidden = false;
}

async function loadQueue() {
  const list = $("counter-list");
  list.replaceChildren();
  $("my-ticket").hidden = true;
  try {
    const [board, mine] = await Promise.all([call("/api/v1/queue/counters"), call("/api/v1/queue/tickets")]);
    const live = mine.items.find((x) => x.status === "waiting" || x.status === "called");
    if (live) drawTicket(live);
    for (const c of board.items) {
      list.append(el("li", { "data-counter": c.counter },
        el("div", {}, el("div", { class: "name", text: `${c.prefix} · ${c.name}` }),
          el("div", { class: "quiet", text: t("queue:board.line", { count: c.waiting, wait: minutes(c.estimated_wait_s) }) })),
        el("button", { type: "button", class: "primary", text: t("queue:kiosk.take"),
          onclick: () => takeNumber(c.counter) })));
    }
  } catch (e) {
    say(refusalText(e));
  }
}

async function takeNumber(counter) {
  say("");
  try {
    const ticket = await call("/api/v1/queue/tickets", { method: "POST", body: { counter, channel: "kiosk" } });
    drawTicket(ticket);
    say(t("queue:kiosk.taken", { label: ticket.label }), true);
  } catch (e) {
    say(refusalText(e));
  }
}

// -- idle: wipe the session ----------------------------------------------------------------------------------

function busy() {
  return Boolean(state.key || state.challenge || $("card-number").value || $("sms-code").value);
}

function wipe(reason) {
  const key = state.key;
  if (key) {
    // Revoked on the server too: a key copied off this screen is worth nothing afterwards.
    fetch("/api/v1/kiosk/session", { method: "DELETE", keepalive: true,
      headers: { Authorization: `Bearer ${key}` } }).catch(() => {});
  }
  cardHeld = "";
  leaveWindow();
  Object.assign(state, { key: null, citizen: null, name: "", challenge: null, form: null, submission: null });
  state.wipes += 1;
  for (const url of state.blobs) URL.revokeObjectURL(url);
  state.blobs = [];
  $("print-frame").removeAttribute("src");
  for (const input of document.querySelectorAll("input")) input.value = "";
  for (const id of ["service-list", "form-fields", "form-materials", "form-problems", "done-apps", "licence-list", "counter-list", "my-ticket"]) {
    $(id).replaceChildren();
  }
  for (const id of ["who", "home-title", "form-title", "done-ref", "code-lead"]) $(id).textContent = "";
  $("my-ticket").hidden = true;
  $("printed").hidden = true;
  $("idle-warning").hidden = true;
  show("welcome");
  say("");
  // The next person is greeted in Chinese; the notice is said once the words have loaded.
  const back = language() === "zh-CN" ? Promise.resolve() : setLanguage("zh-CN");
  back.then(() => say(reason ? t(reason) : ""));
}

function active() {
  state.lastActive = Date.now();
  $("idle-warning").hidden = true;
}

function tick() {
  if (!busy()) return;
  const left = IDLE_S - (Date.now() - state.lastActive) / 1000;
  if (left <= 0) {
    wipe("kiosk:message.idle");
  } else if (left <= WARN_S) {
    const warn = $("idle-warning");
    warn.textContent = t("kiosk:idle", { count: Math.ceil(left) });
    warn.hidden = false;
  }
}

// -- wiring -----------------------------------------------------------------------------------------------------

async function go(where) {
  say("");
  $("printed").hidden = true;
  if (!state.key && where !== "welcome") { show("welcome"); return; }
  show(where);
  if (where === "services") await loadServices();
  if (where === "licences") await loadLicences();
  if (where === "queue") await loadQueue();
  if (where === "window") await mountCitizen($("window-body"), () => state.key);
}

async function main() {
  await initI18n(["kiosk", "queue", "window"]);
  $("lang-slot").append(languageSwitcher());
  for (const pad of document.querySelectorAll(".keypad")) buildKeypad(pad);
  $("card-read").addEventListener("click", () => readCard($("card-number").value.trim()));
  $("code-ok").addEventListener("click", signIn);
  $("code-back").addEventListener("click", () => { state.challenge = null; cardHeld = ""; show("welcome"); });
  $("code-resend").addEventListener("click", () => readCard(cardHeld));
  $("sign-out").addEventListener("click", () => wipe("kiosk:message.bye"));
  $("service-search").addEventListener("submit", (e) => { e.preventDefault(); loadServices(); });
  $("apply-form").addEventListener("submit", submitForm);
  $("print-receipt").addEventListener("click", () =>
    state.submission && printPdf(`/api/v1/kiosk/receipts/${encodeURIComponent(state.submission.id)}`, "receipt"));
  for (const b of document.querySelectorAll("[data-go]")) b.addEventListener("click", () => go(b.dataset.go));
  for (const kind of ["pointerdown", "keydown", "input"]) document.addEventListener(kind, active, true);
  onLanguageChange(() => {
    if (state.name) $("home-title").textContent = t("kiosk:home.title", { name: state.name });
    if (state.form && state.screen === "form") drawForm();
    if (state.screen === "services") loadServices();
  });
  setInterval(tick, 1000);
  document.body.dataset.ready = "1";
}

main();
