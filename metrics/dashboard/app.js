// tailguard dashboard: polls stats?window=10s every second, keeps the last
// five minutes per route in a ring buffer, and draws the selected route's
// charts (uPlot) plus a table of every route's current numbers, the
// listener's refusals before routing and a table of upstream endpoints.
// No framework, no build step; served as is from the binary.
(function () {
  "use strict";

  const POLL_MS = 1000;
  const HISTORY = 300; // polls kept per route: 5 minutes at one a second
  const TIMEOUT_MS = 5000; // a poll slower than this counts as failed
  const FLOOR_MS = 0.001; // the log-scale chart cannot draw 0; 1 µs stands in
  const STATS_URL = "stats?window=10s"; // relative: works under a path prefix

  const token = new URLSearchParams(location.search).get("token");
  const $ = (id) => document.getElementById(id);

  // Ring is a fixed-capacity ring buffer of rows (arrays); column(k) reads
  // field k of every row, oldest first, as uPlot wants its data.
  class Ring {
    constructor(cap) {
      this.cap = cap;
      this.rows = new Array(cap);
      this.start = 0;
      this.len = 0;
    }
    push(row) {
      this.rows[(this.start + this.len) % this.cap] = row;
      if (this.len < this.cap) this.len++;
      else this.start = (this.start + 1) % this.cap;
    }
    column(k) {
      const out = new Array(this.len);
      for (let i = 0; i < this.len; i++) out[i] = this.rows[(this.start + i) % this.cap][k];
      return out;
    }
  }

  // Row fields kept per poll. Index 0 is the time (seconds, for uPlot).
  const F = { t: 0, q50: 1, q99: 2, s50: 3, s99: 4, rps: 5, err: 6, shed: 7 };
  const NFIELDS = 8;

  const state = {
    history: new Map(), // route name -> Ring
    routes: [], // the last poll's routes, in the server's order
    listener: null, // the last poll's listener figures
    upstreams: [], // the last poll's upstreams, endpoints and all
    selected: routeFromHash(), // "" until the first poll picks the first route
    lastOK: 0, // Date.now() of the last good poll
  };

  // routeFromHash reads the selected route from "#route=NAME", kept there so
  // a reload shows the same route.
  function routeFromHash() {
    try {
      return decodeURIComponent((location.hash.match(/route=([^&]*)/) || [])[1] || "");
    } catch (e) {
      return ""; // a malformed hash: start with the first route
    }
  }

  // ---- reading the JSON (every field may be missing) ----

  function num(v) {
    return typeof v === "number" && isFinite(v) ? v : null;
  }
  function pick(o, ...path) {
    for (const k of path) {
      if (o == null || typeof o !== "object") return undefined;
      o = o[k];
    }
    return o;
  }
  function lat(r, kind, q) {
    return num(pick(r, "latency_ms", kind, q));
  }
  // derived returns the rates the page shows for one route.
  function derived(r) {
    const st = r.status || {};
    const byClass = ["2xx", "3xx", "4xx", "5xx"].reduce((a, k) => a + (num(st[k]) || 0), 0);
    // requests should equal the sum of the classes; take the larger, so a
    // share never exceeds 100% if a server counts them differently.
    const total = Math.max(num(r.requests) || 0, byClass);
    const e5 = num(st["5xx"]) || 0;
    const shed = num(r.shed) || 0;
    const rps = num(r.rps);
    return {
      rps: rps,
      total: total,
      e5: e5,
      shed: shed,
      errPct: total > 0 ? (100 * e5) / total : null,
      // Shed requests are answered (503) by tailguard, so they are counted
      // in requests; the share is capped in case a server counts otherwise.
      shedPct: total > 0 ? Math.min(100, (100 * shed) / total) : shed > 0 ? 100 : null,
      shedPerS: total > 0 && rps != null ? (rps * shed) / total : null,
    };
  }

  // ---- formatting ----

  function fmtMs(v) {
    if (v == null) return "–";
    if (v === 0) return "0";
    if (v < 0.001) return "<0.001";
    if (v < 1) return String(+v.toPrecision(2)); // 0.013, 0.13
    if (v < 10) return v.toFixed(2);
    if (v < 100) return v.toFixed(1);
    return Math.round(v).toString();
  }
  function fmtRate(v) {
    if (v == null) return "–";
    return v < 10 ? v.toFixed(1) : Math.round(v).toString();
  }
  function fmtPct(v) {
    if (v == null) return "–";
    if (v === 0) return "0%";
    const a = Math.abs(v);
    if (a < 0.1) return v.toFixed(2) + "%";
    if (a < 10) return v.toFixed(1) + "%";
    return Math.round(v) + "%";
  }
  // fmtBudget shows an error budget given as a fraction (negative when
  // overspent).
  function fmtBudget(v) {
    return v == null ? "–" : fmtPct(100 * v);
  }
  // fmtSLI shows an SLI given as a fraction; SLIs live near 100%, so they
  // keep two decimals (99.93%, not 100%).
  function fmtSLI(v) {
    return v == null ? "–" : (100 * v).toFixed(2) + "%";
  }
  function fmtBurn(v) {
    return v == null ? "–" : (v < 10 ? v.toFixed(2) : v.toFixed(1)) + "×";
  }
  function fmtDuration(s) {
    if (s == null) return "–";
    s = Math.floor(s);
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    if (d > 0) return d + "d " + h + "h";
    if (h > 0) return h + "h " + String(m).padStart(2, "0") + "m";
    if (m > 0) return m + "m " + String(s % 60).padStart(2, "0") + "s";
    return s + "s";
  }
  // breakerClass maps a breaker state to a colour class: closed is fine,
  // half-open is probing, open is rejecting.
  function breakerClass(b) {
    const s = String(b || "").toLowerCase().replace(/[-_ ]/g, "");
    if (s === "closed") return "ok";
    if (s === "halfopen") return "warn";
    if (s === "open") return "bad";
    return "";
  }
  // burnClass flags burn rates: above 1 the budget runs out before the
  // window ends; 14.4 is the SRE workbook's fast-burn paging threshold.
  function burnClass(v) {
    if (v == null) return "";
    return v >= 14.4 ? "bad" : v > 1 ? "warn" : "ok";
  }
  function budgetClass(v) {
    if (v == null) return "";
    return v <= 0 ? "bad" : v < 0.25 ? "warn" : "ok";
  }

  // ---- charts ----

  // Legend values: under the cursor while hovering, else the latest poll.
  function legend(fmt) {
    return (u, v, si, idx) => fmt(idx == null ? last(u.data[si]) : v);
  }
  function last(a) {
    for (let i = a.length - 1; i >= 0; i--) if (a[i] != null) return a[i];
    return null;
  }
  const timeSeries = { value: legend((t) => (t == null ? "–" : new Date(t * 1000).toLocaleTimeString())) };
  const timeAxis = { incrs: [1, 5, 10, 15, 30, 60, 120, 300, 600] }; // whole seconds
  const msLegend = legend((v) => (v == null ? "–" : v <= FLOOR_MS ? "≈0" : fmtMs(v)));
  // decades returns the powers of ten in [min, max]: the log axis's ticks
  // (uPlot's default adds 2..9 of each decade, too dense to read).
  function decades(u, axisIdx, min, max) {
    const out = [];
    for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) {
      const v = Math.pow(10, e);
      if (v >= min * 0.999 && v <= max * 1.001) out.push(v);
    }
    return out;
  }
  const CHART_H = 180;

  const latencyChart = new uPlot(
    {
      width: 600,
      height: CHART_H,
      cursor: { sync: { key: "tailguard" } },
      scales: { x: { time: true }, y: { distr: 3, log: 10 } },
      axes: [
        timeAxis,
        {
          size: 50,
          splits: decades, // label and grid the decades only
          values: (u, vals) => vals.map((v) => (v == null ? "" : String(+v.toPrecision(3)))),
        },
      ],
      series: [
        timeSeries,
        { label: "queue p50", stroke: "#60a5fa", width: 1.5, dash: [6, 4], value: msLegend },
        { label: "queue p99", stroke: "#1d4ed8", width: 2, value: msLegend },
        { label: "service p50", stroke: "#fb923c", width: 1.5, dash: [6, 4], value: msLegend },
        { label: "service p99", stroke: "#c2410c", width: 2, value: msLegend },
      ],
    },
    [[], [], [], [], []],
    $("chart-latency")
  );

  const ratesChart = new uPlot(
    {
      width: 600,
      height: CHART_H,
      cursor: { sync: { key: "tailguard" } },
      scales: {
        x: { time: true },
        rps: { range: (u, min, max) => [0, max > 0 ? max * 1.15 : 1] },
        pct: { range: (u, min, max) => [0, Math.min(100, Math.max(1, max * 1.15))] },
      },
      axes: [
        timeAxis,
        { scale: "rps", values: (u, vals) => vals.map(fmtRate), size: 50 },
        { scale: "pct", side: 1, grid: { show: false }, values: (u, vals) => vals.map((v) => +v.toPrecision(3) + "%"), size: 50 },
      ],
      series: [
        timeSeries,
        { label: "req/s", scale: "rps", stroke: "#334155", fill: "rgba(51,65,85,0.08)", width: 2, value: legend(fmtRate) },
        { label: "5xx %", scale: "pct", stroke: "#dc2626", width: 2, value: legend(fmtPct) },
        { label: "shed %", scale: "pct", stroke: "#9333ea", width: 2, value: legend(fmtPct) },
      ],
    },
    [[], [], [], []],
    $("chart-rates")
  );

  function sizeCharts() {
    for (const c of [latencyChart, ratesChart]) {
      const w = c.root.parentElement.clientWidth;
      if (w > 0 && w !== c.width) c.setSize({ width: w, height: CHART_H });
    }
  }
  window.addEventListener("resize", () => requestAnimationFrame(sizeCharts));

  function drawCharts() {
    const ring = state.history.get(state.selected);
    if (!ring) return;
    const t = ring.column(F.t);
    const floor = (k) => ring.column(k).map((v) => (v == null ? null : Math.max(v, FLOOR_MS)));
    latencyChart.setData([t, floor(F.q50), floor(F.q99), floor(F.s50), floor(F.s99)]);
    ratesChart.setData([t, ring.column(F.rps), ring.column(F.err), ring.column(F.shed)]);
  }

  // ---- DOM helpers ----

  function h(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const k of kids) e.append(k);
    return e;
  }

  function select(name) {
    if (name === state.selected) return;
    state.selected = name;
    history.replaceState(null, "", location.pathname + location.search + "#route=" + encodeURIComponent(name));
    render();
  }

  // ---- rendering ----

  // sync makes parent's children one element per route, in order, reusing
  // the elements of the last poll: a click or keyboard focus in progress
  // survives the once-a-second update.
  function sync(parent, make, update) {
    const old = new Map([...parent.children].map((e) => [e.dataset.route, e]));
    state.routes.forEach((r, i) => {
      let e = old.get(r.name);
      old.delete(r.name);
      if (!e) {
        e = make(r.name);
        e.dataset.route = r.name;
      }
      update(e, r);
      if (parent.children[i] !== e) parent.insertBefore(e, parent.children[i] || null);
    });
    for (const e of old.values()) e.remove();
  }

  function renderTabs() {
    sync(
      $("routes"),
      (name) => h("button", { type: "button", class: "tab", onclick: () => select(name) }, h("span", { class: "dot" }), name),
      (e, r) => {
        const sel = r.name === state.selected;
        e.className = sel ? "tab sel" : "tab";
        e.setAttribute("aria-pressed", String(sel));
        e.firstChild.className = "dot " + breakerClass(r.breaker);
        e.firstChild.title = "breaker " + (r.breaker || "–");
      }
    );
  }

  function card(label, value, sub, cls) {
    const v = h("div", { class: value.length > 11 ? "value long" : "value" }, value); // long: smaller, never cut
    return h("div", { class: "card " + (cls || "") }, h("div", { class: "label" }, label), v, h("div", { class: "sub" }, sub || "\u00a0"));
  }

  function renderCards(r) {
    const box = $("cards");
    if (!r) {
      box.replaceChildren(h("div", { class: "empty" }, "No routes yet."));
      return;
    }
    const d = derived(r);
    const hs = r.hedges || {};
    const sent = num(hs.sent), won = num(hs.won);
    const slo = r.slo && typeof r.slo === "object" ? r.slo : null;
    const budget = slo ? num(slo.error_budget_remaining) : null;
    const b5 = slo ? num(slo.burn_rate_5m) : null, b1h = slo ? num(slo.burn_rate_1h) : null;
    const limit = num(r.concurrency_limit);
    const cards = [
      card("requests/s", fmtRate(d.rps), (d.total != null ? d.total : "–") + " in window"),
      card("queue p50 / p99", fmtMs(lat(r, "queue", "p50")) + " / " + fmtMs(lat(r, "queue", "p99")), "ms queued"),
      card("service p50 / p99", fmtMs(lat(r, "service", "p50")) + " / " + fmtMs(lat(r, "service", "p99")), "ms in the service"),
      card("5xx", fmtPct(d.errPct), d.e5 + " responses", d.errPct > 1 ? "bad" : ""),
      card("shed", fmtPct(d.shedPct), d.shed + " (" + fmtRate(d.shedPerS) + "/s)", d.shed > 0 ? "warn" : ""),
      card("breaker", r.breaker || "–", (num(r.breaker_rejects) || 0) + " rejected" + (limit != null ? " · limit " + limit : ""), breakerClass(r.breaker)),
      card("retries · timeouts", (num(r.retries) || 0) + " · " + (num(r.timeouts) || 0), "in window"),
      card("hedges won / sent", (won != null ? won : "–") + " / " + (sent != null ? sent : "–"), sent > 0 && won != null ? fmtPct((100 * won) / sent) + " won" : ""),
    ];
    if (slo) {
      const c = card("SLO error budget left · burn rate 5m / 1h", "", "", "wide");
      c.children[1].append(
        h("span", { class: budgetClass(budget) }, fmtBudget(budget)),
        h("span", { class: "burn" }, " · ", h("span", { class: burnClass(b5) }, fmtBurn(b5)), " / ", h("span", { class: burnClass(b1h) }, fmtBurn(b1h)))
      );
      c.children[2].textContent = "SLIs: latency " + fmtSLI(num(slo.latency_sli)) + " · availability " + fmtSLI(num(slo.availability_sli));
      cards.push(c);
    } else {
      cards.push(card("SLO error budget", "–", "no SLO on this route", "wide"));
    }
    box.replaceChildren(...cards);
  }

  const COLS = ["route", "rps", "q50", "q99", "s50", "s99", "r99", "err", "shed", "breaker", "budget"];

  function renderTable() {
    sync(
      $("table").tBodies[0],
      (name) => h("tr", { onclick: () => select(name) }, ...COLS.map((c) => h("td", { "data-col": c }))),
      (tr, r) => {
        const d = derived(r);
        const budget = num(pick(r, "slo", "error_budget_remaining"));
        const cells = {
          route: [r.name, ""],
          rps: [fmtRate(d.rps), ""],
          q50: [fmtMs(lat(r, "queue", "p50")), ""],
          q99: [fmtMs(lat(r, "queue", "p99")), ""],
          s50: [fmtMs(lat(r, "service", "p50")), ""],
          s99: [fmtMs(lat(r, "service", "p99")), ""],
          r99: [fmtMs(lat(r, "response", "p99")), ""],
          err: [fmtPct(d.errPct), d.errPct > 1 ? "bad" : ""],
          shed: [d.shed ? d.shed + " (" + fmtPct(d.shedPct) + ")" : "0", d.shed > 0 ? "warn" : ""],
          breaker: [r.breaker || "–", breakerClass(r.breaker)],
          budget: [r.slo ? fmtBudget(budget) : "no SLO", budgetClass(budget)],
        };
        tr.className = r.name === state.selected ? "sel" : "";
        COLS.forEach((c, i) => {
          const td = tr.cells[i];
          if (td.textContent !== cells[c][0]) td.textContent = cells[c][0];
          td.className = cells[c][1];
        });
      }
    );
  }

  // renderListener shows the open client connections and the requests
  // refused before a route was chosen (since start), by cause.
  function renderListener() {
    const l = state.listener;
    const box = $("listener");
    if (!l || typeof l !== "object") {
      box.replaceChildren();
      return;
    }
    const errs = l.errors && typeof l.errors === "object" ? l.errors : {};
    const refused = Object.keys(errs)
      .filter((c) => num(errs[c]) > 0)
      .sort()
      .map((c) => c + " " + errs[c]);
    box.replaceChildren(
      "Listener: " + (num(l.connections) != null ? l.connections : "–") + " client connections open · refused before routing: ",
      refused.length ? h("span", { class: "bad" }, refused.join(" · ")) : "none"
    );
  }

  // endpointState is an endpoint's state cell: out by outlier detection,
  // failing health checks, or serving.
  function endpointState(e) {
    if (e.ejected) return ["ejected", "bad"];
    if (e.healthy === false) return ["unhealthy", "bad"];
    return ["serving", "ok"];
  }

  // renderEndpoints draws one row an endpoint, upstream by upstream.
  function renderEndpoints() {
    const rows = [];
    for (const u of state.upstreams) {
      for (const e of Array.isArray(u.endpoints) ? u.endpoints : []) {
        if (!e || typeof e !== "object") continue;
        const [st, stCls] = endpointState(e);
        const req = num(e.requests) || 0, fail = num(e.failures) || 0;
        const failPct = req > 0 ? (100 * fail) / req : null;
        const cells = [
          [String(u.name), ""],
          [u.breaker || "–", breakerClass(u.breaker)],
          [String(e.address), ""],
          [st, stCls],
          [String(num(e.outstanding) != null ? e.outstanding : "–"), ""],
          [fmtMs(num(e.latency_ewma_ms)) + " ms", ""],
          [String(req), ""],
          [fail + (failPct != null ? " (" + fmtPct(failPct) + ")" : ""), failPct > 1 ? "bad" : ""],
        ];
        const tr = h("tr", { "data-endpoint": u.name + "/" + e.address });
        for (const [text, cls] of cells) tr.append(h("td", cls ? { class: cls } : {}, text));
        rows.push(tr);
      }
    }
    $("endpoints").tBodies[0].replaceChildren(...rows);
    $("endpoints").hidden = rows.length === 0;
  }

  function render() {
    if (!state.routes.some((r) => r.name === state.selected) && state.routes.length > 0) {
      state.selected = state.routes[0].name;
    }
    renderTabs();
    renderCards(state.routes.find((r) => r.name === state.selected));
    renderTable();
    renderListener();
    renderEndpoints();
    sizeCharts();
    drawCharts();
  }

  // ---- polling ----

  // record adds one poll to every route's history; a failed poll (stats
  // null) adds a gap, so an outage is visible in the charts.
  function record(stats, t) {
    if (stats) {
      const seen = new Set();
      for (const r of state.routes) {
        seen.add(r.name);
        if (!state.history.has(r.name)) state.history.set(r.name, new Ring(HISTORY));
        const d = derived(r);
        const row = new Array(NFIELDS);
        row[F.t] = t;
        row[F.q50] = lat(r, "queue", "p50");
        row[F.q99] = lat(r, "queue", "p99");
        row[F.s50] = lat(r, "service", "p50");
        row[F.s99] = lat(r, "service", "p99");
        row[F.rps] = d.rps;
        row[F.err] = d.errPct == null ? 0 : d.errPct;
        row[F.shed] = d.shedPct == null ? 0 : d.shedPct;
        state.history.get(r.name).push(row);
      }
      for (const name of state.history.keys()) if (!seen.has(name)) state.history.delete(name);
    } else {
      for (const ring of state.history.values()) {
        const row = new Array(NFIELDS).fill(null);
        row[F.t] = t;
        ring.push(row);
      }
    }
  }

  class HTTPError extends Error {
    constructor(status, body) {
      super("HTTP " + status);
      this.status = status;
      this.body = body;
    }
  }

  async function fetchStats() {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
    try {
      const headers = { Accept: "application/json" };
      if (token) headers.Authorization = "Bearer " + token;
      const res = await fetch(STATS_URL, { headers, cache: "no-store", signal: ctl.signal });
      if (!res.ok) throw new HTTPError(res.status, (await res.text()).slice(0, 200));
      try {
        return await res.json();
      } catch (e) {
        throw new Error("stats did not return valid JSON");
      }
    } finally {
      clearTimeout(timer);
    }
  }

  function banner(msg) {
    const b = $("banner");
    b.hidden = !msg;
    b.textContent = msg || "";
  }

  function describe(err) {
    if (err instanceof HTTPError) {
      if (err.status === 401 || err.status === 403) {
        return token
          ? "The admin server rejected the token (HTTP " + err.status + "). Check the ?token= in this page's address against admin_token."
          : "The admin server requires a token (HTTP " + err.status + "). Open this page as …/?token=<admin_token>.";
      }
      return "stats failed: HTTP " + err.status + (err.body ? ": " + err.body.trim() : "");
    }
    if (err && err.name === "AbortError") return "stats did not answer within " + TIMEOUT_MS / 1000 + " s.";
    return "Cannot reach stats: " + (err && err.message ? err.message : err) + ".";
  }

  function showMeta(stats) {
    const n = state.routes.length;
    $("meta").textContent =
      "uptime " + fmtDuration(num(stats.uptime_s)) + " · window " + (stats.window || "–") + " · " + n + (n === 1 ? " route" : " routes");
  }

  async function poll() {
    const started = performance.now();
    const t = Date.now() / 1000;
    let stats = null;
    try {
      stats = await fetchStats();
    } catch (err) {
      const since = state.lastOK ? " Last data " + fmtDuration((Date.now() - state.lastOK) / 1000) + " ago; retrying every second." : " Retrying every second.";
      banner(describe(err) + since);
      $("live").className = "live stale";
      record(null, t);
      drawCharts();
    }
    if (stats) {
      try {
        state.routes = (Array.isArray(stats.routes) ? stats.routes : []).filter((r) => r && typeof r.name === "string");
        state.listener = stats.listener;
        state.upstreams = (Array.isArray(stats.upstreams) ? stats.upstreams : []).filter((u) => u && typeof u.name === "string");
        state.lastOK = Date.now();
        record(stats, t);
        showMeta(stats);
        render();
        banner("");
        $("live").className = "live ok";
        $("live").textContent = "live · " + new Date().toLocaleTimeString();
      } catch (err) {
        // A bug in this page, not in the server: say so, loudly.
        console.error("dashboard render failed", err);
        banner("Dashboard error: " + err.message);
      }
    }
    setTimeout(poll, Math.max(0, POLL_MS - (performance.now() - started)));
  }

  sizeCharts();
  poll();
})();
