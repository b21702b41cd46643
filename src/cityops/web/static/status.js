// The status page's figures, refreshed each second from /status.json. A node publishes them
// only where its settings say so (open_status); elsewhere the page shows none and this stops.
// The page's words follow the language (the "status" namespace), as every page's do.
import { initI18n, languageSwitcher, fmtNumber } from "/static/i18n.js";

const fields = ["rate", "stored", "rejected", "dead"];

async function refresh() {
  const r = await fetch("/status.json");
  if (!r.ok) return false;
  const s = await r.json();
  for (const k of fields) document.getElementById(k).textContent = fmtNumber(s[k]);
  return true;
}

await initI18n(["status"]);
document.getElementById("lang").append(languageSwitcher());

if (document.body.dataset.open === "1") {
  const timer = setInterval(async () => {
    if (!(await refresh())) clearInterval(timer);
  }, 1000);
}
