// The storm banner of the big screen and the console: while the storm guard holds a
// category's new cases for a supervisor somewhere the key can see, a bar over the page says
// how many, of what, where, and links to the storm case.
//
// Asked of the API every few seconds rather than carried in the live feed: storms start and
// end seldom, and they are records in the store, so every node answers the same.
import { api, key, categoryName } from "/static/common.js";
import { t, useNamespaces, onLanguageChange } from "/static/i18n.js";

const EVERY_MS = 5000;
const SHOWN = 3; // more than this many storms at once: the rest are counted

// What the banner last showed; the tests read it.
const state = { items: [], polls: 0 };
window.cityopsStorms = state;

// The area's name in the page's language, from the page's map when it has one.
function areaName(storm) {
  const view = window.cityops && window.cityops.view;
  return view && view.features && view.features.has(storm.area) ? view.name(storm.area) : storm.area_name;
}

function line(storm) {
  const row = document.createElement("div");
  row.className = "storm";
  const text = document.createElement("span");
  text.textContent = t("storm:held", { count: storm.held, category: categoryName(storm.category),
    area: areaName(storm) });
  const link = document.createElement("a");
  link.href = `/console#incident=${encodeURIComponent(storm.incident)}`;
  link.textContent = t("storm:open");
  row.append(text, link);
  return row;
}

function render(box) {
  const items = state.items;
  box.replaceChildren(...items.slice(0, SHOWN).map(line));
  if (items.length > SHOWN) {
    const more = document.createElement("div");
    more.className = "storm more";
    more.textContent = t("storm:more", { count: items.length - SHOWN });
    box.append(more);
  }
  box.hidden = items.length === 0;
}

async function poll(box) {
  if (key()) {
    try {
      state.items = (await api("/api/v1/storms")).items;
    } catch (e) {
      // A key that may not see storms, or a node without the desk: nothing to show. A
      // passing failure (the node restarting) keeps what was shown until the next answer.
      if ([401, 403, 503].includes(e.status)) state.items = [];
    }
    state.polls += 1;
    render(box);
  }
  setTimeout(() => poll(box), EVERY_MS);
}

const box = document.getElementById("storm-banner");
if (box) {
  useNamespaces(["storm"]).then(() => poll(box));
  onLanguageChange(() => render(box));
}
