// The remote virtual window: a video call between a citizen and a clerk of the department that
// handles their application, on three pages.
//
// The citizen portal (a `#tab-window` section) and the kiosk (`mountCitizen`, called by kiosk.js
// with its in-memory key): the person's open applications, whether their department has a clerk
// free, a call, and the form the clerk pushes. The console (a `#window-button`): a department
// clerk goes online for their department, is rung, accepts or declines, sees the application,
// pushes its form and sees the values come back.
//
// CityOps only signals (GET /api/v1/window/socket, protocol in docs/api.md); the media flows
// between the two browsers. No STUN or TURN: on the city's LAN the host candidates meet, and no
// third party learns who talks to the government. The citizen's page makes the offer once the
// clerk accepts, so the clerk's page never offers to someone who is not there.
import { api, deptName, el, key as storedKey, toast } from "/static/common.js";
import { t, useNamespaces, onLanguageChange, language, errorText } from "/static/i18n.js";

const RECONNECT_MS = 3000;
// What the tests read: the open call, its peer connection, the last form and answers.
const state = { role: null, socket: null, call: null, pc: null, local: null, online: false,
  form: null, saved: 0, application: null, ended: null, getKey: storedKey, waiting: [] };
window.cityopsWindow = state;

const w = (k, options) => t(`window:${k}`, options);
const refusal = (m) => w(`errors.${m.code}`, { defaultValue: errorText({ error: m.message, code: m.code }) });

// -- the socket -----------------------------------------------------------------------------

class WindowSocket {
  constructor(onMessage) {
    this.onMessage = onMessage;
    this.ws = null;
    this.ready = null;
  }

  open() {
    if (this.ready) return this.ready;
    this.ready = new Promise((resolve, reject) => {
      const scheme = location.protocol === "https:" ? "wss:" : "ws:";
      const ws = new WebSocket(`${scheme}//${location.host}/api/v1/window/socket`);
      this.ws = ws;
      // The key goes in the first message, never in the URL (URLs are logged).
      ws.onopen = () => ws.send(JSON.stringify({ type: "hello", key: state.getKey() }));
      ws.onmessage = (e) => {
        const m = JSON.parse(e.data);
        if (m.type === "welcome") resolve(m);
        this.onMessage(m);
      };
      ws.onclose = () => {
        this.ready = null;
        this.ws = null;
        reject(new Error("closed"));
        this.onMessage({ type: "closed" });
      };
    });
    return this.ready;
  }

  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  close() {
    if (this.ws) this.ws.close();
  }
}

// -- media ----------------------------------------------------------------------------------

async function startMedia(box, makeOffer) {
  const pc = new RTCPeerConnection({ iceServers: [] });
  state.pc = pc;
  const pending = [];
  pc.onicecandidate = (e) => { if (e.candidate) signal({ candidate: e.candidate.toJSON() }); };
  pc.ontrack = (e) => {
    const remote = box.querySelector("video.remote");
    if (remote.srcObject !== e.streams[0]) remote.srcObject = e.streams[0];
  };
  pc.onconnectionstatechange = () => status(box, w(`media.${pc.connectionState}`, { defaultValue: pc.connectionState }));
  try {
    state.local = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 360 } });
  } catch (e) {
    status(box, w("media.noCamera"));
    state.local = null;
  }
  if (state.local) {
    for (const track of state.local.getTracks()) pc.addTrack(track, state.local);
    box.querySelector("video.local").srcObject = state.local;
  } else {
    // Still see and hear the other side.
    pc.addTransceiver("audio", { direction: "recvonly" });
    pc.addTransceiver("video", { direction: "recvonly" });
  }
  state.onSignal = async (data) => {
    if (data.sdp) {
      await pc.setRemoteDescription({ type: data.type, sdp: data.sdp });
      for (const c of pending.splice(0)) await pc.addIceCandidate(c);
      if (data.type === "offer") {
        await pc.setLocalDescription(await pc.createAnswer());
        signal({ type: pc.localDescription.type, sdp: pc.localDescription.sdp });
      }
    } else if (data.candidate) {
      // Candidates may arrive before the description they belong to.
      if (pc.remoteDescription) await pc.addIceCandidate(data.candidate);
      else pending.push(data.candidate);
    }
  };
  for (const data of state.waiting.splice(0)) state.onSignal(data).catch((e) => status(box, String(e)));
  if (makeOffer) {
    await pc.setLocalDescription(await pc.createOffer());
    signal({ type: pc.localDescription.type, sdp: pc.localDescription.sdp });
  }
}

