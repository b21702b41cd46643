// Shared by the pages: sign-in with an API key, calls to the API, the live stream, photos.
//
// The key lives in sessionStorage (gone when the tab closes) and travels only in the
// Authorization header. A sign-in link may carry it in the URL fragment (#key=...), which
// browsers never send to a server; it is moved to sessionStorage and wiped from the address
// bar and the history entry at once.

import { t, errorText, fmtNumber, language, localName } from "/static/i18n.js";

const STORE = "cityops.key";

export class ApiError extends Error {
  constructor(status, message, detail, code) {
    super(message);
    this.status = status;
    this.detail = detail;
    this.code = code;
  }
  // What a person reads when the server refuses: the status in words, then the reason, in the
  // page's language when the error's code has a translation (the English message otherwise).
  get readable() {
    const word = t(`errors:status.${this.status}`, { defaultValue: "" }) || t("errors:status.other");
    return t("errors:readable", { word, status: this.status, text: errorText({ error: this.message, code: this.code }) });
  }
}

export function takeKeyFromFragment() {
  const hash = new URLSearchParams(location.hash.slice(1));
  const key = hash.get("key");
  if (key) {
    sessionStorage.setItem(STORE, key);
    hash.delete("key");
    const rest = hash.toString();
    history.replaceState(null, "", location.pathname + location.search + (rest ? "#" + rest : ""));
  }
}

export const key = () => sessionStorage.getItem(STORE);

export function signOut() {
  sessionStorage.removeItem(STORE);
  location.reload();
}

export async function api(path, { method = "GET", body, raw, headers = {}, signal } = {}) {
  const h = { Authorization: `Bearer ${key()}`, ...headers };
  let payload = body;
  if (body !== undefined && !raw) {
    h["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const r = await fetch(path, { method, headers: h, body: payload, signal });
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!r.ok) {
    const message = (data && data.error) || r.statusText || "request failed";
    throw new ApiError(r.status, message, data && data.detail, data && data.code);
  }
  return data;
}

// Resolves with the key's identity once a valid key is in the session; shows a sign-in form
// until then. `roles` limits which keys the page takes.
export async function signIn(title, roles) {
  takeKeyFromFragment();
  if (key()) {
    try {
      const me = await api("/api/v1/me");
      if (!roles || roles.includes(me.role)) return me;
      sessionStorage.removeItem(STORE);
      return await signInForm(title, roles, t("common:signin.wrongRole", { role: roleName(me.role) }));
    } catch (e) {
      if (e.status !== 401) throw e;
      sessionStorage.removeItem(STORE);
      return await signInForm(title, roles, t("common:signin.unknown"));
    }
  }
  return await signInForm(title, roles, "");
}

function signInForm(title, roles, message) {
  return new Promise((resolve) => {
    const box = el("div", { class: "signin" });
    const which = roles ? t("common:signin.roles", { roles: roles.map(roleName).join(t("common:listSep")) }) : "";
    box.innerHTML = `<form autocomplete="off">
      <h1>${escapeHtml(title)}</h1>
      <p>${escapeHtml(t("common:signin.prompt", { roles: which }))}</p>
      <input name="key" type="password" placeholder="co_..." aria-label="${escapeHtml(t("common:signin.key"))}" required>
      <button type="submit">${escapeHtml(t("common:signin.submit"))}</button>
      <p class="error" role="alert">${escapeHtml(message)}</p></form>`;
    document.body.append(box);
    const form = box.querySelector("form");
    form.key.focus();
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      sessionStorage.setItem(STORE, form.key.value.trim());
      try {
        const me = await api("/api/v1/me");
        if (roles && !roles.includes(me.role)) throw new ApiError(403, `a ${me.role} key cannot use this page`, null, "wrong_page");
        box.remove();
        resolve(me);
      } catch (e) {
        sessionStorage.removeItem(STORE);
        form.querySelector(".error").textContent = e.readable || String(e);
      }
    });
  });
}

