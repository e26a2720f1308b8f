/*
 * Keyboard shortcuts of the dashboard, for an operator who triages with the keys (load with `defer`):
 *
 *   /        focus the page's search box ([data-search-box]), else its filter box (input.filter)
 *   j / k    move the current row down / up: job rows (tr.job-row) and other listed rows ([data-key-row])
 *   o, Enter open the current row's first link
 *   x        toggle the current row's checkbox (the bulk selection)
 *   r        retry: the current row's [data-key-action=retry] button, or the job page's
 *   ?        show the keys (dialog#key-help; also the topbar's [data-key-help] button)
 *
 * Keys typed into a field, or with Ctrl/Meta/Alt, are left alone; Escape leaves a search box. The
 * current row is remembered by its data-job-id across htmx swaps and live updates. After a swap the
 * operator asked for (or a refresh) took the focused control away, the same control in the new content
 * gets it back, else the swapped region does. Only the page's
 * .bullmq-dashboard element is read or changed, never a host page around it.
 */
(function () {
  "use strict";

  var doc = document;
  var ROOT = ".bullmq-dashboard";
  var ROWS = ROOT + " tbody tr.job-row, " + ROOT + " [data-key-row]";
  var CURRENT = "key-current";
  var current = { id: null, index: -1 };

  function rows() {
    return Array.prototype.filter.call(doc.querySelectorAll(ROWS), function (row) {
      return row.offsetParent !== null; // hidden by a filter: skipped
    });
  }

  function typing(element) {
    return (
      element &&
      (element.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(element.tagName))
    );
  }

  function mark(list, index) {
    list.forEach(function (row, i) {
      row.classList.toggle(CURRENT, i === index);
    });
    var row = list[index];
    current.index = index;
    current.id = row ? row.getAttribute("data-job-id") : null;
    if (row) row.scrollIntoView({ block: "nearest" });
  }

  function currentRow() {
    var list = rows();
    return list.indexOf(doc.querySelector(ROOT + " ." + CURRENT)) >= 0
      ? doc.querySelector(ROOT + " ." + CURRENT)
      : null;
  }

  function move(step) {
    var list = rows();
    if (!list.length) return;
    var at = list.indexOf(currentRow());
    var next;
    if (at >= 0) {
      next = Math.min(list.length - 1, Math.max(0, at + step));
    } else if (current.index >= 0) {
      // The current row went away (retried, removed, moved on): the keys go on from where it was.
      next = Math.min(list.length - 1, step > 0 ? current.index : Math.max(0, current.index - 1));
    } else {
      next = step > 0 ? 0 : list.length - 1;
    }
    mark(list, next);
  }

  // After a swap the rows are new elements: find the current one again by its id. When it is gone no
  // row is current (r or x must never act on a job the operator did not pick), until j or k.
  function restore() {
    if (current.index < 0) return;
    var list = rows();
    var index = -1;
    if (current.id !== null) {
      index = list.findIndex(function (row) {
        return row.getAttribute("data-job-id") === current.id;
      });
    }
    list.forEach(function (row, i) {
      row.classList.toggle(CURRENT, i === index);
    });
    if (index >= 0) current.index = index;
  }

  function focusSearch() {
    var box = doc.querySelector(ROOT + " [data-search-box]") || doc.querySelector(ROOT + " input.filter");
    if (!box) return false;
    box.focus();
    if (typeof box.select === "function") box.select();
    return true;
  }

  function retry() {
    var row = currentRow();
    var button = row
      ? row.querySelector('[data-key-action="retry"]')
      : doc.querySelector(ROOT + ' #job-actions [data-key-action="retry"]');
    if (!button || button.disabled) return false;
    button.click();
    return true;
  }

  function toggleSelected() {
    var row = currentRow();
    var box = row && row.querySelector('input[type="checkbox"]');
    if (!box || box.disabled) return false;
    box.checked = !box.checked;
    box.dispatchEvent(new Event("change", { bubbles: true }));
    return true;
  }

  function open() {
    var row = currentRow();
    var link = row && row.querySelector("a[href]");
    if (!link) return false;
    link.click();
    return true;
  }

  function showHelp() {
    var dialog = doc.querySelector(ROOT + " #key-help");
    if (!dialog || typeof dialog.showModal !== "function") return false;
    if (!dialog.open) dialog.showModal();
    return true;
  }

  var KEYS = {
    "/": focusSearch,
    j: function () {
      move(1);
      return true;
    },
    k: function () {
      move(-1);
      return true;
    },
    o: open,
    Enter: open,
    x: toggleSelected,
    r: retry,
    "?": showHelp,
  };

  doc.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) return;
    var active = doc.activeElement;
    if (event.key === "Escape" && active && active.matches && active.matches("[data-search-box], input.filter")) {
      active.blur();
      return;
    }
    if (typing(active)) return;
    if (event.key === "Enter" && active && active !== doc.body && !active.classList.contains(CURRENT)) return;
    if (doc.querySelector(ROOT + " dialog[open]") && event.key !== "?") return;
    var handler = Object.prototype.hasOwnProperty.call(KEYS, event.key) ? KEYS[event.key] : null;
    if (handler && handler()) event.preventDefault();
  });

  doc.addEventListener("click", function (event) {
    var target = event.target;
    if (target instanceof Element && target.closest(ROOT + " [data-key-help]")) showHelp();
  });

  doc.addEventListener("htmx:afterSettle", restore);

  // Focus after an htmx swap the operator asked for (a tab, a page link, a form): when the swap took the
  // focused element away, focus goes to the swapped region, not back to <body>, so keyboard and screen
  // reader users stay where they were. Live pushes (the socket) never move focus.
  // Where the focus was inside a region about to be swapped: the path of child positions from the
  // region, so that the same control in the new content (a refresh re-renders the same markup) gets it back.
  var focusPath = null;
  doc.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail && event.detail.target;
    var active = doc.activeElement;
    focusPath = null;
    if (!target || !active || active === doc.body || !target.contains(active)) return;
    var path = [];
    for (var node = active; node && node !== target; node = node.parentElement) {
      path.unshift(Array.prototype.indexOf.call(node.parentElement.children, node));
    }
    focusPath = { id: target.id, path: path, tag: active.tagName };
  });

  function refocus(region) {
    if (!focusPath || (focusPath.id && region.id !== focusPath.id)) return false;
    var node = region;
    for (var i = 0; node && i < focusPath.path.length; i++) node = node.children[focusPath.path[i]];
    if (!node || node.tagName !== focusPath.tag || typeof node.focus !== "function") return false;
    node.focus({ preventScroll: true });
    return doc.activeElement === node;
  }

  doc.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail && event.detail.target;
    // An outerHTML swap replaced the target itself: its successor has the same id.
    if (target && !target.isConnected && target.id) target = doc.getElementById(target.id);
    if (!target || !target.isConnected || !target.closest(ROOT)) return;
    if (!event.detail.requestConfig) return; // not a request of this page's own (a live push)
    var active = doc.activeElement;
    if (active && active !== doc.body && active.isConnected) return;
    if (refocus(target)) return; // the same control in the new content
    if (!target.hasAttribute("tabindex")) target.setAttribute("tabindex", "-1");
    target.focus({ preventScroll: true });
  });
})();
