// The job search page (search.html): "Cancel" aborts the running search request (the form's or
// "Continue searching"'s) and says so; the results of the previous step stay. No inline handlers.
(function () {
  "use strict";

  var ROOT = ".bullmq-dashboard";

  function own(selector) {
    return document.querySelectorAll(ROOT + " " + selector);
  }

  document.addEventListener("click", function (event) {
    var target = event.target;
    var cancel = target && target.closest ? target.closest(ROOT + " [data-search-cancel]") : null;
    if (!cancel || typeof htmx === "undefined") return;
    own("#search-form, [data-search-continue]").forEach(function (element) {
      htmx.trigger(element, "htmx:abort");
    });
    own("[data-search-cancelled]").forEach(function (note) {
      note.hidden = false;
    });
  });

  // A new search (or step) hides the "cancelled" note again.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var source = event.target;
    if (!source || !source.closest || !source.closest(ROOT)) return;
    if (source.id === "search-form" || source.hasAttribute("data-search-continue")) {
      own("[data-search-cancelled]").forEach(function (note) {
        note.hidden = true;
      });
    }
  });
})();
