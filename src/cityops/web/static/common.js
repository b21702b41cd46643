// Shared by the pages: sign-in with an API key, calls to the API, the live stream, photos.
//
// The key lives in sessionStorage (gone when the tab closes) and travels only in the
// Authorization header. A sign-in link may carry it in the URL fragment (#key=...), which
// browsers never send to a server; it is moved to sessionStorage and wiped from the address
// bar and the history entry at once.

const STORE = "cityops.key";

export class ApiError extends Error {
  constructor(status, message, detail) {
    super(message);
    this.status = status;
    this.detail = detail;
  }
  // What a person reads when the server refuses: the status in words, then the reason.
  get readable() {
    const words = { 400: "Not accepted", 401: "Not signed in", 403: "Not allowed",
      404: "Not found", 409: "Refused", 413: "Too large", 415: "Wrong file type",
      422: "Not usable", 429: "Busy", 503: "Busy" };
    return `${words[this.status] || "Error"} (${this.status}): ${this.message}`;
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
    throw new ApiError(r.status, message, data && data.detail);
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
      return await signInForm(title, roles, `A ${me.role} key cannot use this page.`);
    } catch (e) {
      if (e.status !== 401) throw e;
      sessionStorage.removeItem(STORE);
      return await signInForm(title, roles, "That key is unknown or revoked.");
    }
  }
  return await signInForm(title, roles, "");
}

function signInForm(title, roles, message) {
  return new Promise((resolve) => {
    const box = el("div", { class: "signin" });
    box.innerHTML = `<form autocomplete="off">
      <h1>${escapeHtml(title)}</h1>
      <p>Sign in with an API key${roles ? ` (${roles.join(", ")})` : ""}. It is kept for this
      browser tab only.</p>
      <input name="key" type="password" placeholder="co_..." aria-label="API key" required>
      <button type="submit">Sign in</button>
      <p class="error" role="alert">${escapeHtml(message)}</p></form>`;
    document.body.append(box);
    const form = box.querySelector("form");
    form.key.focus();
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      sessionStorage.setItem(STORE, form.key.value.trim());
      try {
        const me = await api("/api/v1/me");
        if (roles && !roles.includes(me.role)) throw new ApiError(403, `a ${me.role} key cannot use this page`);
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
  constructor({ onSnapshot, onDelta, onState }) {
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
        const r = await fetch("/api/v1/live", { headers: { Authorization: `Bearer ${key()}`,
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

export const fmt = new Intl.NumberFormat("en");

export function clockTime(t, tz) {
  return new Date(t * 1000).toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit",
    timeZone: tz || undefined });
}

export function dateTime(t, tz) {
  return new Date(t * 1000).toLocaleString("en-GB", { month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", timeZone: tz || undefined });
}

// "in 2 h 10 min" / "5 min ago", for deadlines and feeds.
export function relative(t, now = Date.now() / 1000) {
  const d = t - now;
  const a = Math.abs(d);
  let text;
  if (a < 60) text = `${Math.round(a)} s`;
  else if (a < 3600) text = `${Math.round(a / 60)} min`;
  else if (a < 86400) text = `${Math.floor(a / 3600)} h ${Math.floor((a % 3600) / 60)} min`;
  else text = `${Math.round(a / 86400)} d`;
  return d >= 0 ? `in ${text}` : `${text} ago`;
}

export function toast(message, kind = "error") {
  let box = document.querySelector(".toasts");
  if (!box) { box = el("div", { class: "toasts", role: "status" }); document.body.append(box); }
  const t = el("div", { class: `toast ${kind}`, text: message });
  box.append(t);
  // A few at a time: a burst of confirmations must not cover the page.
  while (box.children.length > 3) box.firstElementChild.remove();
  setTimeout(() => t.remove(), kind === "error" ? 9000 : 2500);
}

export const STATUS_LABEL = {
  collected: "Collected", registered: "Registered", dispatched: "Dispatched",
  accepted: "Accepted", handled: "Handled", verified: "Verified", closed: "Closed",
  cancelled: "Cancelled",
};
export const STATUS_ORDER = ["collected", "registered", "dispatched", "accepted", "handled",
  "verified", "closed", "cancelled"];
export const STAFF_COLORS = { available: [46, 204, 113], en_route: [52, 152, 255],
  on_site: [255, 196, 0], off_duty: [120, 130, 145] };