function stopMedia() {
  if (state.pc) state.pc.close();
  if (state.local) for (const track of state.local.getTracks()) track.stop();
  state.pc = null;
  state.local = null;
  state.onSignal = null;
  state.waiting = [];
}

// The other side's signalling, in the order it came. What arrives while this side is still
// starting its camera (before it can take a description) waits for it: the other side may
// be quicker (the citizen offers as soon as its own camera is on, while the clerk's may still
// be starting), and an offer dropped then is a call without media.
function received(box, data) {
  if (state.onSignal) state.onSignal(data).catch((e) => status(box, String(e)));
  else if (state.call) state.waiting.push(data);
}

function signal(data) {
  if (state.call) socket.send({ type: "signal", call: state.call, data });
}

// The bytes of media received so far: what the tests poll to see media flowing.
state.received = async () => {
  if (!state.pc) return 0;
  let bytes = 0;
  (await state.pc.getStats()).forEach((r) => { if (r.type === "inbound-rtp") bytes += r.bytesReceived || 0; });
  return bytes;
};

// -- the call panel, shared by both sides ---------------------------------------------------------

function callPanel() {
  return el("div", { class: "window-call", hidden: "" },
    el("p", { class: "window-status", role: "status" }),
    el("div", { class: "window-videos" },
      el("video", { class: "remote", autoplay: "", playsinline: "" }),
      el("video", { class: "local", autoplay: "", playsinline: "", muted: "" })),
    el("div", { class: "window-actions" }),
    el("form", { class: "window-form", hidden: "" }),
    el("div", { class: "window-application" }));
}

function status(box, text) {
  box.querySelector(".window-status").textContent = text;
}

function actions(box, ...buttons) {
  box.querySelector(".window-actions").replaceChildren(...buttons.filter(Boolean));
}

function button(name, label, onclick, cls = "") {
  return el("button", { type: "button", class: `small ${cls}`, "data-action": name, text: w(label), onclick });
}

const hangup = () => { if (state.call) socket.send({ type: "hangup", call: state.call }); };

function ended(box, m) {
  stopMedia();
  state.call = null;
  state.ended = m.reason;
  box.querySelector(".window-form").hidden = true;
  status(box, w(`ended.${m.reason}`, { defaultValue: w("ended.hangup") }));
  actions(box);
}

// -- the citizen's side -----------------------------------------------------------------------

let socket = null;
let citizenBox = null;

function onCitizenMessage(m) {
  const box = citizenBox.querySelector(".window-call");
  if (m.type === "accepted") {
    status(box, w("call.connecting"));
    startMedia(box, true).catch((e) => status(box, String(e)));
  } else if (m.type === "signal") {
    received(box, m.data);
  } else if (m.type === "form") {
    state.form = m.form;
    drawForm(box, m.form);
  } else if (m.type === "form_saved") {
    state.saved += 1;
    const f = box.querySelector(".window-form");
    f.hidden = true;
    status(box, w("form.saved"));
  } else if (m.type === "ended") {
    ended(box, m);
    listApplications();
  } else if (m.type === "error") {
    const f = box.querySelector(".window-form");
    if (m.code === "window_invalid_form") {
      f.querySelector(".error").textContent = `${refusal(m)} ${(m.detail || []).join("; ")}`;
    } else {
      toast(refusal(m));
    }
  } else if (m.type === "closed" && state.call) {
    ended(box, { reason: "dropped" });
  }
}

function fieldInput(f) {
  const label = (language() === "zh-CN" && f.label_zh) || f.label;
  const value = f.value ?? "";
  let input;
  if (f.type === "choice") {
    input = el("select", { name: f.code }, el("option", { value: "", text: "" }),
      ...(f.choices || []).map((c) => el("option", { value: c, text: c })));
    input.value = value;
  } else if (f.type === "boolean") {
    input = el("input", { type: "checkbox", name: f.code });
    input.checked = value === true;
  } else {
    const type = { number: "number", integer: "number", date: "date", phone: "tel" }[f.type] || "text";
    input = el("input", { type, name: f.code, value: String(value), ...(f.type === "number" ? { step: "any" } : {}) });
  }
  if (f.required) input.required = true;
  return el("label", { "data-field": f.code }, el("span", { text: f.required ? label : w("form.optional", { label }) }), " ", input);
}

