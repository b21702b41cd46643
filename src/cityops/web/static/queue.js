// Queue numbers of the service hall, on two pages.
//
// The console (a `#queue-button`): a clerk calls the next number of their department's counter
// to their window, closes a called number as served or as a no-show, or calls it again; the
// day's numbers, the waiting count and the waits are shown beside. A department key is the
// clerk of its own counter only (the server refuses any other); an unscoped admin picks the
// counter, an operator watches. The panel refreshes while it is open, so numbers taken at the
// kiosk or on the portal appear without a reload.
//
// The citizen portal (a `#tab-queue`): the hall's board, a number taken from home (channel
// portal), and the person's own number with the people ahead and the estimated wait.
import { api, el, key } from "/static/common.js";
import { t, useNamespaces, onLanguageChange, fmtTime } from "/static/i18n.js";

const REFRESH_MS = 4000;
// What was last shown; the tests read it.
const state = { me: null, counter: null, day: null, loads: 0, timer: null, last: "" };
window.cityopsQueue = state;

function minutes(s) {
  if (s == null) return "—";
  return s < 90 ? `${Math.round(s)} s` : `${Math.round(s / 60)} min`;
}

function dialog() {
  let d = document.getElementById("queue-dialog");
  if (d) return d;
  d = el("dialog", { id: "queue-dialog", class: "queue-dialog" });
  const form = el("form", { method: "dialog" },
    el("h2", { "data-q": "console.title" }),
    el("div", { class: "queue-controls" },
      el("label", {}, el("span", { "data-q": "console.counter" }), " ",
        el("select", { name: "counter", "aria-label": "counter" })),
      el("label", {}, el("span", { "data-q": "console.window" }), " ",
        el("input", { name: "window", value: "1", size: "3", maxlength: "8", "aria-label": "window" })),
      el("button", { type: "button", class: "primary", "data-action": "next", "data-q": "console.next" })),
    el("p", { class: "queue-summary" }),
    el("p", { class: "queue-status", role: "status", style: "font-weight:600" }),
    el("p", { class: "error", role: "alert" }),
    el("table", { class: "queue-table", style: "border-spacing:12px 4px" },
      el("thead", {}, el("tr", {}, ...["number", "status", "window", "taken", "wait", "channel", ""]
        .map((k) => el("th", k ? { "data-q": `console.${k}` } : {})))),
      el("tbody")),
    el("menu", {}, el("button", { value: "close", "data-q": "console.close" })));
  d.append(form);
  document.body.append(d);
  form.querySelector("[data-action=next]").addEventListener("click", callNext);
  form.elements.counter.addEventListener("change", () => { state.counter = form.elements.counter.value; load(); });
  d.addEventListener("close", () => { clearInterval(state.timer); state.timer = null; });
  label(d);
  return d;
}

function label(root) {
  for (const node of root.querySelectorAll("[data-q]")) node.textContent = t(`queue:${node.dataset.q}`);
}

function say(text) {
  dialog().querySelector(".error").textContent = text || "";
}

function tell(text) {
  dialog().querySelector(".queue-status").textContent = text || "";
}

async function counters() {
  // A department key clerks its own counter; an unscoped admin or operator may pick any.
  const board = await api("/api/v1/queue/counters");
  const scope = state.me && state.me.scope;
  const mine = state.me && state.me.role === "department"
    ? board.items.filter((c) => c.counter === scope)
    : board.items;
  return mine;
}

async function open() {
  const d = dialog();
  say("");
  try {
    if (!state.me) state.me = await api("/api/v1/me");
    const list = await counters();
    const select = d.querySelector("select[name=counter]");
    select.replaceChildren(...list.map((c) => el("option", { value: c.counter, text: `${c.prefix} · ${c.name}` })));
    if (!list.length) {
      say(t("queue:console.noCounters"));
    } else {
      state.counter = state.counter && list.some((c) => c.counter === state.counter) ? state.counter : list[0].counter;
      select.value = state.counter;
      await load();
    }
  } catch (e) {
    say(e.readable || e.message);
  }
  if (!d.open) d.showModal();
  clearInterval(state.timer);
  state.timer = setInterval(load, REFRESH_MS);
}

async function load() {
  if (!state.counter) return;
  try {
    state.day = await api(`/api/v1/queue/counters/${encodeURIComponent(state.counter)}`);
    state.loads += 1;
    draw();
  } catch (e) {
    say(e.readable || e.message);
  }
}

function statusText(s) {
  return t(`queue:console.status_${s}`, { defaultValue: s });
}

