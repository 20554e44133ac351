// callvault's call browser: helpers shared by the list and a call's page. Plain JavaScript, no build step.
"use strict";

const cv = {
  // An element with attributes and children (strings become text: nothing is parsed as HTML).
  el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  },

  // `YYYY-MM-DD HH:MM:SS` in UTC, as the API's times are; "—" when unknown.
  when(iso) {
    if (!iso) return "—";
    const moment = new Date(iso);
    if (Number.isNaN(moment.getTime())) return iso;
    return moment.toISOString().slice(0, 19).replace("T", " ");
  },

  // Seconds as h:mm:ss or m:ss.
  clock(seconds) {
    if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
    const whole = Math.floor(seconds);
    const h = Math.floor(whole / 3600), m = Math.floor((whole % 3600) / 60), s = whole % 60;
    const mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(s).padStart(2, "0");
  },

  usd(cost) {
    return cv.money(cost && cost.total_usd);
  },

  // US dollars: to the hundredth of a cent under a dollar (calls cost cents), else to the cent.
  money(amount) {
    if (typeof amount !== "number" || !Number.isFinite(amount)) return "—";
    const sign = amount < 0 ? "-" : "";
    const size = Math.abs(amount);
    return sign + "$" + (size < 1 ? size.toFixed(4).replace(/0{1,2}$/, "") : size.toFixed(2));
  },

  // A length of time in words: "4.7 s", "1 min 12 s", "1 h 3 min"; "—" when unknown.
  spoken(seconds) {
    if (typeof seconds !== "number" || !Number.isFinite(seconds) || seconds < 0) return "—";
    if (seconds < 60) return (seconds < 10 ? Math.round(seconds * 10) / 10 : Math.round(seconds)) + " s";
    const whole = Math.round(seconds);
    const h = Math.floor(whole / 3600), m = Math.floor((whole % 3600) / 60), s = whole % 60;
    if (h) return h + " h" + (m ? " " + m + " min" : "");
    return m + " min" + (s ? " " + s + " s" : "");
  },

  // `text` cut to `chars` (an ellipsis marks the cut); "—" when empty.
  cut(text, chars) {
    if (!text) return "—";
    return text.length > chars ? text.slice(0, chars - 1) + "…" : text;
  },

  sessionPath(vendor, sessionId) {
    return "/sessions/" + encodeURIComponent(vendor) + "/" + encodeURIComponent(sessionId);
  },

  pagePath(vendor, sessionId) {
    return "/ui" + cv.sessionPath(vendor, sessionId);
  },

  // A read API answer: {status, body} with the JSON body parsed (or {error} when it is not JSON).
  async api(path, options) {
    let response;
    try {
      response = await fetch(path, Object.assign({ headers: { Accept: "application/json" } }, options || {}));
    } catch (failure) {
      return { status: 0, body: { error: "the API could not be reached: " + failure.message } };
    }
    let body;
    try {
      body = await response.json();
    } catch (_) {
      body = { error: "HTTP " + response.status };
    }
    return { status: response.status, body };
  },

  vendorList() {
    return (document.body.dataset.vendors || "").split(",").filter(Boolean);
  },
};