function drawForm(box, form) {
  const f = box.querySelector(".window-form");
  f.hidden = false;
  f.replaceChildren(
    el("h3", { text: w("form.title", { item: form.item_name }) }),
    el("p", { class: "quiet", text: w("form.lead") }),
    ...form.fields.map(fieldInput),
    el("p", { class: "error", role: "alert" }),
    el("button", { type: "submit", class: "primary", "data-action": "send-form", text: w("form.send") }));
  f.onsubmit = (e) => {
    e.preventDefault();
    const values = {};
    for (const field of form.fields) {
      const input = f.elements[field.code];
      if (field.type === "boolean") values[field.code] = input.checked;
      else if (input.value === "") values[field.code] = null;
      else if (field.type === "number" || field.type === "integer") values[field.code] = Number(input.value);
      else values[field.code] = input.value;
    }
    f.querySelector(".error").textContent = "";
    socket.send({ type: "form_values", call: state.call, values });
  };
}

async function call(application) {
  const box = citizenBox.querySelector(".window-call");
  box.hidden = false;
  box.querySelector(".window-form").hidden = true;
  status(box, w("call.opening"));
  try {
    await socket.open();
    const made = await api("/api/v1/window/calls", { method: "POST", body: { application_id: application.id },
      headers: { Authorization: `Bearer ${state.getKey()}` } });
    state.call = made.id;
    state.application = application.id;
    status(box, w("call.ringing"));
    actions(box, button("hangup", "call.hangup", hangup, "danger"));
  } catch (e) {
    status(box, e.code ? refusal(e) : (e.readable || e.message));
  }
}

async function listApplications() {
  const list = citizenBox.querySelector(".window-apps");
  const headers = { Authorization: `Bearer ${state.getKey()}` };
  const [subs, presence] = await Promise.all([api("/api/v1/submissions", { headers }),
    api("/api/v1/window/presence", { headers })]);
  const free = new Map(presence.items.map((p) => [p.department, p]));
  const apps = subs.items.flatMap((s) => s.applications || []).filter((a) => a.status !== "result_issued");
  list.replaceChildren(...(apps.length ? apps.map((a) => {
    const p = free.get(a.department);
    const open = p && p.free > 0;
    return el("article", { class: "card window-app", "data-application": a.id },
      el("h3", { text: a.item_name }),
      el("p", { class: "meta", text: `${a.id} · ${w(`status.${a.status}`, { defaultValue: a.status })}` }),
      el("p", { class: `quiet ${open ? "ok" : ""}`, text: open ? w("apps.clerksFree", { count: p.free }) : w("apps.noClerk") }),
      el("button", { type: "button", class: "small primary", "data-action": "call", text: w("apps.call"),
        onclick: () => call(a) }));
  }) : [el("p", { class: "quiet", text: w("apps.none") })]));
}

// The citizen's window inside `section` (the portal's tab, the kiosk's screen); `getKey` gives
// the key (the kiosk holds its short-lived key in memory only).
export async function mountCitizen(section, getKey = storedKey) {
  await useNamespaces(["window"]);
  state.role = "citizen";
  state.getKey = getKey;
  if (!citizenBox || citizenBox.parentNode !== section) {
    citizenBox = el("div", { class: "window-citizen" },
      el("h1", { text: w("portal.title") }),
      el("p", { class: "quiet", text: w("portal.lead") }),
      el("div", { class: "window-apps" }), callPanel());
    section.replaceChildren(citizenBox);
    socket = socket || new WindowSocket(onCitizenMessage);
  }
  await listApplications();
}

// The kiosk wipes its session: a call in progress ends with it.
export function leave() {
  hangup();
  stopMedia();
  if (socket) socket.close();
  state.call = null;
}

// -- the clerk's side (console) ---------------------------------------------------------------

function consoleDialog() {
  let d = document.getElementById("window-dialog");
  if (d) return d;
  d = el("dialog", { id: "window-dialog", class: "window-dialog" },
    el("h2", { "data-w": "console.title" }),
    el("label", { class: "window-presence" }, el("input", { type: "checkbox", id: "window-online" }), " ",
      el("span", { "data-w": "console.online" })),
    el("p", { class: "window-department quiet" }),
    el("div", { class: "window-ring" }),
    callPanel(),
    el("menu", {}, el("button", { type: "button", "data-action": "close", "data-w": "console.close" })));
  document.body.append(d);
  d.querySelector("#window-online").addEventListener("change", (e) => goOnline(e.target.checked));
  d.querySelector("[data-action=close]").addEventListener("click", () => d.close());
  labels(d);
  return d;
}

