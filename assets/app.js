// Progressive enhancement only: every page works without this file.
// Adds the live clock, countdowns, the rotating check code and "n left" updates.
(function () {
  "use strict";
  var pad = function (n) { return (n < 10 ? "0" : "") + n; };

  // The server's clock is the one that counts; keep our offset from it.
  function offsetFrom(el) {
    var server = Date.parse(el.getAttribute("data-server-now"));
    return isNaN(server) ? 0 : server - Date.now();
  }

  function clock(el) {
    var offset = offsetFrom(el);
    var show = function () {
      var d = new Date(Date.now() + offset);
      el.textContent = pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
    };
    show();
    el.classList.add("tick");
    setInterval(show, 250);
  }

  function countdown(el) {
    var offset = offsetFrom(el);
    var target = Date.parse(el.getAttribute("data-countdown-to"));
    if (isNaN(target)) return;
    var show = function () {
      var left = Math.max(0, Math.floor((target - (Date.now() + offset)) / 1000));
      var d = Math.floor(left / 86400), h = Math.floor(left % 86400 / 3600);
      var m = Math.floor(left % 3600 / 60), s = left % 60;
      el.textContent = (d > 0 ? d + "d " : "") + pad(h) + ":" + pad(m) + ":" + pad(s);
      if (left === 0 && el.getAttribute("data-reload")) { location.reload(); }
      return left;
    };
    show();
    var timer = setInterval(function () { if (show() === 0) clearInterval(timer); }, 500);
  }

  function checkCode(el) {
    var url = el.getAttribute("data-check-url");
    var refresh = function () {
      fetch(url, { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (j) {
          if (!j) return;
          if (el.textContent !== j.code) {
            el.textContent = j.code;
            el.classList.remove("is-new"); void el.offsetWidth; el.classList.add("is-new");
          }
          setTimeout(refresh, Math.max(1, j.seconds_left) * 1000 + 150);
        })
        .catch(function () { setTimeout(refresh, 5000); });
    };
    refresh();
  }

  function remaining(el) {
    var url = el.getAttribute("data-status-url");
    setInterval(function () {
      fetch(url, { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (j) {
          if (!j) return;
          if (j.state !== "open") { location.reload(); return; }
          var text = el.textContent.replace(/[0-9][0-9,]*/, String(j.remaining));
          if (text !== el.textContent) {
            el.textContent = text;
            el.classList.remove("is-updated"); void el.offsetWidth; el.classList.add("is-updated");
          }
        })
        .catch(function () {});
    }, 5000);
  }

  // One press only: a second tap while the first is on its way does nothing.
  function once(form) {
    form.addEventListener("submit", function (e) {
      if (form.getAttribute("data-sent")) { e.preventDefault(); return; }
      form.setAttribute("data-sent", "1");
      var b = form.querySelector("button");
      if (b) {
        var label = b.getAttribute("data-busy-label");
        if (label) b.textContent = label;
        setTimeout(function () { b.disabled = true; }, 0);
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("#clock"), clock);
    Array.prototype.forEach.call(document.querySelectorAll("[data-countdown-to]"), countdown);
    Array.prototype.forEach.call(document.querySelectorAll("[data-check-url]"), checkCode);
    Array.prototype.forEach.call(document.querySelectorAll("[data-status-url]"), remaining);
    Array.prototype.forEach.call(document.querySelectorAll("form.js-once"), once);
  });
})();
