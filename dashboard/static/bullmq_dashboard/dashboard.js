/*
 * BullMQ dashboard behaviour. Plain ES2017, no dependencies; load with `defer` after htmx.
 * No inline handlers: everything is bound here, so a strict CSP only needs 'self' for scripts.
 *
 * theme.js (loaded in <head> without defer, before the stylesheet) applies a stored theme before
 * first paint:
 *
 *   <script src="{% static 'bullmq_dashboard/theme.js' %}"></script>
 *
 * What it does:
 *   - #theme-toggle cycles auto -> dark -> light -> auto (localStorage "bullmq-dashboard-theme",
 *     html[data-bullmq-theme] set for dark/light, removed for auto).
 *   - time.rel[datetime] shows "12 s ago" / "in 5 min"; title = local time + " (" + ISO + ")".
 *   - Words it shows come from the page's <script type="application/json" id="bullmq-dashboard-text">
 *     (the {% script_text %} tag: Django's translations of the active language), English without it.
 *     Refreshed every 15 s and after every htmx swap.
 *   - input.filter[data-filter-target="<selector>"] hides matching elements whose data-name
 *     does not contain the text (case-insensitive), hides a section.queue-group whose rows are
 *     all hidden, mirrors the text in ?q= (history.replaceState) and applies ?q= on load.
 *     Optional: data-filter-empty="<selector>" names an element shown only when nothing matches.
 *   - Live updates (the htmx ws extension on [data-live-socket]): #live-paused is shown while the
 *     socket is closed, and meanwhile the page is fetched every data-live-poll ms and its
 *     [data-live][id] elements replace the current ones. Closes the extension does not retry
 *     (1000/1001 on a server restart) are retried here with backoff. #log-pager takes pushed
 *     pages only while it shows the last page. The "n new jobs" button (#live-new-jobs) is
 *     clicked by itself when the list is scrolled to the top and nothing in it is selected.
 *
 * Everything it reads or changes is inside the page's .bullmq-dashboard element (ROOT), so a host
 * page around it keeps its own #theme-toggle, filter boxes and time elements (keys.js: the keys). What stays
 * page-global: html[data-bullmq-theme] and the <meta name="htmx-config"> of layout.html, which
 * configures htmx for the whole page.
 */
