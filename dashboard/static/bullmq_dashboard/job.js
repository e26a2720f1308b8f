/*
 * The job page's copy buttons and log filter; bound by delegation (so htmx swaps need nothing), no
 * inline script (the dashboard's CSP allows none).
 *
 *   <button class="copy-button" data-copy-text="…"> or data-copy-target="<element id>": copies that
 *   text with navigator.clipboard, or, where it is missing (plain http), a hidden textarea and
 *   execCommand("copy"); the button says data-copied / data-copy-failed for a moment.
 *   <input data-log-filter="<list id>">: hides the lines of that list (this page's lines only) that do
 *   not contain the text, case-insensitively; its data-log-filter-count element says how many match.
 */
(function () {
  "use strict";

  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "copy-scratch";
    area.style.position = "fixed";
    area.style.top = "-1000px";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var copied = false;
    try {
      copied = document.execCommand("copy");
    } catch (error) {
      copied = false;
    }
    area.remove();
    return copied ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () {
        return fallbackCopy(text);
      });
    }
    return fallbackCopy(text);
  }

  function textOf(button) {
    if (button.hasAttribute("data-copy-text")) {
      return button.getAttribute("data-copy-text");
    }
    var target = document.getElementById(button.getAttribute("data-copy-target") || "");
    return target ? target.textContent : null;
  }

  function say(button, state, label) {
    var original = button.getAttribute("data-label") || button.textContent;
    button.setAttribute("data-label", original);
    button.setAttribute("data-copy-state", state);
    if (label) {
      button.textContent = label;
    }
    window.clearTimeout(button._copyTimer);
    button._copyTimer = window.setTimeout(function () {
      button.textContent = original;
      button.removeAttribute("data-copy-state");
    }, 2000);
  }

  document.addEventListener("click", function (event) {
    var button = event.target instanceof Element ? event.target.closest("button.copy-button") : null;
    if (!button) {
      return;
    }
    event.preventDefault();
    var text = textOf(button);
    if (text === null) {
      return;
    }
    copyText(text).then(
      function () {
        say(button, "done", button.getAttribute("data-copied"));
      },
      function () {
        say(button, "failed", button.getAttribute("data-copy-failed"));
      }
    );
  });

  function applyFilter(input) {
    var list = document.getElementById(input.getAttribute("data-log-filter") || "");
    var needle = input.value.trim().toLocaleLowerCase();
    var counter = input.parentElement ? input.parentElement.querySelector("[data-log-filter-count]") : null;
    if (!list) {
      if (counter) {
        counter.textContent = "";
      }
      return;
    }
    var lines = list.querySelectorAll(":scope > li");
    var shown = 0;
    lines.forEach(function (line) {
      var match = !needle || line.textContent.toLocaleLowerCase().indexOf(needle) !== -1;
      line.hidden = !match;
      if (match) {
        shown += 1;
      }
    });
    if (counter) {
      counter.textContent = needle
        ? (counter.getAttribute("data-template") || "%(shown)s of %(total)s")
            .replace("%(shown)s", String(shown))
            .replace("%(total)s", String(lines.length))
        : "";
    }
  }

  function applyAll() {
    document.querySelectorAll("input[data-log-filter]").forEach(applyFilter);
  }

  document.addEventListener("input", function (event) {
    if (event.target instanceof HTMLInputElement && event.target.hasAttribute("data-log-filter")) {
      applyFilter(event.target);
    }
  });
  // A new log page (or a live update of this one) is filtered like the one it replaced.
  document.addEventListener("htmx:afterSwap", applyAll);
  document.addEventListener("htmx:oobAfterSwap", applyAll);
  document.addEventListener("bullmq-dashboard:swapped", applyAll);
})();
