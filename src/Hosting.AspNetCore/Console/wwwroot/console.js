// The OrleansLimiter console: polls /console/api/state every second (only the samples it has not seen)
// and draws each provider key's limits (used against capacity, ours and as the provider last reported it)
// and its wait queue with uPlot.
"use strict";
(function () {
  const historyMs = 15 * 60 * 1000;
  const priorities = ["Interactive", "Normal", "Batch"];
  const colours = ["#1565c0", "#ef6c00", "#2e7d32", "#6a1b9a", "#c62828"];
  const keys = new Map(); // "provider/key" -> { t, remaining: {limit: []}, depth: {priority: []}, charts, element }
  let since = null;

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function card(id) {
    const section = el("section", { class: "key", "data-key": id });
    section.append(el("h2", {}, id), el("div", { class: "error" }), el("div", { class: "figures" }),
      el("div", { class: "limits" }), el("div", { class: "queue" }), el("div", { class: "tenants" }));
    document.getElementById("keys").append(section);
    return { t: [], remaining: {}, reported: {}, capacity: {}, depth: {}, charts: {}, element: section };
  }

  function chart(state, name, title, series, height) {
    if (state.charts[name]) return state.charts[name];
    if (name !== "queue") {
      // The limits drawn changed (a limit appeared, or the provider's reports did): one chart replaces the other.
      for (const [other, plot] of Object.entries(state.charts)) {
        if (other !== "queue") { plot.destroy(); delete state.charts[other]; }
      }
    }
    const host = state.element.querySelector(name === "queue" ? ".queue" : ".limits");
    const width = Math.max(320, state.element.clientWidth - 32);
    const opts = {
      title, width, height,
      // At least the last minute on the time axis (a first sample alone would stretch it over years);
      // use against capacity on a fixed 0-100 scale.
      scales: Object.assign({ x: { time: true, range: (u, min, max) => (max == null ? [min, max] : [Math.min(min ?? max - 60, max - 60), max]) } },
        name === "queue" ? {} : { y: { range: [0, 100] } }),
      series: [{}].concat(series.map((s, i) => typeof s === "string"
        ? { label: s, stroke: colours[i % colours.length], width: 1.5, spanGaps: false }
        : { label: s.label, stroke: colours[s.colour % colours.length], width: 1.5, dash: [6, 4], spanGaps: true })),
      axes: [{}, { size: 60 }],
    };
    const plot = new uPlot(opts, [[]].concat(series.map(() => [])), host);
    state.charts[name] = plot;
    return plot;
  }

  function merge(state, k) {
    const s = k.series;
    state.t.push(...s.t.map(t => t / 1000));
    for (const [limit, values] of Object.entries(s.remaining)) {
      (state.remaining[limit] ||= new Array(state.t.length - s.t.length).fill(null)).push(...values);
    }
    for (const [limit, values] of Object.entries(s.reported || {})) {
      (state.reported[limit] ||= new Array(state.t.length - s.t.length).fill(null)).push(...values);
    }
    for (const p of priorities) (state.depth[p] ||= new Array(state.t.length - s.t.length).fill(null)).push(...(s.depth[p] || []));
    for (const l of k.limits) state.capacity[l.name] = l.capacity;
    // Keep 15 minutes.
    const oldest = (Date.now() - historyMs) / 1000;
    let drop = 0;
    while (drop < state.t.length && state.t[drop] < oldest) drop++;
    if (drop > 0) {
      state.t.splice(0, drop);
      for (const a of Object.values(state.remaining)) a.splice(0, drop);
      for (const a of Object.values(state.reported)) a.splice(0, drop);
      for (const a of Object.values(state.depth)) a.splice(0, drop);
    }
  }

  function render(state, k) {
    const section = state.element;
    section.querySelector(".error").textContent = k.error ? "unreadable: " + k.error : "";
    const figures = section.querySelector(".figures");
    figures.replaceChildren();
    for (const l of k.limits) {
      const f = el("span", { class: "figure" });
      const remaining = el("b", { "data-remaining": k.provider + "/" + k.key + "/" + l.name }, String(l.remaining));
      f.append(l.name + ": ", remaining, " of " + l.capacity + " left (" + l.algorithm + ", " + l.durationSeconds + " s)");
      figures.append(f);
    }
    for (const r of k.reports || []) {
      const f = el("span", { class: "figure reported" });
      const ago = Math.max(0, Math.round((Date.now() - r.reportedAt) / 1000));
      const value = el("b", { "data-reported": k.provider + "/" + k.key + "/" + r.limit }, r.remaining === null ? "—" : String(r.remaining));
      f.append("provider reports " + r.limit + ": ", value, " left, " + ago + " s ago" + (r.pausedUntil && r.pausedUntil > Date.now() ? " (429, paused)" : ""));
      figures.append(f);
    }
    const m = k.lastMinute;
    const granted = priorities.reduce((n, p) => n + (m.waitsGranted[p] || 0), 0);
    const timedOut = priorities.reduce((n, p) => n + (m.waitsTimedOut[p] || 0), 0);
    const spent = Object.entries(m.spent).map(([l, n]) => l + " " + n).join(", ");
    const decisions = el("span", { class: "figure", "data-decisions": k.provider + "/" + k.key, "data-granted": String(m.granted), "data-refused": String(m.refused) },
      "last minute: granted " + m.granted + ", refused " + m.refused + ", provider 429s " + m.providerRefusals + "; spent " + (spent || "—") + "; waits granted " + granted + ", timed out " + timedOut);
    figures.append(decisions);
    if (k.queue) {
      figures.append(el("span", { class: "figure", "data-depth": k.provider + "/" + k.key }, "queue: " + k.queue.depth + " waiting"));
      const p = k.queue.byPriority;
      figures.append(el("span", { class: "figure" }, "wait p50/p99: " + priorities.map(c => c + " " + p[c].waitP50Ms + "/" + p[c].waitP99Ms + " ms").join(", ")));
      const tenants = section.querySelector(".tenants");
      tenants.replaceChildren();
      if (k.queue.byTenant.length > 0) {
        const table = el("table");
        table.append(el("tr")).append(el("th", {}, "tenant"), el("th", {}, "class"), el("th", {}, "waiting"), el("th", {}, "points"), el("th", {}, "oldest (ms)"));
        for (const line of k.queue.byTenant) {
          const row = el("tr");
          row.append(el("td", {}, line.tenant ?? line.tenantSha256), el("td", {}, line.priority), el("td", {}, String(line.depth)), el("td", {}, String(line.points)), el("td", {}, String(line.oldestWaitMs)));
          table.append(row);
        }
        tenants.append(table);
      }
    }

    const limits = Object.keys(state.remaining);
    if (limits.length > 0) {
      const percent = (l, values) => values.map(r => (r === null || r === undefined || state.capacity[l] === undefined) ? null : 100 * (state.capacity[l] - r) / state.capacity[l]);
      // The provider's own view beside ours, dashed, for each limit it reported.
      const reported = limits.filter(l => (state.reported[l] || []).some(v => v !== null));
      const series = limits.concat(reported.map(l => ({ label: l + " (provider)", colour: limits.indexOf(l) })));
      const data = limits.map(l => percent(l, state.remaining[l])).concat(reported.map(l => percent(l, state.reported[l])));
      chart(state, "limits:" + limits.join(",") + "|" + reported.join(","), "used, % of capacity (dashed: as the provider reports)", series, 180).setData([state.t].concat(data));
    }
    chart(state, "queue", "waiting, by class", priorities, 120).setData([state.t].concat(priorities.map(p => state.depth[p])));
  }

  function renderCluster(state) {
    const cluster = document.getElementById("cluster");
    cluster.replaceChildren();
    if (!state.cluster) { cluster.textContent = "no sample yet"; return; }
    const c = state.cluster;
    const silos = el("span", { class: c.error ? "bad" : "good", "data-silos": String(c.silos.length) }, c.error ? "silos: " + c.error : c.silos.length + " silo(s): " + c.silos.join(", "));
    const redis = c.redis.connected === null ? el("span", {}, " · local mode (no Redis)")
      : el("span", { class: c.redis.connected ? "good" : "bad" }, c.redis.connected ? " · Redis up (" + c.redis.latencyMs + " ms)" : " · Redis unreachable");
    cluster.append(silos, redis);
  }

  async function poll() {
    try {
      const response = await fetch("/console/api/state" + (since === null ? "" : "?since=" + since), { cache: "no-store" });
      if (!response.ok) throw new Error("HTTP " + response.status);
      const state = await response.json();
      renderCluster(state);
      for (const k of state.keys) {
        const id = k.provider + "/" + k.key;
        let s = keys.get(id);
        if (!s) { s = card(id); keys.set(id, s); }
        merge(s, k);
        if (k.series.t.length > 0) since = Math.max(since ?? 0, k.series.t[k.series.t.length - 1]);
        render(s, k);
      }
      const updated = document.getElementById("updated");
      updated.textContent = "updated " + new Date(state.now).toLocaleTimeString();
      updated.setAttribute("data-now", String(state.now));
    } catch (e) {
      document.getElementById("updated").textContent = "not updated: " + e.message;
    } finally {
      setTimeout(poll, 1000);
    }
  }

  poll();
})();
