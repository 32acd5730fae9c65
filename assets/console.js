// ecoupon merchant console: small progressive enhancements. Every page works without it.
(function () {
  "use strict";
  // A form submits once: a second press while the first is on its way does nothing.
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (form.dataset.submitted === "1") { e.preventDefault(); return; }
    form.dataset.submitted = "1";
    setTimeout(function () { form.dataset.submitted = ""; }, 5000);
  });
})();

// A page that answers a form with something shown only once (a new API key's secret)
// names the page it belongs to: the address bar is set to it, so a reload asks for that
// page instead of sending the form again (which would make a second key).
(function () {
  "use strict";
  var shown = document.querySelector("[data-reload-url]");
  if (shown && window.history && window.history.replaceState) {
    window.history.replaceState(null, "", shown.getAttribute("data-reload-url"));
  }
})();

// Campaign editor (campaigns area): the live preview redraws as the merchant types, in
// both languages, from the catalogue strings each panel carries as data- attributes; the
// campaign page asks before ending a campaign. Nothing happens on other pages.
(function () {
  "use strict";
  // Asked in the capture phase, so a cancelled end is not counted as a submitted form.
  document.addEventListener("submit", function (e) {
    var question = e.target.getAttribute && e.target.getAttribute("data-campaign-confirm");
    if (question && !window.confirm(question)) { e.preventDefault(); e.stopPropagation(); }
  }, true);

  var form = document.getElementById("campaign-form");
  var preview = document.getElementById("preview");
  if (!form || !preview) return;
  var panels = preview.querySelectorAll(".c-preview");

  function value(name) {
    var el = form.elements[name];
    return el && typeof el.value === "string" ? el.value : "";
  }
  // Full-width digits (Japanese input) mean the same numbers, as on the server.
  function ascii(s) {
    return s.trim().replace(/[０-９．]/g, function (c) {
      return c === "．" ? "." : String.fromCharCode(c.charCodeAt(0) - 0xFEE0);
    });
  }
  function fill(template, name, v) { return (template || "").split("{" + name + "}").join(v); }
  function whole(s) { s = ascii(s); return /^\d+$/.test(s) ? parseInt(s, 10) : NaN; }
  function shown(s) {
    var m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(s.trim());
    return m ? m[1] + "/" + m[2] + "/" + m[3] + " " + m[4] + ":" + m[5] : "";
  }
  function discount(p) {
    var v = value("discount_value").trim(), n = whole(v);
    switch (value("discount_kind")) {
      case "amount_off_yen": return n > 0 ? fill(p.dataset.amountOffYen, "amount", String(n)) : "";
      case "percent_off": return n > 0 ? fill(p.dataset.percentOff, "percent", String(n)) : "";
      case "free_item": return v ? fill(p.dataset.freeItem, "item", v) : "";
      case "free_text": return v;
      default: return "";
    }
  }
  function set(p, selector, text, hideWhenEmpty) {
    p.querySelectorAll(selector).forEach(function (el) {
      if (text !== null) el.textContent = text;
      if (hideWhenEmpty !== undefined) el.hidden = hideWhenEmpty;
    });
  }

  function redraw() {
    var issued = parseInt(preview.dataset.issued || "0", 10) || 0;
    var limit = whole(value("total_limit"));
    var days = parseFloat(ascii(value("valid_for_days")));
    panels.forEach(function (p) {
      var d = discount(p);
      set(p, ".preview-name", value("name").trim() || p.dataset.untitled);
      set(p, ".preview-discount", d, !d);
      set(p, ".preview-description", value("description"), !value("description").trim());
      set(p, ".preview-terms-text", value("terms"));
      set(p, ".preview-terms", null, !value("terms").trim());
      if (!isNaN(limit)) set(p, ".preview-remaining", fill(p.dataset.remaining, "n", String(Math.max(0, limit - issued))));
      var start = shown(value("claim_starts_at")) || p.dataset.now, end = shown(value("claim_ends_at"));
      set(p, ".preview-period", end
        ? fill(fill(p.dataset.periodUntil, "start", start), "end", end)
        : fill(p.dataset.periodFrom, "start", start));
      var hasDays = isFinite(days) && days > 0;
      set(p, ".preview-usage", null, !hasDays);
      if (hasDays) set(p, ".preview-usage-text", fill(p.dataset.usage, "days", String(Math.ceil(days))));
    });
  }
  form.addEventListener("input", redraw);
  form.addEventListener("change", redraw);

  // A chosen image shows in the preview at once (as a data: URL, which the CSP allows).
  var file = form.elements.image;
  if (file && window.FileReader) {
    file.addEventListener("change", function () {
      var chosen = file.files && file.files[0];
      if (!chosen || !/^image\/(png|jpeg|webp)$/.test(chosen.type) || chosen.size > 2 * 1024 * 1024) return;
      var reader = new FileReader();
      reader.onload = function () {
        panels.forEach(function (p) {
          var img = p.querySelector(".preview-image");
          if (!img) {
            img = document.createElement("img");
            img.className = "claim__image preview-image";
            img.alt = "";
            var hero = p.querySelector(".claim__hero");
            hero.parentNode.insertBefore(img, hero.nextSibling);
          }
          img.src = reader.result;
        });
      };
      reader.readAsDataURL(chosen);
    });
  }
})();

