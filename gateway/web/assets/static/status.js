// Refreshes the meter table from the JSON API every two seconds, so the
// control room sees live values without reloading the page.
(function () {
  "use strict";
  function fmt(m, q, digits) {
    var v = m.values && m.values[q];
    return v ? v.value.toFixed(digits) : "—";
  }
  function ago(t) {
    if (!t) { return "never"; }
    var s = Math.max(0, Math.round((Date.now() - Date.parse(t)) / 1000));
    return s + "s ago";
  }
  function errorList(errs) {
    var kinds = Object.keys(errs || {}).sort();
    return kinds.length ? kinds.map(function (k) { return k + " " + errs[k]; }).join(", ") : "—";
  }
  // Times are shown in the site's zone (site.timezone), whatever the
  // browser's: the control room and the gateway's event texts agree.
  var zone = document.getElementById("zone");
  var tz = (zone && zone.getAttribute("data-tz")) || undefined;
  // fmtTime gives "15:04:05", or "01-02 15:04" withDate, as the server's
  // page does.
  function fmtTime(d, withDate) {
    var p = {};
    try {
      new Intl.DateTimeFormat("en-GB", { timeZone: tz, hourCycle: "h23", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", second: "2-digit" }).formatToParts(d)
        .forEach(function (x) { p[x.type] = x.value; });
    } catch (e) { // an unknown zone name: the API's own offset is still right
      return d.toISOString();
    }
    return withDate ? p.month + "-" + p.day + " " + p.hour + ":" + p.minute : p.hour + ":" + p.minute + ":" + p.second;
  }
  function set(row, cls, text) {
    var cell = row.querySelector("td." + cls);
    if (cell && cell.textContent !== text) { cell.textContent = text; }
  }
  function update(meters) {
    var online = 0;
    meters.forEach(function (m) {
      var row = document.getElementById("meter-" + m.id);
      if (!row) { return; }
      if (m.online) { online++; }
      row.className = m.online ? "online" : "offline";
      set(row, "state", m.online ? "online" : "offline");
      var relay = row.querySelector("td.relay");
      relay.className = "relay relay-" + m.relay.actual;
      relay.textContent = m.relay.actual;
      set(row, "import", m.import_kwh || "—");
      set(row, "power", fmt(m, "power", 0));
      set(row, "voltage", [fmt(m, "voltage_a", 1), fmt(m, "voltage_b", 1), fmt(m, "voltage_c", 1)].join(" / "));
      set(row, "current", [fmt(m, "current_a", 1), fmt(m, "current_b", 1), fmt(m, "current_c", 1)].join(" / "));
      set(row, "pf", fmt(m, "pf", 3));
      set(row, "freq", fmt(m, "frequency", 2));
      set(row, "seen", ago(m.stats.last_seen));
      var prow = document.getElementById("poll-" + m.id);
      if (prow) {
        prow.className = m.online ? "online" : "offline";
        set(prow, "requests", String(m.stats.requests));
        set(prow, "errors", errorList(m.stats.errors));
        set(prow, "p50", m.stats.latency_p50_ms.toFixed(1));
        set(prow, "p99", m.stats.latency_p99_ms.toFixed(1));
        set(prow, "seen", ago(m.stats.last_seen));
        set(prow, "lasterror", m.stats.last_error || "");
      }
    });
    document.getElementById("count-online").textContent = online;
    var off = document.getElementById("count-offline");
    off.textContent = meters.length - online;
    off.className = meters.length - online ? "bad" : "";
    var now = new Date();
    var upd = document.getElementById("updated");
    upd.textContent = fmtTime(now, false);
    upd.setAttribute("datetime", now.toISOString());
  }
  // The accounts table follows balances and states as they change.
  function updateAccounts(accounts) {
    accounts.forEach(function (a) {
      var row = document.getElementById("account-" + a.tenant);
      if (!row) { return; }
      row.className = "state-" + a.state;
      var cells = row.querySelectorAll("td");
      cells[2].textContent = a.state;
      cells[3].textContent = a.balance;
      cells[4].textContent = a.accrued;
      cells[5].textContent = a.pending_cutoff ? fmtTime(new Date(a.pending_cutoff), true) : "";
      cells[6].textContent = a.protected || "";
    });
  }
  function pollAccounts() {
    if (!document.getElementById("accounts")) { return; }
    fetch("/api/v1/accounts", { cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(updateAccounts)
      .catch(function () {})
      .finally(function () { setTimeout(pollAccounts, 5000); });
  }
  setTimeout(pollAccounts, 5000);

  function poll() {
    fetch("/api/v1/meters", { cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(update)
      .catch(function () { /* the gateway restarts or the link drops: try again */ })
      .finally(function () { setTimeout(poll, 2000); });
  }
  setTimeout(poll, 2000);

  // Events arrive as server-sent events, newest on top; the stream starts
  // after the newest event the page was rendered with.
  var events = document.getElementById("events");
  if (events && window.EventSource) {
    var body = events.querySelector("tbody");
    var src = new EventSource("/api/v1/events?after=" + (events.getAttribute("data-last") || "0"));
    src.onmessage = function (msg) {
      var e = JSON.parse(msg.data);
      var row = document.createElement("tr");
      var t = new Date(e.time);
      [fmtTime(t, false), e.kind, e.meter || "", e.tenant || "", e.text].forEach(function (v, i) {
        var td = document.createElement("td");
        if (i === 1) { td.className = "kind"; }
        td.textContent = v;
        row.appendChild(td);
      });
      body.insertBefore(row, body.firstChild);
      while (body.rows.length > 50) { body.deleteRow(body.rows.length - 1); }
    };
  }
})();
