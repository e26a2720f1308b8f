/*
 * Safe destructive actions and the phone layout of the queue page (load with `defer` after htmx and
 * actions.js). No inline handlers (CSP-ready); only the page's .bullmq-dashboard element is touched.
 *
 *   - The confirm dialog (dialog#bullmq-confirm, partials/confirm_dialog.html): an htmx request from an
 *     element with [data-confirm] waits for it (htmx:confirm), never for window.confirm. Its words:
 *     data-confirm-title, data-confirm (the sentence), data-confirm-ok (the button), data-confirm-danger;
 *     a bulk form's submit button has data-confirm-selected ({selected}: how many rows are checked) and
 *     data-confirm-all (when "all" is checked). In a sentence, {<state>} is the live count of that state
 *     (nav.tabs .count[data-state]) and {total} their sum, with #queue-actions[data-counts] as fallback;
 *     {queue}, {job} and {scheduler} come from the nearest data-confirm-queue, -job, -scheduler: the
 *     sentence itself holds no data, so a job id that reads "{failed}" stays as it is.
 *     A form with data-confirm-estimate asks that URL (GET, with its state, grace and limit) for the
 *     sentence first: the Clean estimate. Cancel (or Escape) sends nothing; focus returns to the opener.
 *   - Escape closes the open <details class="menu"> (Clean, Add, Obliterate) and the phone's Actions
 *     menu, and focuses the control that opened it.
 *   - Queue actions with [data-needs-jobs="<state>"] are hidden while that state's live count is 0.
 *   - The active state tab is scrolled into view when the tabs scroll sideways.
 *   - A toast's Undo button ([data-undo]) removes its toast once its request answered.
 */
