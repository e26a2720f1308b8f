// Action UI: toasts, the JSON editors' validation, and bulk selection. No inline handlers (CSP-ready).
// Only elements inside the page's .bullmq-dashboard element are touched (a host page keeps its own).
(function () {
  "use strict";

  var ROOT = ".bullmq-dashboard";
  function own(selector) {
    return document.querySelectorAll(ROOT + " " + selector);
  }
  function ownClosest(target, selector) {
    var found = target && target.closest ? target.closest(selector) : null;
    return found && found.closest(ROOT) ? found : null;
  }

  // Words from the page's JSON block (see dashboard.js), English without it.
  var WORDS = (function () {
    var element = document.getElementById("bullmq-dashboard-text");
    try {
      return element ? JSON.parse(element.textContent) : {};
    } catch (e) {
      return {};
    }
  })();
  function words(key, fallback, values) {
    var text = typeof WORDS[key] === "string" ? WORDS[key] : fallback;
    return text.replace(/%\((\w+)\)s/g, function (whole, name) {
      return values && Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : whole;
    });
  }

  // Toasts dismiss on click and fade out after a while, except while they report progress.
  document.addEventListener("click", function (event) {
    var close = ownClosest(event.target, ".toast-close");
    var toast = close && close.closest(".toast");
    if (toast) toast.remove();
  });
  function ageToasts() {
    own("#bullmq-toasts .toast:not([hx-get])").forEach(function (toast) {
      if (!toast.dataset.bornAt) toast.dataset.bornAt = String(Date.now());
      // A toast that offers Undo stays longer: time to read it and change one's mind.
      var life = toast.querySelector("[data-undo]") ? 30000 : 8000;
      if (Date.now() - Number(toast.dataset.bornAt) > life) toast.remove();
    });
  }
  setInterval(ageToasts, 1000);

  // JSON editors: show the parse error and block submitting until the JSON is valid.
  function checkJson(form) {
    var area = form.querySelector("textarea[name=data]");
    var error = form.querySelector(".json-error");
    var submits = form.querySelectorAll("button[type=submit]");
    if (!area) return true;
    try {
      JSON.parse(area.value || "null");
      if (error) { error.hidden = true; error.textContent = ""; }
      submits.forEach(function (button) { button.disabled = false; });
      return true;
    } catch (exc) {
      if (error) { error.hidden = false; error.textContent = words("invalidJson", "Not valid JSON: %(error)s", { error: exc.message }); }
      submits.forEach(function (button) { button.disabled = true; });
      return false;
    }
  }
  document.addEventListener("input", function (event) {
    var form = ownClosest(event.target, "form[data-json-editor]");
    if (form) checkJson(form);
  });
  document.addEventListener("htmx:confirm", function (event) {
    var form = ownClosest(event.target, "form[data-json-editor]");
    if (form && !checkJson(form)) event.preventDefault();
  });

  // Bulk selection: count what is selected; "page" toggles every row checkbox.
  function updateSelection() {
    var form = document.querySelector(ROOT + " #bulk-form");
    if (!form) return;
    var boxes = own('input[name=ids][form="bulk-form"]');
    var checked = Array.prototype.filter.call(boxes, function (box) { return box.checked; }).length;
    var all = form.querySelector("input[name=all]");
    var label = form.querySelector("[data-selected-count]");
    if (label) {
      label.textContent = all && all.checked
        ? words("allSelected", "all selected")
        : words("selected", "%(count)s selected", { count: checked });
    }
    form.classList.toggle("has-selection", checked > 0 || (all && all.checked));
  }
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (!(target instanceof Element) || !target.closest(ROOT)) return;
    if (target.classList.contains("select-page")) {
      own('input[name=ids][form="bulk-form"]').forEach(function (box) {
        box.checked = target.checked;
      });
    }
    if (target.closest("#bulk-form") || target.getAttribute("form") === "bulk-form") {
      updateSelection();
    }
  });
  document.addEventListener("htmx:afterSettle", updateSelection);
})();
