// A call's page at /ui/sessions/{vendor}/{session_id}: facts, metrics, cost, recording, transcript
// (a turn seeks the recording), tool calls, summary, vendor fields, events with their raw payloads, erasure.
"use strict";

(() => {
  const { el } = cv;
  const main = document.getElementById("call");
  const status = document.getElementById("status");
  const parts = location.pathname.split("/"); // "", "ui", "sessions", vendor, session id
  const vendor = decodeURIComponent(parts[3] || "");
  const sessionId = decodeURIComponent(parts.slice(4).join("/"));
  const title = document.getElementById("title");

  function section(id, heading, ...content) {
    return el("section", { id, "aria-labelledby": id + "-heading" }, el("h2", { id: id + "-heading" }, heading), ...content);
  }

  function facts(session) {
    const agent = session.agent || {};
    const rows = [
      ["Vendor", session.vendor],
      ["Session id", el("code", {}, session.session_id)],
      ["Status", session.status || "unknown"],
      ["Channel", session.channel],
      ["Agent", [agent.name, agent.id && agent.name ? "(" + agent.id + ")" : agent.id].filter(Boolean).join(" ") || "—"],
      ["From → to", (session.from_number || "—") + " → " + (session.to_number || "—")],
      ["Created", cv.when(session.created_at)],
      ["Started", cv.when(session.started_at)],
      ["Ended", cv.when(session.ended_at)],
      ["Duration", cv.clock(session.duration_seconds)],
      ["Ended reason", session.ended_reason || "—"],
    ];
    return el("dl", { class: "facts" }, rows.map(([name, value]) => [el("dt", {}, name), el("dd", {}, value)]));
  }

  // The player, through the /recording route (a redirect to a short-lived presigned URL).
  function recording(session) {
    const rec = session.recording || { state: "none" };
    if (rec.state === "archived") {
      const source = cv.sessionPath(session.vendor, session.session_id) + "/recording";
      const audio = el("audio", { id: "player", controls: true, preload: "metadata", src: source });
      const size = rec.bytes ? (rec.bytes >= 1e6 ? (rec.bytes / 1e6).toFixed(1) + " MB" : Math.ceil(rec.bytes / 1e3) + " kB") : null;
      const note = el("p", { class: "note" }, [rec.content_type || "audio", size].filter(Boolean).join(", "));
      return { node: section("recording", "Recording", audio, note), audio, source };
    }
    const why = {
      failed: "The recording could not be archived: " + (rec.error || "no reason given") + (rec.attempts ? " (after " + rec.attempts + " attempts)" : ""),
      pending: "The recording is not archived yet" + (rec.error ? "; the last attempt: " + rec.error : "") + ".",
      none: "This call has no recording.",
    }[rec.state] || "Recording state: " + rec.state;
    return { node: section("recording", "Recording", el("p", { class: rec.state === "failed" ? "error" : "note" }, why)), audio: null };
  }

  // A turn's offset into the call: the vendor's `seconds`, else (marked ≈) its time after the start.
  function offsetOf(turn, startedAt) {
    if (turn.seconds !== null && turn.seconds !== undefined) return { seconds: turn.seconds, approx: false };
    if (turn.at && startedAt) {
      const seconds = (Date.parse(turn.at) - Date.parse(startedAt)) / 1000;
      if (Number.isFinite(seconds) && seconds >= 0) return { seconds, approx: true };
    }
    return null;
  }

  function toolBlock(tool) {
    return el(
      "div",
      { class: "tool" + (tool.is_error ? " tool-error" : "") },
      el("span", { class: "tool-name" }, (tool.output !== null && tool.arguments === null ? "result of " : "call ") + (tool.name || "a tool")),
      tool.arguments !== null ? el("pre", { class: "args" }, tool.arguments) : null,
      tool.output !== null ? el("pre", { class: "out" }, tool.output) : null,
      tool.is_error ? el("span", { class: "badge recording-failed" }, "error") : null,
    );
  }

  function transcript(session, playable) {
    // Scrolls in its own box (reachable by keyboard): the events and erasure stay near on a long call.
    const list = el("ol", { class: "transcript", id: "turns", tabindex: "0", "aria-labelledby": "transcript-heading" });
    const offsets = []; // [seconds, index], sorted: the turn being played is found by bisection
    const items = document.createDocumentFragment();
    session.transcript.forEach((turn, index) => {
      const offset = offsetOf(turn, session.started_at);
      const label = offset ? (offset.approx ? "≈" : "") + cv.clock(offset.seconds) : "—";
      const stamp =
        offset && playable
          ? el("button", { type: "button", class: "offset", "data-seconds": offset.seconds, "aria-label": "Play from " + label + " (" + turn.role + ")" }, label)
          : el("span", { class: "offset" }, label);
      if (offset) offsets.push([offset.seconds, index]);
      items.append(
        el(
          "li",
          { class: "turn role-" + turn.role, "data-index": index, title: turn.at ? cv.when(turn.at) + " UTC" : null },
          stamp,
          el("span", { class: "role" }, turn.role),
          el("div", { class: "said" }, turn.text ? el("p", {}, turn.text) : null, turn.tool ? toolBlock(turn.tool) : null),
        ),
      );
    });
    list.append(items);
    offsets.sort((a, b) => a[0] - b[0]);
    const count = session.transcript.length;
    const body = count ? list : el("p", { class: "note" }, "No transcript.");
    return { node: section("transcript", "Transcript" + (count ? " (" + count + " turns)" : ""), body), list, offsets };
  }

  function valueNode(value) {
    if (value === null || value === undefined) return "—";
    if (typeof value === "string") return value;
    if (typeof value === "number" || typeof value === "boolean") return String(value);
    return el("pre", {}, JSON.stringify(value, null, 2));
  }

  function table(entries, caption) {
    return el(
      "table",
      { class: "pairs" },
      el("caption", { class: "sr-only" }, caption),
      el("tbody", {}, entries.map(([name, value]) => el("tr", {}, el("th", { scope: "row" }, name), el("td", {}, value)))),
    );
  }

  // The read API's per-call metrics, those the vendor reported (a null one is unknown, not zero).
  const METRICS = [
    ["interruptions", "Caller interruptions", String], // times the caller cut the agent off
    ["latency_p50_ms", "Latency p50", (ms) => Math.round(ms).toLocaleString("en-US") + " ms"],
    ["latency_p90_ms", "Latency p90", (ms) => Math.round(ms).toLocaleString("en-US") + " ms"],
    ["agent_talk_seconds", "Agent talk", cv.spoken],
    ["customer_talk_seconds", "Customer talk", cv.spoken],
  ];

  function metrics(session) {
    const known = session.metrics || {};
    const rows = METRICS.filter(([key]) => typeof known[key] === "number" && Number.isFinite(known[key]));
    if (!rows.length) return null;
    return section("metrics", "Metrics", el("dl", { class: "facts" }, rows.map(([key, name, shown]) => [el("dt", {}, name), el("dd", {}, shown(known[key]))])));
  }

  const words = (key) => key.replace(/([a-z])([A-Z])/g, "$1 $2").replaceAll("_", " ").toLowerCase();

  // Reading a vendor's own cost breakdown (docs/vendors.md) as lines of dollars. Keys that count
  // something else (tokens, characters, time, credits) or price a unit are shown beside a line,
  // never as dollars; the total is shown once, from the normalized `total_usd`.
  const COUNTED = /tokens|characters|seconds|minutes|credits|price/i;
  const TOTAL = /^(total|total_?cost|combined_?cost)$/i;
  const NAMED_BY = ["product", "type", "subType", "analysisType", "provider", "model", "name"];
  const CENTS = new Set(["retell"]); // Retell's breakdown is in cents (its `combined_cost` is the total)

  // "1,840 input tokens", "0.19 minutes"; a price or a total by its name: "total duration seconds: 74.5".
  function counted(key, value) {
    const number = value.toLocaleString("en-US", { maximumFractionDigits: 4 });
    return /price|total/i.test(key) ? words(key) + ": " + number : number + " " + words(key);
  }

  // What a line item is called: its own names (and those of the provider or model it used).
  function itemName(item, fallback) {
    const names = [];
    for (const value of [...NAMED_BY.map((key) => item[key]), ...Object.values(item).filter((v) => v && typeof v === "object")]) {
      const found = typeof value === "string" ? [value] : value && typeof value === "object" && !Array.isArray(value) ? [value.provider, value.model].filter((v) => typeof v === "string") : [];
      for (const name of found) if (!names.includes(name)) names.push(name);
    }
    return names.length ? names.map(words).join(" · ") : fallback;
  }

  // One line of dollars; `key`, when the breakdown names the item by its key ({"voice": {...}}).
  function itemLine(item, fallback, scale, key) {
    const detail = Object.entries(item).filter(([name, value]) => typeof value === "number" && COUNTED.test(name)).map(([name, value]) => counted(name, value));
    const named = itemName(item, fallback);
    return { what: key && named !== key ? key + " · " + named : named, usd: item.cost * scale, detail: detail.join(", ") };
  }

  function breakdownLines(breakdown, scale, prefix, lines, notes) {
    for (const [key, value] of Object.entries(breakdown || {})) {
      const name = (prefix ? prefix + " · " : "") + words(key);
      if (TOTAL.test(key) || value === null || value === undefined) continue;
      if (typeof value === "number") {
        if (COUNTED.test(key)) notes.push(counted(key, value));
        else lines.push({ what: name, usd: value * scale, detail: "" });
      } else if (Array.isArray(value)) {
        value.forEach((item, index) => {
          if (item && typeof item === "object" && typeof item.cost === "number") lines.push(itemLine(item, name + " " + (index + 1), scale));
        });
      } else if (typeof value === "object") {
        if (typeof value.cost === "number") lines.push(itemLine(value, name, scale, name));
        else breakdownLines(value, scale, name.replace(/ (cost )?breakdown$/, ""), lines, notes); // Vapi's analysisCostBreakdown: "analysis · summary"
      } else notes.push(name + ": " + value);
    }
  }

  // A vendor field `costs` that lists the cost line by line (Vapi-format reports) is the finest
  // breakdown there is: shown here, and not again among the vendor fields.
  function itemizedCosts(session) {
    const costs = (session.vendor_fields || {}).costs;
    return Array.isArray(costs) && costs.some((item) => item && typeof item === "object" && typeof item.cost === "number") ? costs : null;
  }

  function cost(session) {
    const itemized = itemizedCosts(session);
    if (!session.cost && !itemized) return null;
    const scale = CENTS.has(session.vendor) ? 0.01 : 1;
    const lines = [], notes = [];
    breakdownLines(itemized ? { costs: itemized } : (session.cost || {}).breakdown, itemized ? 1 : scale, "", lines, notes);
    const total = (session.cost || {}).total_usd;
    const parts = [el("p", { class: "total" }, "Total ", el("strong", {}, cv.usd(session.cost)))];
    if (lines.length) {
      parts.push(
        el(
          "table",
          { class: "cost-lines" },
          el("caption", { class: "sr-only" }, "Cost breakdown"),
          el("tbody", {}, lines.map((line) => el("tr", {}, el("th", { scope: "row" }, line.what, line.detail ? el("span", { class: "note" }, " (" + line.detail + ")") : null), el("td", { class: "num" }, cv.money(line.usd))))),
        ),
      );
      const sum = lines.reduce((all, line) => all + line.usd, 0);
      if (typeof total === "number" && Math.abs(sum - total) >= 0.00005) {
        parts.push(el("p", { class: "note" }, "These lines add up to " + cv.money(sum) + ", not the vendor's total."));
      }
    }
    if (notes.length) parts.push(el("p", { class: "note" }, notes.join(" · ")));
    return section("cost", "Cost", parts);
  }

  function summary(session) {
    if (!session.summary) return null;
    return section("summary", "Summary", el("p", { class: "summary" }, session.summary));
  }

  // What the vendor said beyond the normalized session, folded: a reviewer reads the call first.
  function vendorFields(session) {
    const shownAbove = itemizedCosts(session) ? new Set(["costs"]) : new Set();
    const fields = Object.entries(session.vendor_fields || {}).filter(([name]) => !shownAbove.has(name));
    if (!fields.length) return null;
    const names = fields.map(([name]) => words(name)).join(", ");
    return section(
      "vendor-fields",
      "Vendor fields",
      el(
        "details",
        {},
        el("summary", {}, fields.length + (fields.length === 1 ? " field: " : " fields: ") + names),
        table(fields.map(([name, value]) => [words(name), valueNode(value)]), "Fields of the vendor's own"),
      ),
    );
  }

  function events(session) {
    const rows = session.events.map((event) => {
      const raw = el("pre", { class: "raw" }, "Loading…");
      const details = el("details", {}, el("summary", {}, "Raw payload"), raw);
      details.addEventListener("toggle", async () => {
        if (!details.open || details.dataset.loaded) return;
        details.dataset.loaded = "1";
        const path = "/ui/raw" + cv.sessionPath(session.vendor, session.session_id).slice("/sessions".length) + "/" + encodeURIComponent(event.event_id);
        const response = await fetch(path);
        const text = await response.text();
        let shown = text;
        try {
          shown = JSON.stringify(JSON.parse(text), null, 2);
        } catch (_) {
          /* not JSON: shown as it is */
        }
        raw.textContent = response.ok ? shown : "Could not read the raw payload: " + text;
      });
      return el(
        "tr",
        {},
        el("td", {}, cv.when(event.received_at)),
        el("td", {}, event.type),
        el("td", {}, el("span", { class: "badge source-" + event.source }, event.source)),
        el("td", {}, el("code", { title: event.raw_s3_uri }, event.event_id.length > 24 ? event.event_id.slice(0, 24) + "…" : event.event_id)),
        el("td", {}, details),
      );
    });
    return section(
      "events",
      "Events (" + session.events.length + ")",
      el(
        "div",
        { class: "scroll" },
        el(
          "table",
          { class: "events" },
          el("caption", { class: "sr-only" }, "Events received for this call"),
          el("thead", {}, el("tr", {}, ["Received (UTC)", "Type", "Source", "Event id", "Payload"].map((h) => el("th", { scope: "col" }, h)))),
          el("tbody", {}, rows),
        ),
      ),
    );
  }

  function erasure(session) {
    const input = el("input", { id: "erase-id", autocomplete: "off", spellcheck: "false", "aria-describedby": "erase-help" });
    const button = el("button", { type: "submit", class: "danger", disabled: true }, "Erase this call");
    const result = el("div", { id: "erase-result", role: "status", "aria-live": "polite", tabindex: "-1" });
    input.addEventListener("input", () => {
      button.disabled = input.value !== session.session_id;
    });
    const form = el(
      "form",
      { class: "erase" },
      el("p", { id: "erase-help" }, "Erasing removes every byte of this call: its record, events, raw payloads, transcript and recording. It cannot be undone. Type the session id, ", el("code", {}, session.session_id), ", to confirm."),
      el("label", { for: "erase-id" }, "Session id"),
      " ",
      input,
      " ",
      button,
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (input.value !== session.session_id) return;
      button.disabled = true;
      result.textContent = "Erasing…";
      const { status: code, body } = await cv.api(cv.sessionPath(session.vendor, session.session_id), { method: "DELETE" });
      if (code !== 200) {
        result.textContent = "Not erased: " + (body.error || body.message || "HTTP " + code);
        result.className = "error";
        button.disabled = false;
        return;
      }
      // What was shown of the call goes too: the page now holds only what the erasure reports.
      for (const shown of main.querySelectorAll("section:not(#erase), .call-grid")) shown.remove();
      form.remove();
      const removed = Object.entries(body.removed || {}).map(([kind, count]) => el("li", {}, kind.replaceAll("_", " ") + ": " + count));
      result.replaceChildren(el("p", {}, "Erased at " + cv.when(body.erased_at) + " UTC. Removed:"), el("ul", { id: "removed" }, removed), el("p", {}, el("a", { href: "/ui/" }, "Back to the calls")));
      result.focus();
    });
    return section("erase", "Erase", form, result);
  }

  function follow(audio, list, offsets, source) {
    let playing = null;
    const turns = list.children;
    // Whether `turn` shows in the transcript's box (the list is its offsetParent: position relative).
    function inView(turn) {
      return turn.offsetTop >= list.scrollTop && turn.offsetTop + turn.offsetHeight <= list.scrollTop + list.clientHeight;
    }
    function seek(seconds) {
      audio.currentTime = seconds;
      audio.play().catch(() => {}); // a refused autoplay leaves the player where it was put
    }
    list.addEventListener("click", (event) => {
      const turn = event.target.closest("li.turn");
      const button = turn && turn.querySelector("button.offset");
      if (button && !event.target.closest("pre, details")) seek(Number(button.dataset.seconds));
    });
    audio.addEventListener("timeupdate", () => {
      const now = audio.currentTime + 0.05;
      let low = 0, high = offsets.length - 1, found = -1;
      while (low <= high) {
        const middle = (low + high) >> 1;
        if (offsets[middle][0] <= now) {
          found = middle;
          low = middle + 1;
        } else high = middle - 1;
      }
      const current = found >= 0 ? turns[offsets[found][1]] : null;
      if (current === playing) return;
      if (playing) {
        playing.classList.remove("playing");
        playing.removeAttribute("aria-current");
      }
      const following = !playing || inView(playing); // a listener scrolled elsewhere is left there
      playing = current;
      if (playing) {
        playing.classList.add("playing");
        playing.setAttribute("aria-current", "true");
        if (following && !inView(playing)) list.scrollTop = playing.offsetTop - list.clientHeight / 3;
      }
    });
    // The presigned URL lives minutes: a player that errs (expired link, paused long) asks again.
    let retries = 0;
    audio.addEventListener("error", () => {
      if (retries++ >= 2) {
        audio.after(el("p", { class: "error" }, "The recording could not be played."));
        return;
      }
      const at = audio.currentTime, wasPlaying = !audio.paused;
      audio.addEventListener("loadedmetadata", () => {
        audio.currentTime = at;
        if (wasPlaying) audio.play().catch(() => {});
      }, { once: true });
      audio.src = source;
    });
    audio.addEventListener("playing", () => {
      retries = 0;
    });
  }

  function render(session) {
    title.textContent = session.vendor + " call " + session.session_id;
    document.title = session.vendor + " call " + session.session_id + " · callvault";
    const player = recording(session);
    const spoken = transcript(session, Boolean(player.audio));
    const aside = el("div", { class: "side" }, section("facts", "Facts", facts(session)), metrics(session), cost(session), summary(session), vendorFields(session));
    status.remove();
    // The player stays in view above the transcript while it scrolls.
    const listening = el("div", { class: "main-column" }, el("div", { class: "player" }, player.node), spoken.node);
    main.append(el("div", { class: "call-grid" }, aside, listening), events(session), erasure(session));
    if (player.audio) follow(player.audio, spoken.list, spoken.offsets, player.source);
  }

  async function load() {
    const state = document.body.dataset.state;
    if (state === "not-found") return; // the server said so already
    if (state === "found") return render(JSON.parse(document.getElementById("session-data").textContent));
    if (!vendor || !sessionId) {
      title.textContent = "Call not found";
      status.textContent = "This address names no call.";
      return;
    }
    const { status: code, body } = await cv.api(cv.sessionPath(vendor, sessionId));
    if (code === 200) return render(body);
    if (code === 404) {
      title.textContent = "Call not found";
      document.title = "Call not found · callvault";
      status.replaceChildren("No call ", el("code", {}, sessionId), " from " + vendor + " is stored: it never arrived, or it was erased. ", el("a", { href: "/ui/" }, "All calls"));
      return;
    }
    status.textContent = "Could not read this call: " + (body.error || body.message || "HTTP " + code);
    status.className = "error";
  }

  load();
})();
