// Refresh a server-rendered fragment without reloading the page: every element with
// data-poll-url is replaced by that URL's HTML every data-poll-seconds (default 15).
// Listeners hear "aftercare:updated" after each swap. Paused while the tab is hidden; a
// failed fetch keeps the old content and tries again.
(function () {
  "use strict";
  function start(el) {
    var seconds = Number(el.dataset.pollSeconds || 15);
    function tick() {
      if (document.hidden) { return; }
      fetch(el.dataset.pollUrl, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
        .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.text(); })
        .then(function (html) {
          el.innerHTML = html;
          el.dataset.pollCount = String(Number(el.dataset.pollCount || 0) + 1);
          // Charts in the fragment (static/chart.js) redraw from its new JSON.
          el.dispatchEvent(new CustomEvent("aftercare:updated", { bubbles: true }));
        })
        .catch(function () { /* keep the last good figures; the next tick retries */ });
    }
    setInterval(tick, seconds * 1000);
  }
  document.querySelectorAll("[data-poll-url]").forEach(start);
})();