// The live feed: server-sent events read with fetch, so that the key goes in a header.
// Reconnects by itself (with backoff) when the server goes away; every (re)connection starts
// with a snapshot, so nothing is missed across a restart.
export class LiveStream {
  // `path`: the feed with its query (the screen asks for no vehicle lists: see bins.js).
  constructor({ onSnapshot, onDelta, onState, path = "/api/v1/live" }) {
    this.path = path;
    this.onSnapshot = onSnapshot;
    this.onDelta = onDelta;
    this.onState = onState || (() => {});
    this.bytes = 0;
    this.events = 0;
    this.reconnects = 0;
    this.stopped = false;
  }

  start() {
    this.loop();
    return this;
  }

  stop() {
    this.stopped = true;
    if (this.abort) this.abort.abort();
  }

  async loop() {
    let delay = 500;
    while (!this.stopped) {
      this.abort = new AbortController();
      try {
        this.onState("connecting");
        const r = await fetch(this.path, { headers: { Authorization: `Bearer ${key()}`,
          Accept: "text/event-stream" }, signal: this.abort.signal, cache: "no-store" });
        if (r.status === 401) { this.onState("unauthorized"); return; }
        if (!r.ok) throw new Error(`live feed answered ${r.status}`);
        delay = 500;
        await this.read(r.body.getReader());
      } catch (e) {
        if (this.stopped) return;
      }
      this.reconnects += 1;
      this.onState("offline");
      await new Promise((ok) => setTimeout(ok, delay));
      delay = Math.min(delay * 2, 5000);
    }
  }

  async read(reader) {
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      this.bytes += value.byteLength;
      const arrived = performance.now();
      const text = decoder.decode(value, { stream: true });
      // Only the new text (and the one character before it) can end an event: a snapshot of
      // a few megabytes arrives in many chunks and must not be rescanned for each of them.
      let from = Math.max(0, buffer.length - 1);
      buffer += text;
      let cut;
      while ((cut = buffer.indexOf("\n\n", from)) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        from = 0;
        this.dispatch(block, arrived);
      }
    }
  }

  dispatch(block, arrived) {
    let kind = "message";
    let data = "";
    for (const line of block.split("\n")) {
      if (line.startsWith("event: ")) kind = line.slice(7);
      else if (line.startsWith("data: ")) data += line.slice(6);
    }
    if (!data) return;
    const body = JSON.parse(data);
    this.events += 1;
    if (kind === "snapshot") {
      this.onState("live");
      this.onSnapshot(body, arrived);
    } else if (kind === "delta") {
      this.onDelta(body, arrived);
    }
  }
}

// -- small helpers -------------------------------------------------------------------------

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

// -- photos ----------------------------------------------------------------------------------

// A phone photo is often 4-8 MB; 1600 px on the long side is plenty to show a problem and goes
// through a weak signal. Images the browser cannot decode are sent as they are (the server
// says what is wrong with them).
export async function shrinkPhoto(file) {
  try {
    const bitmap = await createImageBitmap(file);
    const scale = Math.min(1, 1600 / Math.max(bitmap.width, bitmap.height));
    if (scale === 1 && file.size < 1.5e6) return file;
    const canvas = document.createElement("canvas");
    canvas.width = Math.round(bitmap.width * scale);
    canvas.height = Math.round(bitmap.height * scale);
    canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    return await new Promise((ok) => canvas.toBlob((b) => ok(b || file), "image/jpeg", 0.85));
  } catch {
    return file;
  }
}

// Photos need the key too, so they are fetched and shown from memory, never by URL: every
// img[data-src] inside `box`.
export async function showPhotos(box) {
  for (const img of box.querySelectorAll("img[data-src]")) {
    try {
      const r = await fetch(img.dataset.src, { headers: { Authorization: `Bearer ${key()}` } });
      if (r.ok) img.src = URL.createObjectURL(await r.blob());
    } catch { /* what the photo goes with still stands */ }
  }
}