// Settings (users area): the contrast of a theme colour, updated as it is typed. The
// server judges it again on save; this only saves a round trip. Same rule as
// src/domain/theme.rs: the lower of white text on the colour and the colour as text on
// the consumer pages' background.
(function () {
  "use strict";
  var inputs = document.querySelectorAll("input[data-contrast]");
  if (!inputs.length) { return; }
  function luminance(hex) {
    var l = [0, 2, 4].map(function (i) {
      var v = parseInt(hex.substr(i, 2), 16) / 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * l[0] + 0.7152 * l[1] + 0.0722 * l[2];
  }
  function contrast(a, b) {
    var la = luminance(a), lb = luminance(b);
    return (Math.max(la, lb) + 0.05) / (Math.min(la, lb) + 0.05);
  }
  function update(input) {
    var out = document.getElementById(input.dataset.contrast);
    if (!out) { return; }
    var m = /^#([0-9a-f]{6})$/i.exec(input.value.trim());
    if (!m) { out.textContent = ""; return; }
    var hex = m[1].toLowerCase();
    var ratio = Math.min(contrast(hex, "ffffff"), contrast(hex, "f4f1ec"));
    var ok = ratio >= parseFloat(out.dataset.min || "4.5");
    out.dataset.ok = ok ? "true" : "false";
    out.textContent = (out.dataset.label || "{ratio}").replace("{ratio}", ratio.toFixed(1) + ":1") +
      " · " + (ok ? out.dataset.okText : out.dataset.lowText);
  }
  Array.prototype.forEach.call(inputs, function (input) {
    input.addEventListener("input", function () { update(input); });
  });
})();

// Staff redemption screen (redeem helper): scan the coupon's QR code with the camera where
// the browser has BarcodeDetector; typing the code always works. Stores page: confirm
// before deleting. Does nothing on pages without these elements.
(function () {
  "use strict";
  Array.prototype.forEach.call(document.querySelectorAll("form[data-confirm]"), function (form) {
    form.addEventListener("submit", function (e) {
      if (!window.confirm(form.dataset.confirm)) { e.preventDefault(); e.stopPropagation(); }
    });
  });

  var start = document.getElementById("scan-button");
  var live = document.getElementById("scan-live");
  var video = document.getElementById("scan-video");
  var stopButton = document.getElementById("scan-stop");
  var status = document.getElementById("scan-status");
  var codeInput = document.getElementById("coupon-code");
  var checkInput = document.getElementById("check-code");
  var box = document.getElementById("scanner");
  if (!start || !live || !video || !codeInput || !box) { return; }
  if (!("BarcodeDetector" in window) || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) { return; }
  start.hidden = false;
  var stream = null, timer = null, detector = null;

  function stop() {
    if (timer) { clearTimeout(timer); timer = null; }
    if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); stream = null; }
    video.srcObject = null;
    live.hidden = true;
    start.hidden = false;
  }
  function found(text) {
    stop();
    // The QR code carries the coupon code only; the server normalises what it gets.
    codeInput.value = String(text).trim().slice(0, 64);
    if (checkInput) { checkInput.focus(); }
  }
  function scan() {
    if (!stream) { return; }
    detector.detect(video).then(function (codes) {
      if (codes.length && codes[0].rawValue) { found(codes[0].rawValue); return; }
      timer = setTimeout(scan, 200);
    }).catch(function () { timer = setTimeout(scan, 400); });
  }
  start.addEventListener("click", function () {
    if (status) { status.textContent = ""; }
    try { detector = new window.BarcodeDetector({ formats: ["qr_code"] }); } catch (e) { start.hidden = true; return; }
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false }).then(function (s) {
      stream = s;
      video.srcObject = s;
      live.hidden = false;
      start.hidden = true;
      return video.play();
    }).then(scan).catch(function () {
      stop();
      if (status) { status.textContent = box.dataset.denied || ""; }
    });
  });
  if (stopButton) { stopButton.addEventListener("click", stop); }
  window.addEventListener("pagehide", stop);
})();
