// The list of calls at /ui/: the URL's query is the state (filters and the page's cursor).
"use strict";

(() => {
  const PAGE_SIZE = 50;
  const AGENT_CHARS = 20; // an unnamed agent shows its id, often a UUID: cut, whole in the title
  const FILTERS = ["vendor", "status", "created_after", "created_before"];
  const query = new URLSearchParams(location.search);
  const status = document.getElementById("status");

  function fillSelect(select, values, chosen) {
    for (const value of values) select.append(cv.el("option", { value, selected: value === chosen }, value));
  }

  // datetime-local shows and submits `YYYY-MM-DDTHH:MM:SS`; the API reads a zone-less time as UTC.
  function localValue(iso) {
    return iso ? iso.replace(/Z$|[+-]00:?00$/, "").slice(0, 19) : "";
  }

  const vendors = cv.vendorList();
  fillSelect(document.getElementById("f-vendor"), vendors, query.get("vendor"));
  fillSelect(document.getElementById("f-status"), (document.body.dataset.statuses || "").split(","), query.get("status"));
  fillSelect(document.getElementById("o-vendor"), vendors, query.get("vendor")); // else "choose…": no vendor is a likelier guess
  document.getElementById("f-after").value = localValue(query.get("created_after"));
  document.getElementById("f-before").value = localValue(query.get("created_before"));

  // Empty filters stay out of the URL, so a link shows only what narrows the list.
  document.getElementById("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = new URLSearchParams();
    for (const name of FILTERS) {
      const value = event.target.elements[name].value.trim();
      if (value) chosen.set(name, value);
    }
    location.assign("/ui/" + (chosen.toString() ? "?" + chosen : ""));
  });

  document.getElementById("open").addEventListener("submit", (event) => {
    event.preventDefault();
    const sessionId = document.getElementById("o-id").value.trim();
    if (sessionId) location.assign(cv.pagePath(document.getElementById("o-vendor").value, sessionId));
  });

  function row(call) {
    const when = call.listed_at || call.created_at || call.started_at;
    const agent = call.agent ? call.agent.name || call.agent.id : null;
    const parties = call.from_number || call.to_number ? (call.from_number || "?") + " → " + (call.to_number || "?") : "—";
    const recording = call.recording ? call.recording.state : "none";
    return cv.el(
      "tr",
      {},
      cv.el("td", {}, cv.el("a", { href: cv.pagePath(call.vendor, call.session_id), title: call.session_id }, cv.when(when))),
      cv.el("td", {}, call.vendor),
      cv.el("td", { title: agent && agent.length > AGENT_CHARS ? agent : null }, cv.cut(agent, AGENT_CHARS)),
      cv.el("td", { class: "wraps" }, parties),
      cv.el("td", { class: "num" }, cv.clock(call.duration_seconds)),
      cv.el("td", {}, cv.el("span", { class: "badge status-" + (call.status || "unknown") }, call.status || "unknown")),
      cv.el("td", { class: "wraps" }, call.ended_reason || "—"),
      cv.el("td", { class: "num" }, cv.usd(call.cost)),
      cv.el("td", {}, cv.el("span", { class: "badge recording-" + recording }, recording)),
    );
  }

  // An empty stack says how a first call gets here: `make dev`'s command with its ports, else the vendors' webhooks.
  function firstCall() {
    const command = document.body.dataset.firstSend;
    if (command) return ["No calls stored yet. Send a sample one from another terminal: ", cv.el("code", { id: "first-send" }, command)];
    return ["No calls stored yet: they appear here once a vendor's webhooks reach this stack (each webhook's URL is one of the stack's outputs, e.g. CozmoxServerMessagesWebhookUrl)."];
  }

  async function load() {
    const asked = new URLSearchParams();
    for (const name of [...FILTERS, "cursor"]) if (query.get(name)) asked.set(name, query.get(name));
    asked.set("limit", query.get("limit") || String(PAGE_SIZE)); // a `limit` in the URL sets the page size
    const { status: code, body } = await cv.api("/sessions?" + asked);
    if (code !== 200) {
      status.textContent = "Could not list calls: " + (body.error || body.message || "HTTP " + code);
      status.className = "error";
      return;
    }
    const table = document.getElementById("calls");
    const rows = document.createDocumentFragment();
    for (const call of body.items) rows.append(row(call));
    table.tBodies[0].replaceChildren(rows);
    table.hidden = body.items.length === 0;
    const filtered = FILTERS.some((name) => query.get(name));
    if (body.items.length) {
      status.textContent = body.items.length + (body.items.length === 1 ? " call" : " calls") + (query.get("cursor") ? " on this page" : "") + ", newest first";
    } else if (filtered) {
      status.textContent = "No call matches these filters.";
    } else {
      status.replaceChildren(...firstCall());
    }
    const first = document.getElementById("first");
    const next = document.getElementById("next");
    if (query.get("cursor")) {
      const start = new URLSearchParams(query);
      start.delete("cursor");
      first.href = "/ui/" + (start.toString() ? "?" + start : "");
      first.hidden = false;
    }
    if (body.next_cursor) {
      const following = new URLSearchParams(query);
      following.set("cursor", body.next_cursor);
      next.href = "/ui/?" + following;
      next.hidden = false;
    }
  }

  load();
})();