function labels(root) {
  for (const node of root.querySelectorAll("[data-w]")) node.textContent = w(node.dataset.w);
}

async function goOnline(online) {
  const d = consoleDialog();
  state.online = online;
  try {
    const welcome = await socket.open();
    d.querySelector(".window-department").textContent = w("console.department", { department: deptName(welcome.department) });
    socket.send({ type: "presence", online });
  } catch {
    d.querySelector("#window-online").checked = false;
  }
}

async function showApplication(box, id) {
  // With the clerk's own key: the server checks it is their department's.
  const app = await api(`/api/v1/applications/${encodeURIComponent(id)}`);
  state.application = app;
  const rows = Object.entries(app.answers || {}).map(([k, v]) => el("tr", { "data-answer": k },
    el("th", { text: k }), el("td", { text: typeof v === "object" ? JSON.stringify(v) : String(v) })));
  box.querySelector(".window-application").replaceChildren(
    el("h3", { text: `${app.item_name} · ${app.id}` }),
    el("p", { class: "meta", text: `${w(`status.${app.status}`, { defaultValue: app.status })} · ${app.applicant}` }),
    el("table", { class: "window-answers" }, el("tbody", {}, ...rows)));
}

function onClerkMessage(m) {
  const d = consoleDialog();
  const box = d.querySelector(".window-call");
  const ring = d.querySelector(".window-ring");
  if (m.type === "presence") {
    state.online = m.online;
    d.querySelector("#window-online").checked = m.online;
  } else if (m.type === "ring") {
    state.call = m.call;
    if (!d.open) d.show();
    box.hidden = false;
    status(box, w("console.ringing", { item: m.application.item_name }));
    showApplication(box, m.application.id).catch((e) => toast(e.readable || e.message));
    ring.replaceChildren(
      button("accept", "console.accept", () => socket.send({ type: "accept", call: m.call }), "primary"),
      button("decline", "console.decline", () => socket.send({ type: "decline", call: m.call })));
  } else if (m.type === "accepted") {
    ring.replaceChildren();
    status(box, w("call.connecting"));
    actions(box, button("push-form", "console.pushForm", () => socket.send({ type: "push_form", call: state.call })),
      button("hangup", "call.hangup", hangup, "danger"));
    startMedia(box, false).catch((e) => status(box, String(e)));
  } else if (m.type === "signal") {
    received(box, m.data);
  } else if (m.type === "form_pushed") {
    toast(w("console.formPushed"), "ok");
  } else if (m.type === "form_saved") {
    state.saved += 1;
    toast(w("console.formSaved"), "ok");
    showApplication(box, m.application).catch((e) => toast(e.readable || e.message));
  } else if (m.type === "declined" || m.type === "ended") {
    ring.replaceChildren();
    if (m.type === "ended") ended(box, m);
    else { state.call = null; status(box, w("console.declined")); }
  } else if (m.type === "error") {
    toast(refusal(m));
  } else if (m.type === "closed") {
    if (state.call) ended(box, { reason: "dropped" });
    // A dropped socket took the clerk offline; come back as they were.
    if (state.online) setTimeout(() => goOnline(true), RECONNECT_MS);
  }
}

async function start() {
  if (!document.querySelector("link[href='/static/window.css']")) {
    document.head.append(el("link", { rel: "stylesheet", href: "/static/window.css" }));
  }
  const section = document.getElementById("tab-window");
  if (section) {
    await useNamespaces(["window"]);
    const tab = document.querySelector("#tabs button[data-tab=window]");
    tab.textContent = w("portal.tab");
    tab.addEventListener("click", () => mountCitizen(section).catch((e) => toast(e.readable || e.message)));
    onLanguageChange(() => { tab.textContent = w("portal.tab"); if (!section.hidden && !state.call) mountCitizen(section); });
  }
  const consoleButton = document.getElementById("window-button");
  if (consoleButton) {
    await useNamespaces(["window"]);
    state.role = "clerk";
    socket = new WindowSocket(onClerkMessage);
    consoleButton.textContent = w("console.button");
    consoleButton.addEventListener("click", () => consoleDialog().show());
    onLanguageChange(() => {
      consoleButton.textContent = w("console.button");
      const d = document.getElementById("window-dialog");
      if (d) labels(d);
    });
  }
}

start();
