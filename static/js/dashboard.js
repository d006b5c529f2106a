/* Dashboard: keeps the "Segments" card current while a recompute runs. The card
   (templates/segments/_dashboard_card.html) carries data-live while its run goes on;
   this fetches the card again every few seconds and swaps it in, and stops once the
   run has finished. After "Recompute now" (?watch=recompute) it also waits, for a
   while, for the queued run to appear. Our own small script: nothing from another site. */
(function () {
  "use strict";

  var EVERY_MS = 3000;
  var WAIT_FOR_NEW_RUN = 40;  // polls (two minutes) for a queued run to start

  var card = document.querySelector("[data-card=segments]");
  if (!card) { return; }
  var url = card.getAttribute("data-card-url");
  var firstRun = card.getAttribute("data-run") || "";
  var waiting = /[?&]watch=recompute\b/.test(window.location.search) ? WAIT_FOR_NEW_RUN : 0;

  function wanted(node) {
    if (node.hasAttribute("data-live")) { return true; }
    // Still the run from before the click: the queued one has not started yet.
    return waiting > 0 && (node.getAttribute("data-run") || "") === firstRun;
  }

  function poll() {
    if (waiting > 0) { waiting--; }
    fetch(url, {credentials: "same-origin", headers: {"Accept": "text/html"}, cache: "no-store"})
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html === null) { return; }  // e.g. signed out: leave the card as it is, stop
        var holder = document.createElement("div");
        holder.innerHTML = html.trim();
        var fresh = holder.querySelector("[data-card=segments]");
        if (!fresh) { return; }
        card.replaceWith(fresh);
        card = fresh;
        if ((card.getAttribute("data-run") || "") !== firstRun) { waiting = 0; }
        if (wanted(card)) { window.setTimeout(poll, EVERY_MS); }
      })
      .catch(function () {
        if (wanted(card)) { window.setTimeout(poll, EVERY_MS * 2); }  // the network hiccuped: try again
      });
  }

  if (wanted(card)) { window.setTimeout(poll, EVERY_MS); }
})();
