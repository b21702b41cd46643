// Senior care in the console: the nursing homes the key may see (beds, offers, the waiting
// list in the order beds are offered), freeing a bed when a resident leaves (the server offers
// it to the next in line at once), and booking a caregiver's visit, where a refusal (the slot
// taken, a skill the caregiver lacks, outside the schedule) is shown as the server gives it.
//
// Everything is asked of the API each time the dialog is used: a waiting list changes when
// offers lapse or other staff act, and the server is the one that decides.
import { api, el } from "/static/common.js";
import { t, useNamespaces, errorText, fmtDateTime } from "/static/i18n.js";

const P = "/api/v1/seniorcare";
// What was last shown; the tests read it.
const state = { homes: [], home: null, caregivers: [], booked: null, refused: null };
window.cityopsCare = state;

const tr = (key, options) => t(`care:${key}`, options);

function refusal(box, e) {
  box.textContent = e.status ? `${errorText({ error: e.message, code: e.code })}` : String(e);
  box.hidden = false;
  // The dialog scrolls; the refusal sits at its top, away from the button pressed.
  box.scrollIntoView({ block: "nearest" });
}

function clear(box) {
  box.textContent = "";
  box.hidden = true;
}

// -- homes ------------------------------------------------------------------------------------

function homeRow(h, open) {
  const row = el("tr", { "data-home": h.id },
    el("td", {}, el("b", { text: h.name }), el("div", { class: "quiet", text: h.id })),
    el("td", { text: String(h.beds) }), el("td", { text: String(h.occupied) }),
    el("td", { text: String(h.offered) }), el("td", { text: String(h.free) }),
    el("td", { text: String(h.waiting) }));
  row.addEventListener("click", () => open(h.id));
  return row;
}

function entryRow(w) {
  const e = w.entry;
  return el("tr", { "data-entry": e.id, "data-citizen": e.citizen },
    el("td", { text: String(w.position) }), el("td", { text: e.citizen }),
    el("td", { text: String(e.care_level) }), el("td", { text: String(e.age) }),
    el("td", { text: e.hardship === "none" ? "" : tr(`hardship.${e.hardship}`) }),
    el("td", { text: e.lives_alone ? tr("alone") : "" }),
    el("td", { text: String(w.points) }),
    el("td", { text: fmtDateTime(e.since * 1000) }));
}

function offerRow(e) {
  return el("tr", { "data-offer": e.id, "data-citizen": e.citizen },
    el("td", { text: String(e.bed) }), el("td", { text: e.citizen }),
    el("td", { text: fmtDateTime(e.deadline * 1000) }));
}

function residentRow(r, free) {
  const button = el("button", { type: "button", "data-free": String(r.bed), text: tr("free_bed") });
  button.addEventListener("click", () => free(r.bed));
  return el("tr", { "data-bed": String(r.bed) },
    el("td", { text: String(r.bed) }), el("td", { text: r.citizen }),
    el("td", { text: fmtDateTime(r.since * 1000) }), el("td", {}, button));
}

function table(heads, rows, empty) {
  return el("table", { class: "care-table" },
    el("thead", {}, el("tr", {}, ...heads.map((h) => el("th", { text: tr(h) })))),
    el("tbody", {}, ...(rows.length ? rows
      : [el("tr", {}, el("td", { colspan: String(heads.length), class: "quiet", text: tr(empty) }))])));
}

function drawHome(box, view, actions) {
  state.home = view;
  const h = view.home;
  const beds = el("input", { type: "number", min: "0", max: "5000", value: String(h.beds),
    name: "beds", "aria-label": tr("beds") });
  const save = el("button", { type: "button", "data-beds": "", text: tr("set_beds") });
  save.addEventListener("click", () => actions.beds(Number(beds.value)));
  box.replaceChildren(
    el("h3", { text: h.name }),
    el("p", { class: "quiet", text: tr("summary", { beds: h.beds, occupied: h.occupied,
      offered: h.offered, free: h.free, waiting: h.waiting }) }),
    el("div", { class: "care-beds" }, el("label", {}, tr("beds"), " ", beds), save),
    el("h4", { text: tr("offers") }),
    table(["bed", "citizen", "deadline"], (view.offers || []).map(offerRow), "no_offers"),
    el("h4", { text: tr("waiting") }),
    table(["place", "citizen", "care_level", "age", "hardship_col", "living", "points", "since"],
      (view.waiting || []).map(entryRow), "no_waiting"),
    el("h4", { text: tr("residents") }),
    table(["bed", "citizen", "since", ""], (view.residents || []).map((r) => residentRow(r, actions.free)),
      "no_residents"));
}

