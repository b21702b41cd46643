// Senior care in the citizen portal (a `#tab-care`): the citizen's places on nursing-home
// waiting lists (with the offer of a bed to accept or decline before its deadline), the homes
// of their town to join, their caregiver visits, and booking one. The console's side is
// care.js; both ask the same routes, which decide what a citizen's key may see and do.
import { api, el } from "/static/common.js";
import { t, useNamespaces, errorText, fmtDateTime } from "/static/i18n.js";

const P = "/api/v1/seniorcare";
// What was last shown; the tests read it.
const state = { entries: [], homes: [], bookings: [], caregivers: [], refused: null, loads: 0 };
window.cityopsCarePortal = state;

const tr = (key, options) => t(`care:${key}`, options);

function button(text, attrs, onclick) {
  const b = el("button", { type: "button", class: "small", text, ...attrs });
  b.addEventListener("click", onclick);
  return b;
}

function entryItem(m, act) {
  const e = m.entry;
  const li = el("li", { "data-entry": e.id, "data-status": e.status },
    el("b", { text: m.home_name }), " · ", tr(`status.${e.status}`));
  if (e.status === "waiting" && m.position) li.append(" · ", tr("place_n", { n: m.position }));
  if (e.status === "offered") {
    li.append(el("div", { class: "notice", text: tr("offer_text", { bed: e.bed,
      deadline: fmtDateTime(e.deadline * 1000) }) }),
    button(tr("accept"), { "data-act": "accept" }, () => act(m.home, e.id, "accept")),
    " ", button(tr("decline"), { "data-act": "decline" }, () => act(m.home, e.id, "decline")));
  } else if (e.status === "waiting") {
    li.append(" ", button(tr("withdraw"), { "data-act": "withdraw" }, () => act(m.home, e.id, "withdraw")));
  }
  return li;
}

function homeItem(h, join, already) {
  // A home the citizen is waiting for, offered or living in needs no second entry.
  return el("li", { "data-home": h.id }, el("b", { text: h.name }), " · ",
    tr("summary", { beds: h.beds, occupied: h.occupied, offered: h.offered, free: h.free,
      waiting: h.waiting }), " ",
    already.has(h.id) ? null : button(tr("join"), { "data-join": h.id }, () => join(h.id)));
}

function visitItem(b, cancel) {
  const li = el("li", { "data-booking": b.id, "data-status": b.status },
    `${b.day} ${b.start}-${b.end} · ${b.caregiver} · ${tr(`booking.${b.status}`)}`);
  if (b.status === "booked") li.append(" ", button(tr("cancel"), { "data-cancel": b.id }, () => cancel(b.id)));
  return li;
}

function bookForm(caregivers, skills, submit) {
  const form = el("form", { class: "care-book", autocomplete: "off" },
    el("label", {}, tr("caregiver"), " ", el("select", { name: "caregiver", required: "" },
      ...caregivers.map((c) => el("option", { value: c.id, text: c.name })))),
    el("label", {}, tr("day"), " ", el("input", { name: "day", type: "date", required: "" })),
    el("label", {}, tr("start"), " ", el("input", { name: "start", type: "time", step: "900", required: "" })),
    el("label", {}, tr("end"), " ", el("input", { name: "end", type: "time", step: "900", required: "" })),
    el("label", {}, tr("skill"), " ", el("select", { name: "skill" }, el("option", { value: "", text: "" }),
      ...skills.map((s) => el("option", { value: s, text: tr(`skills.${s}`) })))),
    el("button", { type: "submit", text: tr("book") }));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const f = form.elements;
    submit({ caregiver: f.caregiver.value, day: f.day.value, start: f.start.value,
      end: f.end.value, skills: f.skill.value ? [f.skill.value] : [] });
  });
  return form;
}

async function setup() {
  const tab = document.getElementById("tab-care");
  if (!tab) return;
  await useNamespaces(["care"]);
  const notice = el("p", { class: "notice", role: "status" });
  const entries = el("ul", { class: "care-entries" });
  const homes = el("ul", { class: "care-homes" });
  const visits = el("ul", { class: "care-visits" });
  const booking = el("div");
  tab.replaceChildren(el("h1", { text: tr("title") }), notice,
    el("h2", { text: tr("my_places") }), entries,
    el("h2", { text: tr("homes_near") }), homes,
    el("h2", { text: tr("my_visits") }), visits, booking);

  const run = async (fn, done) => {
    notice.textContent = "";
    try {
      await fn();
      if (done) notice.textContent = done;
    } catch (e) {
      state.refused = e.code || e.status;
      notice.textContent = e.status ? errorText({ error: e.message, code: e.code }) : String(e);
    }
    await load();
  };
  const act = (home, entry, action) => run(() => api(
    `${P}/homes/${encodeURIComponent(home)}/entries/${encodeURIComponent(entry)}`,
    { method: "POST", body: { action } }), tr(`done.${action}`));
  const join = (home) => run(() => api(`${P}/homes/${encodeURIComponent(home)}/waiting`,
    { method: "POST", body: {} }), tr("done.join"));
  const cancel = (id) => run(() => api(`${P}/bookings/${encodeURIComponent(id)}/cancel`,
    { method: "POST", body: {} }), tr("done.cancel"));
  const book = (body) => run(() => api(`${P}/bookings`, { method: "POST", body }), tr("done.book"));

  const load = async () => {
    const [mine, near, carers] = await Promise.all([api(`${P}/mine`), api(`${P}/homes`),
      api(`${P}/caregivers`)]);
    Object.assign(state, { entries: mine.entries, bookings: mine.bookings, homes: near.homes,
      caregivers: carers.caregivers, loads: state.loads + 1 });
    entries.replaceChildren(...(mine.entries.length ? mine.entries.map((m) => entryItem(m, act))
      : [el("li", { class: "quiet", text: tr("no_places") })]));
    const already = new Set(mine.entries.filter((m) => ["waiting", "offered", "admitted"]
      .includes(m.entry.status)).map((m) => m.home));
    homes.replaceChildren(...(near.homes.length ? near.homes.map((h) => homeItem(h, join, already))
      : [el("li", { class: "quiet", text: tr("no_homes_near") })]));
    visits.replaceChildren(...(mine.bookings.length ? mine.bookings.map((b) => visitItem(b, cancel))
      : [el("li", { class: "quiet", text: tr("no_visits") })]));
    // The form stays as filled in while the caregivers are the same: a refused visit is
    // changed and sent again, not typed anew.
    const ids = carers.caregivers.map((c) => c.id).join(",");
    if (booking.dataset.caregivers !== ids || !booking.firstChild) {
      booking.dataset.caregivers = ids;
      booking.replaceChildren(carers.caregivers.length ? bookForm(carers.caregivers, carers.skills, book)
        : el("p", { class: "quiet", text: tr("no_caregivers_near") }));
    }
  };
  const opened = () => load().catch((e) => { notice.textContent = e.message || String(e); });
  const tabButton = document.querySelector("#tabs button[data-tab=care]");
  if (tabButton) tabButton.addEventListener("click", opened);
  if (new URLSearchParams(location.hash.slice(1)).get("tab") === "care" || !tab.hidden) opened();
}

setup();