(function () {
  "use strict";

  var doc = document;
  var root = doc.documentElement;
  var ROOT = ".bullmq-dashboard";

  // The dashboard's own elements matching `selector` (never a host page's).
  function own(selector) {
    return doc.querySelectorAll(ROOT + " " + selector);
  }

  function ownFirst(selector) {
    return doc.querySelector(ROOT + " " + selector);
  }

  /* ---------------------------------------------------------------- words */

  var WORDS = (function () {
    var element = doc.getElementById("bullmq-dashboard-text");
    try {
      return element ? JSON.parse(element.textContent) : {};
    } catch (e) {
      return {};
    }
  })();

  // The translated words of `key` (English `fallback` without them), with %(name)s filled in.
  function words(key, fallback, values) {
    var text = typeof WORDS[key] === "string" ? WORDS[key] : fallback;
    return text.replace(/%\((\w+)\)s/g, function (whole, name) {
      return values && Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : whole;
    });
  }

  /* ---------------------------------------------------------------- theme */

  var THEME_KEY = "bullmq-dashboard-theme";
  var THEME_ORDER = ["auto", "dark", "light"];
  var THEME_LABEL = {
    auto: words("themeAuto", "\u25D0 Auto"),
    dark: words("themeDark", "\u263E Dark"),
    light: words("themeLight", "\u2600 Light"),
  };
  var THEME_NAME = {
    auto: words("auto", "auto"),
    dark: words("dark", "dark"),
    light: words("light", "light"),
  };

  function storedTheme() {
    var value = null;
    try {
      value = window.localStorage.getItem(THEME_KEY);
    } catch (e) {
      /* storage disabled */
    }
    return value === "dark" || value === "light" ? value : "auto";
  }

  function showTheme(mode) {
    var button = ownFirst("#theme-toggle");
    if (!button) return;
    var next = THEME_ORDER[(THEME_ORDER.indexOf(mode) + 1) % THEME_ORDER.length];
    button.textContent = THEME_LABEL[mode];
    var names = { mode: THEME_NAME[mode], next: THEME_NAME[next] };
    button.setAttribute("aria-label", words("themeLabel", "Theme: %(mode)s (switch to %(next)s)", names));
    button.title = words("themeTitle", "Theme: %(mode)s \u2014 click for %(next)s", names);
    button.dataset.mode = mode;
  }

  var currentTheme = "auto";

  function applyTheme(mode) {
    currentTheme = mode === "dark" || mode === "light" ? mode : "auto";
    if (currentTheme === "auto") {
      delete root.dataset.bullmqTheme;
    } else {
      root.dataset.bullmqTheme = currentTheme;
    }
    showTheme(currentTheme);
  }

  function cycleTheme() {
    var next = THEME_ORDER[(THEME_ORDER.indexOf(currentTheme) + 1) % THEME_ORDER.length];
    try {
      if (next === "auto") window.localStorage.removeItem(THEME_KEY);
      else window.localStorage.setItem(THEME_KEY, next);
    } catch (e) {
      /* storage disabled: the switch still holds for this page */
    }
    applyTheme(next);
  }

  // A stored choice wins; with none, keep whatever the page (or the <head> snippet) set.
  var initialTheme = storedTheme();
  applyTheme(initialTheme !== "auto" ? initialTheme : root.dataset.bullmqTheme);

  doc.addEventListener("click", function (event) {
    var target = event.target;
    if (!(target instanceof Element)) return;
    if (target.closest(ROOT + " #theme-toggle")) cycleTheme();
  });

  // Keep several open tabs in step.
  window.addEventListener("storage", function (event) {
    if (event.key === THEME_KEY || event.key === null) applyTheme(storedTheme());
  });

  /* ------------------------------------------------------- relative times */

  function parseIso(value) {
    if (!value) return NaN;
    // Trim fractions finer than milliseconds (Python isoformat), which some engines reject.
    var normalised = value.trim().replace(/(\.\d{3})\d+/, "$1");
    return Date.parse(normalised);
  }

  function relativeText(then, now) {
    var diff = Math.round((now - then) / 1000);
    var future = diff < 0;
    var s = Math.abs(diff);
    var text;
    if (s < 1) return words("justNow", "just now");
    if (s < 60) text = words("seconds", "%(n)s s", { n: s });
    else if (s < 3600) text = words("minutes", "%(n)s min", { n: Math.floor(s / 60) });
    else if (s < 86400) text = words("hours", "%(n)s h", { n: Math.floor(s / 3600) });
    else text = words("days", "%(n)s d", { n: Math.floor(s / 86400) });
    return future ? words("in", "in %(time)s", { time: text }) : words("ago", "%(time)s ago", { time: text });
  }

  function updateTimes() {
    var now = Date.now();
    var nodes = own("time.rel[datetime]");
    for (var i = 0; i < nodes.length; i++) {
      var el = nodes[i];
      var iso = el.getAttribute("datetime");
      var then = parseIso(iso);
      if (isNaN(then)) continue;
      var text = relativeText(then, now);
      if (el.textContent !== text) el.textContent = text;
      if (el.dataset.relIso !== iso) {
        el.title = new Date(then).toLocaleString() + " (" + iso + ")";
        el.dataset.relIso = iso;
      }
    }
  }

  /* --------------------------------------------------------------- filter */

  var FILTER_INPUT = ROOT + " input.filter[data-filter-target]";

  function queryAll(base, selector) {
    try {
      return base.querySelectorAll(selector);
    } catch (e) {
      return []; // bad selector in the template: do nothing rather than throw
    }
  }

  function urlQuery() {
    try {
      return new URL(window.location.href).searchParams.get("q") || "";
    } catch (e) {
      return "";
    }
  }

  function applyFilter(input) {
    var selector = input.getAttribute("data-filter-target");
    if (!selector) return;
    var needle = input.value.trim().toLowerCase();
    var scope = input.closest(ROOT) || doc;
    var rows = queryAll(scope, selector);
    var shown = 0;
    for (var i = 0; i < rows.length; i++) {
      var name = (rows[i].getAttribute("data-name") || "").toLowerCase();
      var hide = needle !== "" && name.indexOf(needle) === -1;
      if (rows[i].hidden !== hide) rows[i].hidden = hide;
      if (!hide) shown++;
    }
    var groups = scope.querySelectorAll("section.queue-group");
    for (var g = 0; g < groups.length; g++) {
      var groupRows = queryAll(groups[g], selector);
      if (!groupRows.length) continue;
      var allHidden = true;
      for (var r = 0; r < groupRows.length; r++) {
        if (!groupRows[r].hidden) {
          allHidden = false;
          break;
        }
      }
      if (groups[g].hidden !== allHidden) groups[g].hidden = allHidden;
    }
    var emptySelector = input.getAttribute("data-filter-empty");
    if (emptySelector) {
      var empties = queryAll(scope, emptySelector);
      for (var e = 0; e < empties.length; e++) {
        empties[e].hidden = !(needle !== "" && rows.length > 0 && shown === 0);
      }
    }
  }

  function rememberFilter(input) {
    try {
      var url = new URL(window.location.href);
      var value = input.value.trim();
      if (value) url.searchParams.set("q", value);
      else url.searchParams.delete("q");
      if (url.href !== window.location.href) {
        window.history.replaceState(window.history.state, "", url.href);
      }
    } catch (e) {
      /* old browser or sandboxed document: filtering still works */
    }
  }

  function initFilters() {
    var inputs = doc.querySelectorAll(FILTER_INPUT);
    for (var i = 0; i < inputs.length; i++) {
      var input = inputs[i];
      if (!input.dataset.filterReady) {
        input.dataset.filterReady = "1";
        var q = urlQuery();
        if (q && !input.value) input.value = q;
      }
      applyFilter(input);
    }
  }

  doc.addEventListener("input", function (event) {
    var target = event.target;
    if (!(target instanceof Element) || !target.matches(FILTER_INPUT)) return;
    applyFilter(target);
    rememberFilter(target);
  });

  /* --------------------------------------------------------- live updates */

  // The htmx ws extension owns the socket ([data-live-socket][ws-connect]) and swaps every pushed
  // element by id. It reconnects by itself (with jittered backoff) after abnormal closes only.
  var EXT_RETRIES = [1006, 1011, 1012, 1013];
  var BANNER_DELAY_MS = 1000;
  var live = { open: false, retry: 0, bannerTimer: 0, pollTimer: 0, autoTimer: 0, lastAuto: 0 };

  function liveSocket() {
    return ownFirst("[data-live-socket]");
  }

  function showPaused(show) {
    var banner = ownFirst("#live-paused");
    if (banner && banner.hidden === show) banner.hidden = !show;
  }

  function pollInterval() {
    var socket = liveSocket();
    var ms = socket ? parseInt(socket.getAttribute("data-live-poll") || "", 10) : NaN;
    return isNaN(ms) || ms < 1000 ? 5000 : ms;
  }

  function following(pager) {
    return pager.getAttribute("data-log-page") === pager.getAttribute("data-log-pages");
  }

  // While the socket is down: fetch the page and put its fresh [data-live] elements in place.
  function applyPolled(fresh) {
    var nodes = own("[data-live][id]");
    for (var i = 0; i < nodes.length; i++) {
      var current = nodes[i];
      var next = fresh.querySelector(ROOT + " #" + window.CSS.escape(current.id));
      if (!next || !next.hasAttribute("data-live")) continue;
      if (current.id === "log-pager" && !following(current)) continue;
      if (current.outerHTML === next.outerHTML) continue;
      var copy = doc.importNode(next, true);
      current.replaceWith(copy);
      if (window.htmx) window.htmx.process(copy);
    }
    scheduleRefresh();
  }

  function pollOnce() {
    live.pollTimer = 0;
    if (live.open || !liveSocket()) return;
    var next = function () {
      if (!live.open && liveSocket()) live.pollTimer = window.setTimeout(pollOnce, pollInterval());
    };
    if (doc.visibilityState !== "visible") return next();
    window
      .fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (!response.ok || response.redirected) throw new Error("poll: " + response.status);
        return response.text();
      })
      .then(function (html) {
        if (!live.open) applyPolled(new DOMParser().parseFromString(html, "text/html"));
      })
      .catch(function () {
        /* the banner already says updates are paused */
      })
      .then(next);
  }

  function startPolling() {
    if (!live.pollTimer) live.pollTimer = window.setTimeout(pollOnce, pollInterval());
  }

  function stopPolling() {
    window.clearTimeout(live.pollTimer);
    live.pollTimer = 0;
  }

  doc.addEventListener("htmx:wsOpen", function () {
    live.open = true;
    live.retry = 0;
    window.clearTimeout(live.bannerTimer);
    live.bannerTimer = 0;
    stopPolling();
    showPaused(false);
  });

  doc.addEventListener("htmx:wsClose", function (event) {
    var elt = event.target;
    if (!(elt instanceof Element) || !elt.isConnected) return; // its page part was swapped away
    live.open = false;
    var detail = event.detail || {};
    var code = detail.event ? detail.event.code : 1006;
    var wrapper = detail.socketWrapper;
    if (EXT_RETRIES.indexOf(code) < 0 && wrapper && typeof wrapper.reconnect === "function") {
      // e.g. 1000/1001 when the server restarts: the extension leaves those closed.
      var delay = Math.min(30000, 1000 * Math.pow(2, Math.min(live.retry, 5))) * (0.5 + Math.random() / 2);
      live.retry += 1;
      window.setTimeout(function () {
        if (!live.open && elt.isConnected) wrapper.reconnect();
      }, delay);
    }
    // Failed reconnects close again and again: keep the first timer, do not restart it.
    if (live.bannerTimer) return;
    live.bannerTimer = window.setTimeout(function () {
      live.bannerTimer = 0;
      if (live.open) return;
      showPaused(true);
      startPolling();
    }, BANNER_DELAY_MS);
  });

  // The live socket says the set of firing alerts changed: fetch this page's banner again (what each
  // page may show depends on its user, so the push itself carries no alert).
  doc.addEventListener("htmx:oobAfterSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (!target || target.id !== "bullmq-alerts-nudge" || !window.htmx) return;
    var banner = ownFirst("#bullmq-alerts");
    if (banner) window.htmx.trigger(banner, "bullmq-alerts-changed");
  });

  // Follow the logs only while the last log page is shown.
  doc.addEventListener("htmx:oobBeforeSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (target && target.id === "log-pager" && !following(target)) event.preventDefault();
  });

  // "n new jobs — show": shown as a button, applied by itself when the list is at the top and the
  // user has not selected rows or text in it (at most every 2 s).
  function listUndisturbed() {
    if ((window.scrollY || root.scrollTop || 0) > 40) return false;
    if (doc.visibilityState !== "visible") return false;
    if (ownFirst("#job-list input[type=checkbox]:checked")) return false;
    var selection = window.getSelection ? window.getSelection() : null;
    return !(selection && !selection.isCollapsed);
  }

  function showNewJobs() {
    var button = ownFirst("#live-new-jobs button[data-new-jobs]");
    if (!button || !listUndisturbed() || !window.htmx) return;
    var wait = live.lastAuto + 2000 - Date.now();
    if (wait > 0) {
      if (!live.autoTimer) {
        live.autoTimer = window.setTimeout(function () {
          live.autoTimer = 0;
          showNewJobs();
        }, wait);
      }
      return;
    }
    live.lastAuto = Date.now();
    window.htmx.trigger(button, "click");
  }

  // Back at the top, rows or text unselected: show what arrived meanwhile.
  var settleTimer = 0;
  function showNewJobsSoon() {
    window.clearTimeout(settleTimer);
    settleTimer = window.setTimeout(showNewJobs, 200);
  }
  window.addEventListener("scroll", showNewJobsSoon, { passive: true });
  doc.addEventListener("change", showNewJobsSoon);
  doc.addEventListener("selectionchange", showNewJobsSoon);

  // A queue row is dimmed while its name cell holds the paused flag (the cell is pushed live).
  function syncPausedRows() {
    var rows = own("tr.queue-row");
    for (var i = 0; i < rows.length; i++) {
      var paused = !!rows[i].querySelector('[data-state="paused-flag"]');
      if (rows[i].classList.contains("is-paused") !== paused) rows[i].classList.toggle("is-paused", paused);
    }
  }

  doc.addEventListener("htmx:wsAfterMessage", function () {
    syncPausedRows();
    showNewJobs();
  });

  /* ------------------------------------------------------------- wiring */

  function refresh() {
    try {
      showTheme(currentTheme);
      updateTimes();
      initFilters();
    } catch (e) {
      if (window.console) window.console.error("dashboard.js", e);
    }
  }

  // htmx fires htmx:load once per inserted element; coalesce a burst into one pass.
  var pending = false;
  function scheduleRefresh() {
    if (pending) return;
    pending = true;
    window.setTimeout(function () {
      pending = false;
      refresh();
    }, 0);
  }

  ["htmx:load", "htmx:afterSettle", "htmx:wsAfterMessage", "htmx:historyRestore"].forEach(function (name) {
    doc.addEventListener(name, scheduleRefresh);
  });

  window.setInterval(function () {
    try {
      updateTimes();
    } catch (e) {
      /* never let the timer die noisily */
    }
  }, 15000);

  doc.addEventListener("visibilitychange", function () {
    if (doc.visibilityState === "visible") scheduleRefresh();
  });

  if (doc.readyState === "loading") {
    doc.addEventListener("DOMContentLoaded", refresh);
  } else {
    refresh();
  }
})();