(function () {
  "use strict";

  var doc = document;
  var ROOT = ".bullmq-dashboard";

  function ownFirst(selector) {
    return doc.querySelector(ROOT + " " + selector);
  }
  function own(selector) {
    return doc.querySelectorAll(ROOT + " " + selector);
  }
  function inRoot(element) {
    return !!(element && element.closest && element.closest(ROOT));
  }

  /* ------------------------------------------------------------- counts */

  function shownNumber(text) {
    var digits = String(text || "").replace(/[^0-9]/g, "");
    return digits === "" ? null : parseInt(digits, 10);
  }

  function fallbackCounts() {
    var element = ownFirst("#queue-actions[data-counts]");
    try {
      return element ? JSON.parse(element.getAttribute("data-counts")) : {};
    } catch (e) {
      return {};
    }
  }

  // The live count of a state on this page (its tab), else the count the page was rendered with.
  function liveCount(state) {
    if (state === "total") {
      var spans = own("nav.tabs .count[data-state]");
      if (spans.length) {
        var sum = 0;
        for (var i = 0; i < spans.length; i++) sum += shownNumber(spans[i].textContent) || 0;
        return sum;
      }
    } else {
      var span = ownFirst('nav.tabs .count[data-state="' + state + '"]');
      if (span) {
        var value = shownNumber(span.textContent);
        if (value !== null) return value;
      }
    }
    var fallback = fallbackCounts()[state];
    return typeof fallback === "number" ? fallback : null;
  }

  function formatted(number) {
    try {
      return Number(number).toLocaleString(doc.documentElement.lang || undefined);
    } catch (e) {
      return String(number);
    }
  }

  // The sentence (translated by the server, holding no data) with its {names} filled in, in one pass so
  // that a value is never read again as a name: {queue}, {job}, {scheduler} from the nearest
  // data-confirm-<name> (as they are), {selected} from `extra`, {<state>} and {total} with counts.
  function filled(text, sources, extra) {
    return String(text || "").replace(/\{([a-z-]+)\}/g, function (whole, name) {
      if (extra && Object.prototype.hasOwnProperty.call(extra, name)) return formatted(extra[name]);
      if (/^(queue|job|scheduler)$/.test(name)) {
        for (var i = 0; i < sources.length; i++) {
          var holder = sources[i] && sources[i].closest("[data-confirm-" + name + "]");
          if (holder) return holder.getAttribute("data-confirm-" + name);
        }
        return whole;
      }
      var count = liveCount(name);
      return count === null ? whole : formatted(count);
    });
  }

  /* ------------------------------------------------------------- dialog */

  var dialogState = { opener: null, onConfirm: null, request: 0 };

  function dialog() {
    return ownFirst("dialog#bullmq-confirm");
  }

  function setText(box, text) {
    box.querySelector("#bullmq-confirm-text").textContent = text;
  }

  function openDialog(spec, opener, onConfirm) {
    var box = dialog();
    if (!box || typeof box.showModal !== "function") return false;
    dialogState.opener = opener;
    dialogState.onConfirm = onConfirm;
    dialogState.request += 1;
    box.querySelector("#bullmq-confirm-title").textContent =
      spec.title || box.getAttribute("data-default-title") || "";
    setText(box, spec.text || "");
    var ok = box.querySelector("[data-confirm-ok]");
    ok.textContent = spec.ok || box.getAttribute("data-default-ok") || "OK";
    ok.classList.toggle("danger", !!spec.danger);
    ok.classList.toggle("primary", !spec.danger);
    ok.disabled = !!spec.busy;
    box.returnValue = "";
    if (!box.open) box.showModal();
    var cancel = box.querySelector("[data-confirm-cancel]");
    if (cancel) cancel.focus();
    return true;
  }

  function closed() {
    var box = dialog();
    var confirmed = box && box.returnValue === "ok";
    var opener = dialogState.opener;
    var run = dialogState.onConfirm;
    dialogState.opener = null;
    dialogState.onConfirm = null;
    dialogState.request += 1; // an estimate still on its way is dropped
    if (opener && opener.isConnected && typeof opener.focus === "function") opener.focus();
    if (confirmed && run) run();
  }

  doc.addEventListener(
    "close",
    function (event) {
      if (event.target === dialog()) closed();
    },
    true
  );

  // The Clean estimate: the server's sentence (queue, state, age, count), fetched before OK is enabled.
  function estimate(form, url) {
    var box = dialog();
    var ticket = dialogState.request;
    var params = new URLSearchParams();
    ["state", "grace", "limit"].forEach(function (name) {
      var field = form.elements.namedItem(name);
      if (field && "value" in field) params.set(name, field.value);
    });
    var ok = box.querySelector("[data-confirm-ok]");
    window
      .fetch(url + (url.indexOf("?") < 0 ? "?" : "&") + params.toString(), {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      })
      .then(function (response) {
        return response.json().then(function (body) {
          if (!response.ok) throw new Error(body.error || body.message || String(response.status));
          return body;
        });
      })
      .then(function (body) {
        if (ticket !== dialogState.request) return;
        setText(box, body.message);
        box.setAttribute("data-estimate", String(body.count));
        ok.disabled = false;
      })
      .catch(function (error) {
        if (ticket !== dialogState.request) return;
        var template = box.getAttribute("data-estimate-failed") || "{error}";
        setText(box, template.replace("{error}", error && error.message ? error.message : String(error)));
        box.setAttribute("data-estimate", "");
        ok.disabled = false;
      });
  }

  // What the dialog says for a request of `elt` (a button or a form) sent by `submitter`.
  function describe(elt, submitter) {
    var source = submitter && submitter.hasAttribute("data-confirm-selected") ? submitter : elt;
    var text = elt.getAttribute("data-confirm");
    var extra = {};
    if (source === submitter) {
      var all = elt.querySelector("input[name=all]");
      if (all && all.checked) {
        text = submitter.getAttribute("data-confirm-all");
      } else {
        text = submitter.getAttribute("data-confirm-selected");
        extra.selected = own('input[name=ids][form="' + elt.id + '"]:checked').length;
      }
    }
    var sources = [submitter, elt];
    return {
      title: filled(source.getAttribute("data-confirm-title") || elt.getAttribute("data-confirm-title"), sources),
      text: filled(text, sources, extra),
      ok: (submitter && submitter.textContent.trim()) || elt.getAttribute("data-confirm-ok"),
      danger: source.hasAttribute("data-confirm-danger") || elt.hasAttribute("data-confirm-danger"),
    };
  }

  // A confirmed form request keeps the submit button that sent it (htmx forgets it when focus moves).
  var pendingSubmitter = null;

  doc.addEventListener("htmx:confirm", function (event) {
    var detail = event.detail || {};
    var elt = detail.elt;
    if (!(elt instanceof Element) || !inRoot(elt) || !elt.hasAttribute("data-confirm")) return;
    if (event.defaultPrevented) return; // e.g. a JSON editor with invalid JSON
    var trigger = detail.triggeringEvent;
    var submitter = trigger && trigger.submitter instanceof Element ? trigger.submitter : null;
    var active = doc.activeElement;
    var opener = submitter || (active && elt.contains(active) ? active : elt);
    var spec = describe(elt, submitter);
    var url = elt.getAttribute("data-confirm-estimate");
    if (url) {
      spec.text = dialog() ? dialog().getAttribute("data-counting") : "";
      spec.busy = true;
    }
    var opened = openDialog(spec, opener, function () {
      pendingSubmitter = submitter ? { form: elt, name: submitter.name, value: submitter.value } : null;
      detail.issueRequest(true);
    });
    event.preventDefault();
    if (!opened) {
      // No dialog element here (or no showModal): the browser's own confirm, with the same sentence.
      if (window.confirm(describe(elt, submitter).text || elt.getAttribute("data-confirm"))) {
        detail.issueRequest(true);
      }
      return;
    }
    if (url) estimate(elt, url);
  });

  doc.addEventListener("htmx:configRequest", function (event) {
    var pending = pendingSubmitter;
    if (!pending || !event.detail || event.detail.elt !== pending.form) return;
    pendingSubmitter = null;
    if (pending.name) event.detail.parameters[pending.name] = pending.value;
  });

  /* ------------------------------------------------------ menus, Escape */

  function toggleActions(toggle, open) {
    var menu = toggle.closest(".queue-actions");
    if (!menu) return;
    menu.classList.toggle("open", open);
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
  }

  doc.addEventListener("click", function (event) {
    var target = event.target;
    if (!(target instanceof Element)) return;
    var toggle = target.closest(ROOT + " [data-actions-toggle]");
    if (toggle) toggleActions(toggle, toggle.getAttribute("aria-expanded") !== "true");
  });

  doc.addEventListener("keydown", function (event) {
    if (event.key !== "Escape" || event.defaultPrevented) return;
    if (ownFirst("dialog[open]")) return; // the dialog closes itself (its cancel event)
    var active = doc.activeElement;
    var menus = own("details.menu[open]");
    if (menus.length) {
      var menu = null;
      for (var i = 0; i < menus.length; i++) if (menus[i].contains(active)) menu = menus[i];
      menu = menu || menus[menus.length - 1];
      menu.open = false;
      var summary = menu.querySelector("summary");
      if (summary) summary.focus();
      event.preventDefault();
      return;
    }
    var toggle = ownFirst('[data-actions-toggle][aria-expanded="true"]');
    if (toggle) {
      toggleActions(toggle, false);
      toggle.focus();
      event.preventDefault();
    }
  });

  /* ----------------------------------------- live counts, tabs, toasts */

  function syncIdle() {
    var buttons = own("#queue-actions [data-needs-jobs]");
    for (var i = 0; i < buttons.length; i++) {
      var count = liveCount(buttons[i].getAttribute("data-needs-jobs"));
      if (count === null) continue;
      var hide = count === 0;
      if (buttons[i].hidden !== hide) buttons[i].hidden = hide;
    }
  }

  function showActiveTab() {
    var tab = ownFirst("nav.tabs a.tab.active");
    var nav = tab && tab.closest("nav.tabs");
    if (!nav || nav.scrollWidth <= nav.clientWidth) return;
    var navBox = nav.getBoundingClientRect();
    var tabBox = tab.getBoundingClientRect();
    if (tabBox.left >= navBox.left && tabBox.right <= navBox.right) return;
    nav.scrollLeft += tabBox.left - navBox.left - (navBox.width - tabBox.width) / 2;
  }

  function refresh() {
    try {
      syncIdle();
      showActiveTab();
    } catch (e) {
      if (window.console) window.console.error("confirm.js", e);
    }
  }

  // htmx fires htmx:load once per inserted element: one pass per burst.
  var pending = false;
  function scheduleRefresh() {
    if (pending) return;
    pending = true;
    window.setTimeout(function () {
      pending = false;
      refresh();
    }, 0);
  }
  ["htmx:afterSettle", "htmx:wsAfterMessage", "htmx:historyRestore", "htmx:load"].forEach(function (name) {
    doc.addEventListener(name, scheduleRefresh);
  });
  if (doc.readyState === "loading") doc.addEventListener("DOMContentLoaded", refresh);
  else refresh();

  doc.addEventListener("htmx:afterRequest", function (event) {
    var elt = event.detail && event.detail.elt;
    if (!(elt instanceof Element) || !elt.hasAttribute("data-undo") || !event.detail.successful) return;
    var toast = elt.closest(".toast");
    if (toast) toast.remove();
  });
})();