export function escapeHtml(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;",
    '"': "&quot;", "'": "&#39;" }[c]));
}

// Numbers in the page's language (asked at each call: the language may change).
export const fmt = { format: (n) => fmtNumber(n) };

const hour12 = () => (language() === "en" ? { hourCycle: "h23" } : {});

export function clockTime(s, tz) {
  return new Date(s * 1000).toLocaleTimeString(language(), { hour: "2-digit", minute: "2-digit",
    timeZone: tz || undefined, ...hour12() });
}

export function dateTime(s, tz) {
  return new Date(s * 1000).toLocaleString(language(), { month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", timeZone: tz || undefined, ...hour12() });
}

// A span of time in words: "2 h 10 min", "2小时10分钟".
export function span(seconds) {
  const a = Math.abs(seconds);
  if (a < 60) return t("common:span.s", { n: Math.round(a) });
  if (a < 3600) return t("common:span.min", { n: Math.round(a / 60) });
  if (a < 86400) return t("common:span.h", { h: Math.floor(a / 3600), min: Math.floor((a % 3600) / 60) });
  return t("common:span.d", { n: Math.round(a / 86400) });
}

// "in 2 h 10 min" / "5 min ago", for deadlines and feeds.
export function relative(s, now = Date.now() / 1000) {
  const d = s - now;
  return t(d >= 0 ? "common:span.in" : "common:span.ago", { span: span(d) });
}

// The city's departments' and categories' names in the page's language (GET /api/v1/names),
// asked for once after sign-in; until they come, or for a code the pack does not list, the
// code in words.
const packNames = { departments: new Map(), categories: new Map() };

export async function loadNames() {
  try {
    const r = await api("/api/v1/names");
    for (const d of r.departments) packNames.departments.set(d.code, d);
    for (const c of r.categories) packNames.categories.set(c.code, c);
  } catch { /* the codes in words stand in */ }
}

const named = (table, code) => {
  const found = table.get(code);
  return found ? localName(found) : String(code ?? "").replace(/_/g, " ");
};
export const deptName = (code) => named(packNames.departments, code);
export const categoryName = (code) => named(packNames.categories, code);

// A case's title in the page's language: `titles` holds its translations (the scenario rule's,
// or its category's names when that is the title), `title` the stored English; a title an
// operator wrote has none and shows as written.
export const caseTitle = (c) => localName({ name: c.title, names: c.titles }) || (c.category ? categoryName(c.category) : "");
// Its `translate` mark: a title with translations is the page's own words (and the i18n test
// checks it as such); one without is what someone wrote, shown as written.
export const caseTitleMark = (c) => (c.title && !Object.keys(c.titles || {}).length ? "no" : null);

// A role, a status, an urgency ... in words: the common namespace's table of the API's words.
export const roleName = (role) => t(`common:role.${role}`, { defaultValue: role });
export const word = (group, value) =>
  (value === null || value === undefined || value === "" ? "" : t(`common:${group}.${value}`, { defaultValue: String(value).replace(/_/g, " ") }));

export function toast(message, kind = "error") {
  let box = document.querySelector(".toasts");
  if (!box) { box = el("div", { class: "toasts", role: "status" }); document.body.append(box); }
  const t = el("div", { class: `toast ${kind}`, text: message });
  box.append(t);
  // A few at a time: a burst of confirmations must not cover the page.
  while (box.children.length > 3) box.firstElementChild.remove();
  setTimeout(() => t.remove(), kind === "error" ? 9000 : 2500);
}

// Looked up when read, so a label follows a change of language.
export const STATUS_LABEL = new Proxy({}, { get: (_, s) => (typeof s === "string" ? word("status", s) : undefined) });
export const STATUS_ORDER = ["collected", "registered", "dispatched", "accepted", "handled",
  "verified", "closed", "cancelled"];
export const STAFF_COLORS = { available: [46, 204, 113], en_route: [52, 152, 255],
  on_site: [255, 196, 0], off_duty: [120, 130, 145] };
