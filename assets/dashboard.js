// ecoupon merchant console: the live dashboard. `/merchant` and `/merchant/campaigns/{id}`
// render their numbers on the server; this file keeps them current from the WebSocket at
// `/merchant/live` (issue 9's frames: snapshot, stats, redemption, campaign), draws the
// per-minute chart into the page's <svg>, and reconnects with backoff, saying so in
// #live-banner while away. Every string comes from the page's data- attributes.
(function () {
  "use strict";
  var banner = document.getElementById("live-banner");
  if (!banner || !("WebSocket" in window)) return;
  var page = banner.getAttribute("data-live-page");
  var campaignId = banner.getAttribute("data-campaign-id");
  var SVG = "http://www.w3.org/2000/svg";
  var MINUTE = 60000;

  function fill(template, name, v) { return (template || "").split("{" + name + "}").join(String(v)); }
  function num(v) { var n = Number(v); return isFinite(n) ? n : null; }
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  // hh:mm:ss in Japan time, as the server renders it.
  function clock(ms) {
    var d = new Date(ms + 9 * 3600 * 1000);
    return pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + ":" + pad(d.getUTCSeconds());
  }
  function parseTime(at) {
    if (typeof at === "number") return at < 1e12 ? at * 1000 : at;
    var t = Date.parse(at);
    return isNaN(t) ? Date.now() : t;
  }
  function statusLabel(status) { return banner.getAttribute("data-status-" + status) || status; }
  function setBadge(badge, status) {
    if (!badge || !status) return;
    badge.className = badge.className.replace(/\bc-badge--[a-z]+\b/, "c-badge--" + status);
    badge.textContent = statusLabel(status);
    if (badge.hasAttribute("data-status")) badge.setAttribute("data-status", status);
  }

  // ---- /merchant: the campaign table ----------------------------------------------------
  function homeRow(id) {
    return document.querySelector('table#campaigns tr[data-campaign-id="' + String(id).replace(/"/g, "") + '"]');
  }
  function homeStats(c, id) {
    var row = homeRow(id);
    if (!row) return;
    ["issued", "redeemed", "remaining"].forEach(function (field) {
      var v = num(c[field]);
      var cell = row.querySelector('[data-field="' + field + '"]');
      if (v === null || !cell) return;
      // The remaining cell reads "n / limit": only the first number changes.
      var text = cell.textContent;
      var m = /^\s*\d+/.exec(text);
      cell.textContent = m ? String(v) + text.slice(m[0].length) : String(v);
    });
  }

  // ---- /merchant/campaigns/{id}: counts, stock bar, sold-out, chart, feed ------------------
  var chart = document.getElementById("activity-chart");
  var totals = document.getElementById("activity-totals");
  var meter = document.getElementById("stock-meter");
  var soldOut = document.getElementById("sold-out");
  var feed = document.getElementById("redemption-feed");
  var feedEmpty = document.getElementById("feed-empty");
  var known = { issued: null, redeemed: null };
  var series = null;
  // Server time minus ours, so minutes roll over on the server's clock.
  var skew = 0;

  function statText(id) {
    var el = document.getElementById(id);
    return el ? num(el.textContent.trim()) : null;
  }

  function splitCounts(s) {
    return (s || "").split(",").map(function (x) { return num(x) || 0; });
  }

  if (page === "campaign" && chart) {
    var claims = splitCounts(chart.getAttribute("data-claims"));
    var redemptions = splitCounts(chart.getAttribute("data-redemptions"));
    var start = num(chart.getAttribute("data-start"));
    var now = num(chart.getAttribute("data-now"));
    if (now !== null) skew = now - Date.now();
    if (start !== null && claims.length === redemptions.length && claims.length > 0) {
      series = { start: start, claims: claims, redemptions: redemptions };
    }
    known.issued = statText("stat-issued");
    known.redeemed = statText("stat-redeemed");
  }

  function serverNow() { return Date.now() + skew; }

  // Moves the window so that its last minute is the current one.
  function roll() {
    if (!series) return false;
    var current = Math.floor(serverNow() / MINUTE) * MINUTE;
    var n = series.claims.length;
    var last = series.start + (n - 1) * MINUTE;
    if (current <= last) return false;
    var steps = Math.min(n, Math.round((current - last) / MINUTE));
    for (var i = 0; i < steps; i++) {
      series.claims.shift(); series.claims.push(0);
      series.redemptions.shift(); series.redemptions.push(0);
    }
    series.start = current - (n - 1) * MINUTE;
    return true;
  }

  function el(name, attrs, text) {
    var e = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (k) { e.setAttribute(k, String(attrs[k])); });
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function sum(a) { return a.reduce(function (s, x) { return s + x; }, 0); }

  function draw() {
    if (!series || !chart) return;
    var W = 640, H = 200, left = 36, right = 8, top = 12, bottom = 28;
    var n = series.claims.length;
    var plotW = W - left - right, plotH = H - top - bottom;
    var max = Math.max(1, Math.max.apply(null, series.claims), Math.max.apply(null, series.redemptions));
    // A round top for the scale: 1, 2, 5, 10, 20, 50, …
    var p = Math.pow(10, Math.floor(Math.log10(max)));
    var scale = [1, 2, 5, 10].map(function (m) { return m * p; }).filter(function (x) { return x >= max; })[0];
    while (chart.firstChild) chart.removeChild(chart.firstChild);
    var slot = plotW / n, bar = Math.max(1, (slot - 2) / 2);
    var y = function (v) { return top + plotH - (v / scale) * plotH; };
    chart.appendChild(el("line", { "class": "c-chart__grid", x1: left, x2: W - right, y1: y(scale), y2: y(scale) }));
    chart.appendChild(el("line", { "class": "c-chart__grid", x1: left, x2: W - right, y1: y(scale / 2), y2: y(scale / 2) }));
    chart.appendChild(el("text", { "class": "c-chart__tick", x: left - 6, y: y(scale) + 4, "text-anchor": "end" }, String(scale)));
    chart.appendChild(el("text", { "class": "c-chart__tick", x: left - 6, y: y(0) + 4, "text-anchor": "end" }, "0"));
    var bars = el("g", { "class": "c-chart__bars" });
    for (var i = 0; i < n; i++) {
      var x = left + i * slot + 1;
      var c = series.claims[i], r = series.redemptions[i];
      if (c > 0) bars.appendChild(el("rect", { "class": "c-chart__claims", x: x, y: y(c), width: bar, height: y(0) - y(c) }));
      if (r > 0) bars.appendChild(el("rect", { "class": "c-chart__redemptions", x: x + bar, y: y(r), width: bar, height: y(0) - y(r) }));
    }
    chart.appendChild(bars);
    chart.appendChild(el("line", { "class": "c-chart__axis", x1: left, x2: W - right, y1: y(0), y2: y(0) }));
    var ago = chart.getAttribute("data-label-ago") || "{n}";
    [[0, fill(ago, "n", n - 1), "start"], [Math.floor(n / 2), fill(ago, "n", n - 1 - Math.floor(n / 2)), "middle"],
     [n - 1, chart.getAttribute("data-label-now") || "", "end"]].forEach(function (t) {
      chart.appendChild(el("text", { "class": "c-chart__tick", x: left + t[0] * slot + (t[2] === "end" ? slot : 0), y: H - 8, "text-anchor": t[2] }, t[1]));
    });
    chart.setAttribute("data-claims", series.claims.join(","));
    chart.setAttribute("data-redemptions", series.redemptions.join(","));
    chart.setAttribute("data-start", String(series.start));
    if (totals) {
      var text = fill(totals.getAttribute("data-template"), "claims", sum(series.claims));
      totals.textContent = fill(text, "redemptions", sum(series.redemptions));
    }
  }

  function setStat(id, v) {
    var e = document.getElementById(id);
    if (e && v !== null) e.textContent = String(v);
  }

  function markSoldOut(remaining) {
    if (!soldOut || remaining === null) return;
    if (remaining > 0) { soldOut.hidden = true; return; }
    if (!soldOut.hidden) return;
    var at = serverNow();
    var t = document.createElement("time");
    t.setAttribute("datetime", new Date(at).toISOString());
    t.textContent = fill(soldOut.getAttribute("data-template"), "at", clock(at));
    soldOut.textContent = "";
    soldOut.appendChild(t);
    soldOut.hidden = false;
  }

  function campaignStats(c) {
    var issued = num(c.issued), redeemed = num(c.redeemed), remaining = num(c.remaining);
    roll();
    if (series) {
      var last = series.claims.length - 1;
      // What changed since the last numbers we saw happened in this minute.
      if (issued !== null && known.issued !== null && issued > known.issued) series.claims[last] += issued - known.issued;
      if (redeemed !== null && known.redeemed !== null && redeemed !== known.redeemed) {
        series.redemptions[last] = Math.max(0, series.redemptions[last] + redeemed - known.redeemed);
      }
    }
    if (issued !== null) known.issued = issued;
    if (redeemed !== null) known.redeemed = redeemed;
    setStat("stat-issued", issued);
    setStat("stat-redeemed", redeemed);
    setStat("stat-remaining", remaining);
    if (meter && remaining !== null) {
      meter.value = remaining;
      var max = meter.getAttribute("max") || "";
      meter.textContent = remaining + " / " + max;
    }
    markSoldOut(remaining);
    draw();
  }

  function addRedemption(f) {
    if (!feed) return;
    var body = feed.tBodies[0];
    if (!body) return;
    var unknown = feed.getAttribute("data-unknown") || "";
    var at = parseTime(f.at);
    var tr = document.createElement("tr");
    var td = document.createElement("td");
    var t = document.createElement("time");
    t.setAttribute("datetime", new Date(at).toISOString());
    t.textContent = clock(at);
    td.appendChild(t);
    tr.appendChild(td);
    [f.store, f.staff].forEach(function (v) {
      var cell = document.createElement("td");
      cell.textContent = v ? String(v) : unknown;
      tr.appendChild(cell);
    });
    body.insertBefore(tr, body.firstChild);
    var max = num(feed.getAttribute("data-max")) || 20;
    while (body.rows.length > max) body.removeChild(body.lastElementChild);
    if (feedEmpty) feedEmpty.hidden = true;
  }

  // ---- frames -------------------------------------------------------------------------------
  function mine(id) { return campaignId !== null && String(id) === campaignId; }

  function onFrame(msg) {
    if (!msg || typeof msg.type !== "string") return;
    if (msg.type === "snapshot" && Array.isArray(msg.campaigns)) {
      msg.campaigns.forEach(function (c) {
        if (page === "home") {
          homeStats(c, c.id);
          var row = homeRow(c.id);
          if (row) setBadge(row.querySelector(".c-badge"), c.status);
        } else if (mine(c.id)) {
          campaignStats(c);
          setBadge(document.getElementById("campaign-status"), c.status);
        }
      });
    } else if (msg.type === "stats") {
      if (page === "home") homeStats(msg, msg.campaign_id);
      else if (mine(msg.campaign_id)) campaignStats(msg);
    } else if (msg.type === "redemption") {
      if (page === "campaign" && mine(msg.campaign_id)) addRedemption(msg);
    } else if (msg.type === "campaign") {
      if (page === "home") {
        var row = homeRow(msg.campaign_id);
        if (row) setBadge(row.querySelector(".c-badge"), msg.status);
      } else if (mine(msg.campaign_id)) {
        setBadge(document.getElementById("campaign-status"), msg.status);
      }
    }
  }

  // ---- the socket -----------------------------------------------------------------------------
  var attempt = 0, timer = null, leaving = false;

  function away(isAway) {
    banner.textContent = isAway ? banner.getAttribute("data-reconnecting") || "" : "";
    banner.classList.toggle("c-live-banner--away", isAway);
    document.documentElement.setAttribute("data-live", isAway ? "away" : "connected");
  }

  function connect() {
    timer = null;
    var ws;
    try {
      ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/merchant/live");
    } catch (e) {
      retry();
      return;
    }
    ws.onmessage = function (e) {
      if (typeof e.data !== "string") return;
      var msg;
      try { msg = JSON.parse(e.data); } catch (err) { return; }
      if (msg && msg.type === "snapshot") { attempt = 0; away(false); }
      onFrame(msg);
    };
    ws.onclose = function () { if (!leaving) { away(true); retry(); } };
    ws.onerror = function () { /* onclose follows */ };
  }

  // 1 s, 2 s, 4 s … up to 30 s, each ±20 % so a restarted server is not hit all at once.
  function retry() {
    if (timer !== null) return;
    var base = Math.min(30000, 1000 * Math.pow(2, attempt));
    attempt = Math.min(attempt + 1, 10);
    timer = setTimeout(connect, Math.min(30000, base * (0.8 + Math.random() * 0.4)));
  }

  window.addEventListener("pagehide", function () { leaving = true; });
  window.addEventListener("pageshow", function (e) { if (e.persisted) { leaving = false; connect(); } });

  draw();
  // The chart's window moves on with the clock even when nothing happens.
  if (series) setInterval(function () { if (roll()) draw(); }, 1000);
  connect();
})();
