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
