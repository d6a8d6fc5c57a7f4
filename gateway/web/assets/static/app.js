// The control room's pages, made live: server-sent events for meters,
// events and alarms; the charts (uPlot); the forms that change something,
// sent as JSON with the session's CSRF token. Every page is complete
// without this script; it only adds to it. No library besides uPlot, and
// nothing loaded from outside the gateway.
(function () {
  "use strict";
  var body = document.body;
  var page = body.getAttribute("data-page");
  var csrf = body.getAttribute("data-csrf") || "";
  var tz = body.getAttribute("data-tz") || undefined;
  // The page's language's catalog, from /words/<lang>.js (loaded before
  // this script).
  var W = window.mallgridWords || {};

  // t returns message id with its {name} placeholders filled from args.
  function t(id, args) {
    var s = W[id] || id;
    Object.keys(args || {}).forEach(function (k) { s = s.split("{" + k + "}").join(String(args[k])); });
    return s;
  }
  function word(prefix, code) { return W[prefix + code] || code; }
  function $(sel, root) { return (root || document).querySelector(sel); }
  function $all(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }
  function text(el, s) { if (el && el.textContent !== s) { el.textContent = s; } }

  // Times are the site's (site.timezone) whatever the browser's zone, as
  // "2006-01-02 15:04:05", the form the server writes.
  var partsFmt = null;
  try {
    partsFmt = new Intl.DateTimeFormat("en-GB", { timeZone: tz, hourCycle: "h23", year: "numeric", month: "2-digit",
      day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
  } catch (e) { partsFmt = null; }
  function parts(d) {
    var p = {};
    if (partsFmt) { partsFmt.formatToParts(d).forEach(function (x) { p[x.type] = x.value; }); }
    return p;
  }
  function fmtTime(d) {
    if (!partsFmt) { return d.toISOString(); }
    var p = parts(d);
    return p.year + "-" + p.month + "-" + p.day + " " + p.hour + ":" + p.minute + ":" + p.second;
  }
  // siteOffset is the site zone's offset at d as "+08:00".
  function siteOffset(d) {
    try {
      var name = new Intl.DateTimeFormat("en-US", { timeZone: tz, timeZoneName: "longOffset" })
        .formatToParts(d).filter(function (x) { return x.type === "timeZoneName"; })[0].value;
      var m = /GMT([+-]\d\d:\d\d)/.exec(name);
      return m ? m[1] : "+00:00";
    } catch (e) { return "+00:00"; }
  }
  // rfc3339 reads a datetime-local value as a site time: "" stays "".
  function rfc3339(local) {
    if (!local) { return ""; }
    var s = local.length === 16 ? local + ":00" : local;
    return s + siteOffset(new Date(s + "Z"));
  }
  function ago(iso) {
    if (!iso) { return W["ago.never"] || "never"; }
    var s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (s < 60) { return t("ago.seconds", { n: s }); }
    if (s < 3600) { return t("ago.minutes", { n: Math.floor(s / 60) }); }
    if (s < 86400) { return t("ago.hours", { n: Math.floor(s / 3600) }); }
    return t("ago.days", { n: Math.floor(s / 86400) });
  }
  function value(m, q, digits) {
    var v = m.values && m.values[q];
    return v ? v.value.toFixed(digits) : "—";
  }
  // kwh groups a decimal kWh string's thousands: "1234.567" → "1,234.567".
  function kwh(s) {
    if (!s) { return "—"; }
    var i = s.indexOf("."), whole = i < 0 ? s : s.slice(0, i), frac = i < 0 ? "" : s.slice(i);
    return whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",") + frac;
  }

  // ---- An event's sentence in the page's language ------------------
  // eventText tells an event (or an alarm: its raising event) from its
  // kind and args by the rules of gateway/i18n EventText, which the pages
  // use: the message event_text.KIND (.FORM when args.form names one),
  // each {name} written by its name's convention; the stored English text
  // when an arg is missing or not of its kind (an event older than args).
  function grp(digits) { return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ","); }
  function dur(n) {
    var h = Math.floor(n / 3600), m = Math.floor(n / 60) % 60, sec = n % 60;
    if (h > 0) { return t("duration.hours", { n: grp(String(h)) }) + (m > 0 ? " " + t("duration.minutes", { n: m }) : ""); }
    if (m > 0) { return t("duration.minutes", { n: m }) + (sec > 0 ? " " + t("duration.seconds", { n: sec }) : ""); }
    return t("duration.seconds", { n: sec });
  }
  var wordArgs = { state: "state.", hold: "hold.", relay: "relay.", channel: "channel.", role: "role.",
    meter_role: "meter_role.", why: "relay.why.", kind: "event." };
  function argText(name, v) {
    var m;
    if (name === "at" || /_at$/.test(name)) {
      var d = new Date(v);
      return /^\d{4}-\d\d-\d\dT/.test(v) && !isNaN(d) ? fmtTime(d) : null;
    }
    if (name === "amount" || name === "balance" || /_yuan$/.test(name)) {
      // To the fen, half away from zero, in integers (BigInt): as Go's Money.
      if (!(m = /^(-?)(\d+)(?:\.(\d{1,6}))?$/.exec(v))) { return null; }
      var fen = (BigInt(m[2] + ((m[3] || "") + "000000").slice(0, 6)) + 5000n) / 10000n;
      var c = String(fen % 100n);
      return (m[1] && fen ? "-" : "") + "¥" + grp(String(fen / 100n)) + "." + (c.length < 2 ? "0" + c : c);
    }
    if (name === "kwh" || /_kwh$/.test(name)) {
      if (!(m = /^(-?)(\d+)(?:\.(\d{1,3}))?$/.exec(v))) { return null; }
      var f = ((m[3] || "") + "000").slice(0, 3);
      return (m[1] && /[1-9]/.test(m[2] + f) ? "-" : "") + grp(m[2].replace(/^0+(?=\d)/, "")) + "." + f;
    }
    if (/_s$/.test(name)) { return /^-?\d+$/.test(v) ? (Number(v) < 0 ? "-" + dur(-Number(v)) : dur(Number(v))) : null; }
    if (/_ms$/.test(name)) { return /^-?\d+$/.test(v) ? (Number(v) < 0 ? "-" : "") + grp(String(Math.abs(Number(v)))) : null; }
    return Object.prototype.hasOwnProperty.call(wordArgs, name) ? word(wordArgs[name], v) : v;
  }
  function eventText(e) {
    var a = e.args, s = a && W["event_text." + e.kind + (a.form ? "." + a.form : "")], ok = !!s;
    s = ok && s.replace(/\{([a-z_][a-z0-9_]*)\}/g, function (ph, name) {
      var v = Object.prototype.hasOwnProperty.call(a, name) ? argText(name, a[name]) : null;
      if (v === null) { ok = false; }
      return v === null ? ph : v;
    });
    return ok ? s : e.text;
  }

  function toast(msg, bad) {
    var el = $("#toast");
    if (!el) { return; }
    el.textContent = msg;
    el.className = bad ? "bad" : "";
    el.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { el.hidden = true; }, 6000);
  }

  // coalesce runs fn at most once per wait: a bus going down sends a
  // hundred events in a second, which must not become a hundred fetches.
  function coalesce(fn, wait) {
    var timer = null, again = false;
    return function () {
      if (timer) { again = true; return; }
      fn();
      timer = setTimeout(function () { timer = null; if (again) { again = false; fn(); } }, wait);
    };
  }

  // api sends a change as JSON with the CSRF token; it resolves with the
  // answer's JSON, or rejects with the gateway's reason.
  function api(method, url, data) {
    return fetch(url, {
      method: method, credentials: "same-origin", cache: "no-store",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: data === undefined ? undefined : JSON.stringify(data)
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) {
        if (!r.ok) { return Promise.reject(j.error || String(r.status)); }
        return j;
      });
    });
  }
  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", cache: "no-store" }).then(function (r) {
      return r.ok ? r.json().then(function (j) { return { json: j, res: r }; }) : Promise.reject(r.status);
    });
  }
  function problem(form, msg) {
    var p = $(".problem", form);
    if (p) { p.textContent = t("form.failed", { reason: msg }); p.hidden = false; } else { toast(t("form.failed", { reason: msg }), true); }
  }

  // ---- Alarms: the badge, the sound, acknowledgements ----------------
  var refreshBadge = coalesce(function () {
    var badge = $("#alarm-count");
    if (!badge) { return; }
    getJSON("/api/v1/alarms?state=active&limit=1000").then(function (r) {
      badge.textContent = r.json.length;
      badge.hidden = r.json.length === 0;
    }).catch(function () {});
  }, 1000);
  var soundBox = $("#alarm-sound");
  if (soundBox) {
    soundBox.checked = localStorage.getItem("mallgrid.sound") === "1";
    soundBox.addEventListener("change", function () { localStorage.setItem("mallgrid.sound", soundBox.checked ? "1" : "0"); });
  }
  // A browser lets a page sound only after a click or key on it: the one
  // audio context is made (or resumed) on the first, and until then an
  // alarm that should sound says so instead.
  var audio = null;
  function unlockAudio() {
    if (!window.AudioContext) { return; }
    try {
      if (!audio) { audio = new AudioContext(); }
      if (audio.state === "suspended") { audio.resume(); }
    } catch (e) { audio = null; }
  }
  document.addEventListener("click", unlockAudio);
  document.addEventListener("keydown", unlockAudio);
  var beep = coalesce(function () {
    if (localStorage.getItem("mallgrid.sound") !== "1") { return; }
    if (!audio || audio.state !== "running") { toast(t("dash.sound_blocked"), true); return; }
    try {
      var o = audio.createOscillator(), g = audio.createGain();
      o.frequency.value = 880; g.gain.value = 0.2;
      o.connect(g); g.connect(audio.destination); o.start();
      setTimeout(function () { o.stop(); }, 400);
    } catch (e) { /* no audio device: the banner still shows */ }
  }, 2000);
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!form.classList.contains("resend")) { return; }
    ev.preventDefault();
    api("POST", "/api/v1/notifications/" + encodeURIComponent(form.getAttribute("data-delivery")) + "/resend", {}).then(function (n) {
      var row = form.closest("tr");
      if (row) {
        row.className = "notify-" + n.state;
        text($("td.state", row), word("notify.state.", n.state));
      }
      form.remove();
    }).catch(function (msg) { problem(form, msg); });
  });
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!form.classList.contains("ack")) { return; }
    ev.preventDefault();
    var id = form.getAttribute("data-alarm");
    api("POST", "/api/v1/alarms/" + id + "/ack", { note: form.note.value }).then(function (a) {
      var row = form.closest("tr");
      if (row) {
        row.className = "sev-" + a.severity + " alarm-" + a.state;
        text($("td.state", row), word("alarm.state.", a.state) + " · " + (a.acknowledged_by || ""));
      }
      form.remove();
      refreshBadge();
    }).catch(function (msg) { problem(form, msg); });
  });

  // ---- Events: every page hears them; lists show them ----------------
  function eventRow(e) {
    var row = document.createElement("tr");
    [fmtTime(new Date(e.time)), word("event.", e.kind), e.meter || "", e.tenant || "", eventText(e)].forEach(function (v, i) {
      var td = document.createElement("td");
      td.className = ["t", "kind", "wide", "wide", "text"][i];
      td.textContent = v;
      row.appendChild(td);
    });
    return row;
  }
  // One stream a page: a browser opens six connections to a site, and a
  // control room keeps several tabs open. The meter pages follow the
  // meter stream; the others the events (the dashboard with the counts),
  // from the newest event when the page was made, so nothing older is
  // shown or sounded as new; a reconnection resumes by Last-Event-ID.
  var events = $("#events");
  var live = events && (page === "dashboard" || events.getAttribute("data-live"));
  var keep = events ? Math.max(50, events.tBodies[0].rows.length) : 0;
  var after = body.getAttribute("data-last") || "0";
  if (window.EventSource && page !== "receipt" && page !== "meters" && page !== "meter") {
    var es = new EventSource("/api/v1/events?after=" + after + (page === "dashboard" ? "&status=1" : ""));
    es.onmessage = function (msg) {
      var e = JSON.parse(msg.data);
      if (live) {
        var tb = events.tBodies[0], none = $("tr.none", tb);
        if (none) { none.remove(); }
        tb.insertBefore(eventRow(e), tb.firstChild);
        while (tb.rows.length > keep) { tb.deleteRow(tb.rows.length - 1); }
      }
      // The server says what an event does to alarms (e.alarm: raise or
      // clear): the page need not know which kinds raise them.
      if (e.alarm === "raise") {
        toast(t("alarm.raised_toast", { what: word("event.", e.kind) + " — " + eventText(e) }), true);
        beep();
      }
      if (e.alarm || e.kind === "alarm_acknowledged") {
        refreshBadge();
        if (page === "dashboard") { reloadAlarms(); }
      }
    };
    if (page === "dashboard") { es.addEventListener("status", function (msg) { showStatus(JSON.parse(msg.data)); }); }
  } else {
    setInterval(refreshBadge, 60000); // no event stream on this page
  }
  refreshBadge();

  // reloadAlarms redraws the dashboard's open alarms from the API.
  var reloadAlarms = coalesce(function () {
    var table = $("#alarms");
    if (!table) { return; }
    Promise.all([getJSON("/api/v1/alarms?state=active"), getJSON("/api/v1/alarms?state=acknowledged")]).then(function (rs) {
      var list = rs[0].json.concat(rs[1].json), tb = table.tBodies[0];
      var canAck = table.getAttribute("data-can-ack") === "1";
      tb.textContent = "";
      list.forEach(function (a) {
        var row = document.createElement("tr");
        row.id = "alarm-" + a.id;
        row.className = "sev-" + a.severity + " alarm-" + a.state;
        var where = a.meter || a.bus || "";
        [fmtTime(new Date(a.raised)), word("alarm.severity.", a.severity), word("event.", a.kind), where, eventText(a),
          word("alarm.state.", a.state) + (a.acknowledged_by ? " · " + a.acknowledged_by : "")].forEach(function (v, i) {
          var td = document.createElement("td");
          if (i === 3 && a.meter) { var l = document.createElement("a"); l.href = "/meters/" + encodeURIComponent(a.meter); l.textContent = v; td.appendChild(l); } else { td.textContent = v; }
          if (i === 4) { td.className = "text"; }
          if (i === 5) { td.className = "state"; }
          row.appendChild(td);
        });
        var last = document.createElement("td");
        if (canAck && a.state === "active") {
          var f = document.createElement("form");
          f.className = "ack"; f.setAttribute("data-alarm", a.id);
          var inp = document.createElement("input"); inp.name = "note"; inp.required = true; inp.placeholder = t("alarm.note");
          var b = document.createElement("button"); b.type = "submit"; b.textContent = t("alarm.ack");
          f.appendChild(inp); f.appendChild(document.createTextNode(" ")); f.appendChild(b);
          last.appendChild(f);
        }
        row.appendChild(last);
        tb.appendChild(row);
      });
      text($("#count-alarms"), String(list.length));
    }).catch(function () {});
  }, 1000);

  // ---- Meters: live deltas over SSE ----------------------------------
  // meterStream follows the meters in ids (every meter for null, none for
  // an empty list) and the gateway's counts; onMeters gets the changed
  // meters only.
  function meterStream(ids, onMeters, onStatus) {
    if (!window.EventSource) { return null; }
    var url = "/api/v1/meters/stream" + (ids ? "?ids=" + ids.map(encodeURIComponent).join(",") : "");
    var src = new EventSource(url);
    src.addEventListener("meters", function (msg) { onMeters(JSON.parse(msg.data)); });
    if (onStatus) { src.addEventListener("status", function (msg) { onStatus(JSON.parse(msg.data)); }); }
    return src;
  }

  // span is a wait in its largest whole unit, seconds to hours, as
  // gateway/web's span writes it.
  function span(s) {
    s = Math.max(0, Math.floor(s));
    if (s >= 3600) { return t("duration.hours", { n: Math.floor(s / 3600) }); }
    if (s >= 60) { return t("duration.minutes", { n: Math.floor(s / 60) }); }
    return t("duration.seconds", { n: s });
  }
  function group(n) { return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ","); }
  // uplinkLine is the dashboard's line of the uplink, as gateway/web's
  // uplinkLine writes it.
  function uplinkLine(u) {
    var parts = [];
    if (u.connected) { parts.push(t("uplink.connected")); }
    else if (!u.since) { parts.push(t("uplink.disconnected")); }
    else { parts.push(t("uplink.disconnected_for", { "for": span((Date.now() - Date.parse(u.since)) / 1000) })); }
    if (u.error) { parts.push(t("uplink.unreadable")); }
    else if (u.depth > 0 && u.oldest) { parts.push(t("uplink.waiting_oldest", { n: group(u.depth), age: span(u.oldest_age_s) })); }
    else { parts.push(t("uplink.waiting", { n: group(u.depth) })); }
    var c = u.last_command;
    if (c) { parts.push(c.status === "ok" ? t("uplink.last_ok", { id: c.id }) : t("uplink.last_refused", { id: c.id, reason: c.reason || "" })); }
    return t("uplink.line", { text: parts.join(" · ") });
  }
  var lastUplink = null;
  function showUplink(u) {
    var el = document.getElementById("uplink");
    if (!el || !u) { return; }
    lastUplink = u;
    text(el, uplinkLine(u));
    el.className = "uplink" + (u.connected ? "" : " down") + (u.backlog || u.error ? " bad" : "");
  }
  // The time since the link went down grows between status events.
  if (page === "dashboard") { setInterval(function () { if (lastUplink) { showUplink(lastUplink); } }, 15000); }

  // showStatus follows the dashboard's counts, buses and uplink.
  function showStatus(st) {
      showUplink(st.uplink);
      if (st.counts) {
        text($("#count-meters"), String(st.counts.meters));
        text($("#count-online"), String(st.counts.online));
        var off = $("#count-offline");
        text(off, String(st.counts.offline));
        if (off) { off.className = "big" + (st.counts.offline ? " bad" : ""); }
      }
      (st.buses || []).forEach(function (b) {
        var row = document.getElementById("bus-" + b.name);
        if (!row) { return; }
        text($("td.online", row), b.online + " / " + b.meters);
        text($("td.cycle", row), t("unit.ms", { n: b.cycle_ms }));
        row.className = b.online < b.meters ? (b.online === 0 ? "offline" : "partial") : "";
      });
  }

  if (page === "meters") { metersPage(); }
  function metersPage() {
    var form = $("#meter-filter"), table = $("#meters"), tb = table.tBodies[0];
    var pageSize = 100, offset = 0, stream = null;
    var q = new URLSearchParams(location.search);
    Array.prototype.forEach.call(form.elements, function (el) { if (el.name && q.has(el.name)) { el.value = q.get(el.name); } });
    offset = parseInt(q.get("offset") || "0", 10) || 0;
    function params() {
      var p = new URLSearchParams();
      Array.prototype.forEach.call(form.elements, function (el) { if (el.name && el.value) { p.set(el.name, el.value); } });
      return p;
    }
    function cell(row, cls, v) {
      var td = document.createElement("td");
      td.className = cls;
      td.textContent = v;
      row.appendChild(td);
      return td;
    }
    function fill(row, m) {
      row.className = m.online ? "online" : "offline";
      text($("td.state", row), word("meter.", m.online ? "online" : "offline"));
      var relay = $("td.relay", row);
      relay.className = "relay relay-" + m.relay.actual;
      text(relay, m.relay.actual ? word("relay.", m.relay.actual) : "—");
      text($("td.import", row), kwh(m.import_kwh));
      text($("td.power", row), value(m, "power", 0));
      text($("td.voltage", row), [value(m, "voltage_a", 1), value(m, "voltage_b", 1), value(m, "voltage_c", 1)].join(" / "));
      text($("td.current", row), [value(m, "current_a", 1), value(m, "current_b", 1), value(m, "current_c", 1)].join(" / "));
      text($("td.seen", row), ago(m.last_seen));
    }
    function rowOf(m) {
      var row = document.createElement("tr");
      row.id = "meter-" + m.id;
      var id = cell(row, "id", "");
      var a = document.createElement("a");
      a.href = "/meters/" + encodeURIComponent(m.id);
      a.textContent = m.id;
      id.appendChild(a);
      cell(row, "tenant", m.tenant ? (m.tenant_name || "") + " (" + m.tenant + ")" : word("meter_role.", m.role));
      cell(row, "bus", m.bus + " / " + m.address);
      ["state", "relay", "num import", "num power", "num voltage wide", "num current wide", "seen wide"].forEach(function (c) { cell(row, c, ""); });
      fill(row, m);
      return row;
    }
    function load() {
      var p = params();
      p.set("offset", offset);
      p.set("limit", pageSize);
      var shown = params();
      if (offset) { shown.set("offset", offset); }
      history.replaceState(null, "", "/meters" + (shown.toString() ? "?" + shown : ""));
      getJSON("/api/v1/meters?" + p).then(function (r) {
        var list = r.json, total = parseInt(r.res.headers.get("X-Total-Count") || String(list.length), 10);
        tb.textContent = "";
        if (!list.length) {
          var none = document.createElement("tr"), td = document.createElement("td");
          none.className = "none"; td.colSpan = 10; td.textContent = t("meters.none");
          none.appendChild(td); tb.appendChild(none);
        }
        list.forEach(function (m) { tb.appendChild(rowOf(m)); });
        text($("#range"), t("meters.range", { from: list.length ? offset + 1 : 0, to: offset + list.length, total: total }));
        $("#prev").disabled = offset === 0;
        $("#next").disabled = offset + list.length >= total;
        if (stream) { stream.close(); }
        stream = list.length ? meterStream(list.map(function (m) { return m.id; }), function (changed) {
          changed.forEach(function (m) {
            var row = document.getElementById("meter-" + m.id);
            if (row) { fill(row, m); }
          });
        }) : null;
      }).catch(function (code) { toast(t("form.failed", { reason: code }), true); });
    }
    form.addEventListener("submit", function (ev) { ev.preventDefault(); offset = 0; load(); });
    $all("select", form).forEach(function (s) { s.addEventListener("change", function () { offset = 0; load(); }); });
    $("#prev").addEventListener("click", function () { offset = Math.max(0, offset - pageSize); load(); });
    $("#next").addEventListener("click", function () { offset += pageSize; load(); });
    load();
  }

  if (page === "meter") {
    var box = $("#meter");
    meterStream([box.getAttribute("data-meter")], function (changed) {
      changed.forEach(function (m) {
        box.className = "card " + (m.online ? "online" : "offline");
        text($(".state", box), word("meter.", m.online ? "online" : "offline"));
        text($(".seen", box), ago(m.last_seen));
        $all("[data-q]", box).forEach(function (td) {
          var qn = td.getAttribute("data-q");
          if (qn === "import_kwh") { text(td, kwh(m.import_kwh)); return; }
          var digits = qn === "pf" ? 3 : qn === "frequency" ? 2 : /power/.test(qn) ? 0 : 1;
          text(td, value(m, qn, digits));
        });
        var act = $("#relay-actual");
        if (act) { act.className = "relay-" + m.relay.actual; text(act, word("relay.", m.relay.actual)); }
        text($("#relay-desired"), word("relay.", m.relay.desired));
      });
    });
    charts();
  }
  if (page === "tenant") { charts(); }
  if (page === "tenants") {
    var search = $("#tenant-search");
    if (search) {
      search.addEventListener("input", function () {
        var v = search.value.toLowerCase();
        $all("#tenants tbody tr[data-search]").forEach(function (row) {
          row.hidden = v !== "" && row.getAttribute("data-search").toLowerCase().indexOf(v) < 0;
        });
      });
    }
  }

  // ---- Charts ----------------------------------------------------------
  function chartWidth(el) { return Math.max(280, el.clientWidth || 600); }
  function empty(el) { el.textContent = t("chart.no_data"); el.className += " empty"; }
  // axisTime writes a chart's time axis in the site's zone.
  function axisTime(withDate) {
    return function (u, splits) {
      return splits.map(function (s) {
        var p = parts(new Date(s * 1000));
        return withDate ? p.month + "-" + p.day : p.hour + ":" + p.minute;
      });
    };
  }
  function charts() {
    if (!window.uPlot) { return; }
    var now = new Date(), iso = function (d) { return d.toISOString(); };
    var power = $("#power-chart"), energy = $("#energy-chart"), usage = $("#usage-chart");
    if (power) {
      var id = encodeURIComponent(power.getAttribute("data-meter"));
      getJSON("/api/v1/meters/" + id + "/history?from=" + iso(new Date(now - 86400e3)) + "&to=" + iso(now) + "&step=5m").then(function (r) {
        var pts = r.json.points || [];
        if (!pts.some(function (p) { return p.avg_w !== null; })) { return empty(power); }
        var xs = pts.map(function (p) { return Date.parse(p.t) / 1000; });
        new uPlot({ width: chartWidth(power), height: 220, scales: { x: { time: true } },
          axes: [{ values: axisTime(false) }, { size: 70 }],
          series: [{}, { label: t("chart.avg_w"), stroke: "#1f6feb", width: 2 }, { label: t("chart.max_w"), stroke: "#d97706", width: 1 }] },
        [xs, pts.map(function (p) { return p.avg_w; }), pts.map(function (p) { return p.max_w; })], power);
      }).catch(function () { empty(power); });
    }
    if (energy) {
      var mid = encodeURIComponent(energy.getAttribute("data-meter"));
      getJSON("/api/v1/meters/" + mid + "/history?from=" + iso(new Date(now - 30 * 86400e3)) + "&to=" + iso(now) + "&step=1d").then(function (r) {
        var pts = r.json.points || [];
        if (!pts.some(function (p) { return p.kwh !== null; })) { return empty(energy); }
        bars(energy, pts.map(function (p) { return Date.parse(p.t) / 1000; }),
          [{ label: t("chart.kwh"), fill: "#1f6feb", values: pts.map(function (p) { return p.kwh === null ? null : parseFloat(p.kwh); }) }]);
      }).catch(function () { empty(energy); });
    }
    if (usage) {
      var tenant = encodeURIComponent(usage.getAttribute("data-tenant"));
      getJSON("/api/v1/accounts/" + tenant + "/usage?from=" + iso(new Date(now - 29 * 86400e3)) + "&to=" + iso(now) + "&step=day").then(function (r) {
        var days = r.json.days || [], names = [];
        days.forEach(function (d) { d.windows.forEach(function (w) { if (names.indexOf(w.window) < 0) { names.push(w.window); } }); });
        if (!names.length) { return empty(usage); }
        var colors = { sharp: "#b3261e", peak: "#d97706", flat: "#1f6feb", valley: "#1b7f3b" };
        // Stacked: each window's bar is drawn from the total down, so the
        // dearest window sits on top.
        var series = names.map(function (n, i) {
          return { label: word("window.", n), fill: colors[n] || "#6b7580", values: days.map(function (d) {
            var sum = 0;
            d.windows.forEach(function (w) { if (names.indexOf(w.window) >= i) { sum += parseFloat(w.kwh); } });
            return sum;
          }) };
        });
        bars(usage, days.map(function (d) { return Date.parse(d.t) / 1000; }), series);
      }).catch(function () { empty(usage); });
    }
  }
  function bars(el, xs, series) {
    var path = uPlot.paths.bars({ size: [0.7, 40] });
    new uPlot({ width: chartWidth(el), height: 220, scales: { x: { time: true } },
      axes: [{ values: axisTime(true) }, { size: 60 }],
      series: [{}].concat(series.map(function (s) { return { label: s.label, fill: s.fill, stroke: s.fill, paths: path, points: { show: false } }; })) },
    [xs].concat(series.map(function (s) { return s.values; })), el);
  }

  // ---- Forms that change something -------------------------------------
  // pageRef makes the reference of a payment or a correction the page
  // sends. It names no tenant: the server takes 1–64 printable characters
  // without spaces, and a tenant's id may hold spaces, slashes or Chinese.
  // The time and the random part keep two pages' references apart.
  function pageRef(kind) {
    return "WEB-" + kind + "-" + Date.now() + "-" + Math.random().toString(36).slice(2, 8);
  }
  var topup = $("#topup");
  var pendingRef = "";
  if (topup) {
    ["amount", "channel", "ref", "note"].forEach(function (n) { topup[n].addEventListener("input", function () { pendingRef = ""; }); });
    topup.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var tenant = topup.getAttribute("data-tenant");
      // A reference makes the top-up safe to send twice: the gateway credits
      // it once. Left empty, the page makes one for this payment and keeps
      // it while the same payment is sent again (a retry after an error);
      // another amount or channel is another payment, with a new one.
      if (!pendingRef) { pendingRef = pageRef("TOP"); }
      var ref = topup.ref.value.trim() || pendingRef;
      var button = $("button[type=submit]", topup);
      button.disabled = true;
      var body = { amount: topup.amount.value.trim(), ref: ref, channel: topup.channel.value, note: topup.note.value.trim() };
      // An invoice is asked for when any of its fields is filled in: one
      // filled without a title is the gateway's to refuse, with its reason,
      // not the page's to drop. Changing them keeps the reference: it is
      // the same payment, and a retry that changed the request is refused
      // as a conflict rather than credited twice.
      var invoice = { title: topup.invoice_title.value.trim(), tax_id: topup.invoice_tax_id.value.trim(), email: topup.invoice_email.value.trim() };
      if (invoice.title || invoice.tax_id || invoice.email) { body.invoice = invoice; }
      api("POST", "/api/v1/accounts/" + encodeURIComponent(tenant) + "/topups", body)
        .then(function (e) { location.href = "/tenants/" + encodeURIComponent(tenant) + "/receipts/" + e.id; })
        .catch(function (msg) { button.disabled = false; problem(topup, msg); });
    });
  }
  $all("form.override").forEach(function (form) {
    var dialog = $("dialog.confirm", form);
    function send() {
      var meter = form.getAttribute("data-meter");
      api("POST", "/api/v1/meters/" + encodeURIComponent(meter) + "/relay", { state: form.state.value, reason: form.reason.value.trim(), until: rfc3339(form.until.value) })
        .then(function () { location.reload(); })
        .catch(function (msg) { problem(form, msg); });
    }
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var state = form.state.options[form.state.selectedIndex].text;
      $(".question", dialog).textContent = t("relay.override.confirm", { meter: form.getAttribute("data-meter"), state: state });
      if (dialog.showModal) { dialog.showModal(); } else if (window.confirm($(".question", dialog).textContent)) { send(); }
    });
    $(".yes", dialog).addEventListener("click", function () { dialog.close(); send(); });
    $(".no", dialog).addEventListener("click", function () { dialog.close(); });
  });
  var protect = $("#protect");
  if (protect) {
    protect.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var on = $("input[name=protected]:checked", protect).value === "true";
      api("POST", "/api/v1/accounts/" + encodeURIComponent(protect.getAttribute("data-tenant")) + "/protection",
        { protected: on, reason: protect.reason.value.trim(), until: on ? rfc3339(protect.until.value) : "" })
        .then(function () { location.reload(); })
        .catch(function (msg) { problem(protect, msg); });
    });
  }
  // Finance's corrections. Each is sent with a reference the page makes
  // for it (pageRef) and keeps while the same correction is sent again (a
  // retry after an error is posted once); anything changed makes a new one.
  var reverse = $("dialog#reverse");
  if (reverse) {
    var revForm = $("form", reverse);
    var revEntry = "", revRef = "";
    revForm.reason.addEventListener("input", function () { revRef = ""; });
    $all("button.reverse").forEach(function (b) {
      b.addEventListener("click", function () {
        if (revEntry !== b.getAttribute("data-entry")) { revRef = ""; revForm.reason.value = ""; }
        revEntry = b.getAttribute("data-entry");
        $(".title", reverse).textContent = t("correct.reverse_title", { id: revEntry });
        $(".problem", revForm).hidden = true;
        if (reverse.showModal) { reverse.showModal(); } else { reverse.setAttribute("open", ""); }
      });
    });
    $(".no", reverse).addEventListener("click", function () { reverse.close ? reverse.close() : reverse.removeAttribute("open"); });
    revForm.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var tenant = reverse.getAttribute("data-tenant");
      if (!revRef) { revRef = pageRef("REV"); }
      var button = $("button[type=submit]", revForm);
      button.disabled = true;
      api("POST", "/api/v1/accounts/" + encodeURIComponent(tenant) + "/reversals",
        { entry: Number(revEntry), reason: revForm.reason.value.trim(), ref: revRef })
        .then(function () { location.reload(); })
        .catch(function (msg) { button.disabled = false; problem(revForm, msg); });
    });
  }
  var adjust = $("#adjust");
  if (adjust) {
    var adjRef = "";
    ["amount", "reason"].forEach(function (n) { adjust[n].addEventListener("input", function () { adjRef = ""; }); });
    adjust.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var tenant = adjust.getAttribute("data-tenant");
      if (!adjRef) { adjRef = pageRef("ADJ"); }
      var button = $("button[type=submit]", adjust);
      button.disabled = true;
      api("POST", "/api/v1/accounts/" + encodeURIComponent(tenant) + "/adjustments",
        { amount: adjust.amount.value.trim(), reason: adjust.reason.value.trim(), ref: adjRef })
        .then(function () { location.reload(); })
        .catch(function (msg) { button.disabled = false; problem(adjust, msg); });
    });
  }
  var print = $("#print");
  if (print) { print.addEventListener("click", function () { window.print(); }); }
})();