function draw() {
  const d = dialog();
  const day = state.day;
  if (!day) return;
  d.querySelector(".queue-summary").textContent = [
    `${t("queue:console.waiting")}: ${day.waiting}`,
    `${t("queue:console.serving")}: ${day.serving.join(", ") || "—"}`,
    `${t("queue:console.average")}: ${minutes(day.average_wait_s)}`,
    `${t("queue:console.estimate")}: ${minutes(day.estimated_wait_s)}`,
  ].join(" · ");
  const body = d.querySelector("tbody");
  const clerk = state.me && state.me.role !== "operator";
  const rows = [...day.tickets].reverse().map((tk) => el("tr", { "data-number": tk.number, class: tk.status },
    el("td", {}, el("b", { text: tk.label })),
    el("td", { text: statusText(tk.status) }),
    el("td", { text: tk.window || "" }),
    el("td", { text: fmtTime(tk.taken_at * 1000, { timeStyle: "short" }) }),
    el("td", { text: minutes(tk.wait_s) }),
    el("td", { text: tk.channel }),
    el("td", {}, ...(clerk && tk.status === "called" ? [
      action(tk, "served", "console.served"), action(tk, "no_show", "console.noShow"),
      action(tk, "recall", "console.recall")] : []))));
  body.replaceChildren(...rows);
  if (!rows.length) body.append(el("tr", {}, el("td", { colspan: "7", class: "quiet", text: t("queue:console.none") })));
}

function action(tk, name, label) {
  return el("button", { type: "button", class: "small", "data-act": name, text: t(`queue:${label}`),
    onclick: () => act(tk.number, name) });
}

async function callNext() {
  say("");
  tell("");
  const d = dialog();
  const window_ = d.querySelector("input[name=window]").value.trim() || "1";
  try {
    const called = await api(`/api/v1/queue/counters/${encodeURIComponent(state.counter)}/call`,
      { method: "POST", body: { window: window_ } });
    state.last = called.label;
    await load();
    tell(t("queue:console.called", { label: called.label, window: called.window }));
  } catch (e) {
    say(translated(e));
  }
}

async function act(number, name) {
  say("");
  try {
    await api(`/api/v1/queue/counters/${encodeURIComponent(state.counter)}/actions/${name}`,
      { method: "POST", body: { number } });
    await load();
  } catch (e) {
    say(translated(e));
  }
}

function translated(e) {
  // The queue's own refusals read in the console's language; anything else as common.js says.
  return e.code && e.code.startsWith("queue_")
    ? t(`queue:errors.${e.code}`, { defaultValue: e.message })
    : (e.readable || e.message);
}

// -- the portal ------------------------------------------------------------------------------------

const portal = { timer: null, loads: 0 };
window.cityopsQueuePortal = portal;

function waitText(s) {
  return s == null ? t("queue:wait.unknown") : t("queue:wait.minutes", { count: Math.max(1, Math.round(s / 60)) });
}

async function loadPortal() {
  const box = document.getElementById("queue-board");
  const mine = document.getElementById("queue-mine");
  const [board, tickets] = await Promise.all([api("/api/v1/queue/counters"), api("/api/v1/queue/tickets")]);
  portal.loads += 1;
  const held = tickets.items.filter((x) => x.status === "waiting" || x.status === "called");
  mine.replaceChildren(...held.map((x) => el("div", { class: "card queue-ticket", "data-label": x.label },
    el("b", { class: "queue-label", text: x.label }), " ", el("span", { text: x.counter_name }),
    el("div", { class: "quiet", text: x.status === "called"
      ? t("queue:ticket.called", { window: x.window })
      : t("queue:ticket.ahead", { count: x.ahead, wait: waitText(x.estimated_wait_s) }) }))));
  const taken = new Set(held.map((x) => x.counter));
  box.replaceChildren(...board.items.map((c) => el("div", { class: "card", "data-counter": c.counter },
    el("b", { text: `${c.prefix} · ${c.name}` }),
    el("div", { class: "quiet", text: t("queue:board.line", { count: c.waiting, wait: waitText(c.estimated_wait_s) }) }),
    taken.has(c.counter) ? null : el("button", { type: "button", class: "small", text: t("queue:kiosk.take"),
      onclick: () => takeFromHome(c.counter) }))));
}

async function takeFromHome(counter) {
  const notice = document.getElementById("queue-notice");
  try {
    const ticket = await api("/api/v1/queue/tickets", { method: "POST", body: { counter, channel: "portal" } });
    notice.textContent = t("queue:kiosk.taken", { label: ticket.label });
  } catch (e) {
    notice.textContent = translated(e);
  }
  await loadPortal();
}

function startPortal(section) {
  const tab = document.querySelector("#tabs button[data-tab=queue]");
  const refresh = () => loadPortal().catch((e) => {
    document.getElementById("queue-notice").textContent = e.readable || e.message;
  });
  tab.addEventListener("click", () => {
    refresh();
    clearInterval(portal.timer);
    // While the tab is open only: the wait moves as the counters call.
    portal.timer = setInterval(() => (section.hidden ? clearInterval(portal.timer) : refresh()), 15000);
  });
  onLanguageChange(() => { if (!section.hidden) refresh(); });
}

async function start() {
  const section = document.getElementById("tab-queue");
  if (section) {
    await useNamespaces(["queue"]);
    startPortal(section);
  }
  const button = document.getElementById("queue-button");
  if (!button) return;
  if (!section) await useNamespaces(["queue"]);
  button.textContent = t("queue:console.button");
  button.addEventListener("click", () => { if (key()) open(); });
  onLanguageChange(() => {
    button.textContent = t("queue:console.button");
    const d = document.getElementById("queue-dialog");
    if (d) { label(d); draw(); }
  });
}

start();
