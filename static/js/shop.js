// Session Shop: a little progressive enhancement. Every form works without
// this file; it only saves a click and keeps the scroll position.
(function () {
  "use strict";

  document.documentElement.classList.add("js");

  // A cart line's quantity is sent as soon as the person stops changing it.
  document.querySelectorAll("form[data-autosubmit]").forEach(function (form) {
    var input = form.querySelector('input[name="qty"]');
    if (!input) return;
    var timer = null;
    var last = input.value;
    function submit() {
      timer = null;
      if (input.value === last || !input.checkValidity()) return;
      last = input.value;
      if (form.requestSubmit) form.requestSubmit(); else form.submit();
    }
    input.addEventListener("change", function () {
      clearTimeout(timer);
      timer = setTimeout(submit, 600);
    });
    input.addEventListener("keydown", function (e) {
      if (e.key === "Enter") clearTimeout(timer);
    });
  });

  // After a form posts and the server redirects back to the same page,
  // return to where the person was instead of the top of the page.
  var key = "shop-scroll:" + location.pathname;
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (form.method && form.method.toLowerCase() === "post") {
      try {
        sessionStorage.setItem(key, JSON.stringify({ y: window.scrollY, t: Date.now() }));
      } catch (_) {}
    }
  });
  try {
    var saved = JSON.parse(sessionStorage.getItem(key) || "null");
    sessionStorage.removeItem(key);
    // Only a page reached straight from that post, not a later visit.
    if (saved && Date.now() - saved.t < 10000) window.scrollTo(0, saved.y || 0);
  } catch (_) {}
})();