// -- bookings ---------------------------------------------------------------------------------

function bookingForm(caregivers, submit) {
  const skills = caregivers.skills || [];
  const form = el("form", { class: "care-book", autocomplete: "off" },
    el("label", {}, tr("caregiver"), " ", el("select", { name: "caregiver", required: "" },
      ...caregivers.caregivers.map((c) => el("option", { value: c.id, text: `${c.name} (${c.id})` })))),
    el("label", {}, tr("citizen"), " ", el("input", { name: "citizen", required: "" })),
    el("label", {}, tr("day"), " ", el("input", { name: "day", type: "date", required: "" })),
    el("label", {}, tr("start"), " ", el("input", { name: "start", type: "time", step: "900", required: "" })),
    el("label", {}, tr("end"), " ", el("input", { name: "end", type: "time", step: "900", required: "" })),
    el("label", {}, tr("skill"), " ", el("select", { name: "skill" }, el("option", { value: "", text: "" }),
      ...skills.map((s) => el("option", { value: s, text: tr(`skills.${s}`) })))),
    el("button", { type: "submit", class: "primary", text: tr("book") }));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const f = form.elements;
    submit({ caregiver: f.caregiver.value, citizen: f.citizen.value.trim(), day: f.day.value,
      start: f.start.value, end: f.end.value, skills: f.skill.value ? [f.skill.value] : [] });
  });
  return form;
}

// -- the dialog -------------------------------------------------------------------------------

async function setup() {
  const dialog = document.getElementById("care-dialog");
  const button = document.getElementById("care-button");
  if (!dialog || !button) return;
  await useNamespaces(["care"]);
  const list = el("div", { class: "care-homes" });
  const detail = el("div", { class: "care-home" });
  const bookings = el("div", { class: "care-bookings" });
  const alert = el("div", { class: "refusal", role: "alert", hidden: "" });
  const done = el("div", { class: "care-done", role: "status", hidden: "" });
  const close = el("button", { type: "button", text: tr("close") });
  close.addEventListener("click", () => dialog.close());
  dialog.replaceChildren(el("h2", { text: tr("title") }), alert, done,
    el("section", {}, el("h3", { text: tr("homes") }), list, detail),
    el("section", {}, el("h3", { text: tr("bookings") }), bookings),
    el("div", { class: "actions" }, close));

  const act = async (fn) => {
    clear(alert);
    clear(done);
    try {
      await fn();
    } catch (e) {
      state.refused = e.code || e.status;
      refusal(alert, e);
    }
  };
  const actionsFor = (id) => ({
    free: (bed) => act(async () => {
      drawHome(detail, await api(`${P}/homes/${encodeURIComponent(id)}/beds/${bed}/free`,
        { method: "POST", body: {} }), actionsFor(id));
      await loadHomes();
    }),
    beds: (n) => act(async () => {
      drawHome(detail, await api(`${P}/homes/${encodeURIComponent(id)}/beds`,
        { method: "PUT", body: { beds: n } }), actionsFor(id));
      await loadHomes();
    }),
  });
  const open = (id) => act(async () => {
    drawHome(detail, await api(`${P}/homes/${encodeURIComponent(id)}`), actionsFor(id));
  });
  const loadHomes = async () => {
    const got = await api(`${P}/homes`);
    state.homes = got.homes;
    list.replaceChildren(table(["home", "beds", "occupied", "offered", "free", "waiting"],
      got.homes.map((h) => homeRow(h, open)), "no_homes"));
  };
  const loadBookings = async () => {
    const got = await api(`${P}/caregivers`);
    state.caregivers = got.caregivers;
    bookings.replaceChildren(got.caregivers.length ? bookingForm(got, (body) => act(async () => {
      const b = await api(`${P}/bookings`, { method: "POST", body });
      state.booked = b.id;
      done.textContent = tr("booked", { caregiver: b.caregiver, citizen: b.citizen, day: b.day,
        start: b.start, end: b.end });
      done.hidden = false;
      done.scrollIntoView({ block: "nearest" });
    })) : el("p", { class: "quiet", text: tr("no_caregivers") }));
  };
  button.addEventListener("click", () => {
    dialog.showModal();
    act(async () => { await loadHomes(); await loadBookings(); });
  });
  button.disabled = false;  // the page starts it disabled: a click before now did nothing
}

setup();
