// The status page's figures, refreshed each second from /status.json. A node publishes them
// only where its settings say so (open_status); elsewhere the page shows none and this stops.

const fields = ["rate", "stored", "rejected", "dead"];

async function refresh() {
  const r = await fetch("/status.json");
  if (!r.ok) return false;
  const s = await r.json();
  for (const k of fields) document.getElementById(k).textContent = s[k].toLocaleString();
  return true;
}

if (document.body.dataset.open === "1") {
  const timer = setInterval(async () => {
    if (!(await refresh())) clearInterval(timer);
  }, 1000);
}
