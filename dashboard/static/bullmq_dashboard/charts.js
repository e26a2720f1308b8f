/*
 * Throughput charts (a queue's metrics page) and sparklines (the overview's "Last hour" column), drawn
 * with the vendored uPlot (vendor/uPlot.iife.min.js, loaded before this file). Plain ES2017, no inline
 * script: a chart's data is the JSON of its data-series attribute ({x: bucket starts in seconds,
 * completed, failed: per bucket, null where nobody counted}); a sparkline's is in its data-completed /
 * data-failed attributes (comma-separated, empty where nobody counted). Gaps are drawn as gaps, never
 * as zeros. (Attributes, not <script type="application/json">: htmx inserts no script element into
 * the page, allowScriptTags being off, and a window switch is an htmx swap.)
 *
 *   - Charts are drawn when they appear: on load and after every htmx swap (htmx:load), so a window
 *     switch or a refreshed overview draws its new ones. Sparklines are drawn when they scroll into
 *     view (an overview may list a thousand queues).
 *   - Colours are the theme's (CSS custom properties, read from probe elements), and everything is
 *     redrawn when the theme changes (html[data-bullmq-theme] or the system's colour scheme).
 *   - Times are UTC, as in the tables beside them.
 *   - Every chart has a text alternative in the page (a summary and a table of the numbers, or the
 *     sparkline's totals); the canvases themselves are hidden from assistive technology.
 */
(function () {
  "use strict";

  var doc = document;
  var ROOT = ".bullmq-dashboard";
  var uPlot = window.uPlot;
  if (typeof uPlot !== "function") return;

  var drawn = []; // { el, plot, kind }
  var sparkObserver = null;

  function own(selector) {
    return doc.querySelectorAll(ROOT + " " + selector);
  }

  // The theme's colours, resolved to rgb() through probe elements styled by charts.css.
  function palette(host) {
    var probe = doc.createElement("span");
    probe.className = "chart-probe";
    probe.setAttribute("aria-hidden", "true");
    var names = ["completed", "failed", "axis", "grid"];
    var found = {};
    host.appendChild(probe);
    names.forEach(function (name) {
      probe.dataset.color = name;
      found[name] = window.getComputedStyle(probe).color;
    });
    probe.remove();
    return found;
  }

  function translucent(color, alpha) {
    var match = /rgba?\((\d+),\s*(\d+),\s*(\d+)/.exec(color);
    return match ? "rgba(" + match[1] + "," + match[2] + "," + match[3] + "," + alpha + ")" : color;
  }

  function utc(seconds) {
    return uPlot.tzDate(new Date(seconds * 1000), "Etc/UTC");
  }

  // 24-hour UTC times, as the tables beside the charts write them.
  var SHORT = uPlot.fmtDate("{HH}:{mm}");
  var DAY = uPlot.fmtDate("{MM}-{DD} {HH}:{mm}");
  var FULL = uPlot.fmtDate("{YYYY}-{MM}-{DD} {HH}:{mm} UTC");

  function tickLabels(plot, splits) {
    var span = splits.length > 1 ? splits[splits.length - 1] - splits[0] : 0;
    var format = span > 86400 ? DAY : SHORT;
    return splits.map(function (split) {
      return format(utc(split));
    });
  }

  function chartWidth(el) {
    return Math.max(240, Math.floor(el.getBoundingClientRect().width) || 600);
  }

  function drawChart(el) {
    var data;
    try {
      data = JSON.parse(el.dataset.series || "");
    } catch (e) {
      return;
    }
    var colors = palette(el);
    var axis = {
      stroke: colors.axis,
      grid: { stroke: colors.grid, width: 1 },
      ticks: { stroke: colors.grid, width: 1 },
    };
    var bars = uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.8, 40], align: 1 }) : undefined;
    var opts = {
      width: chartWidth(el),
      height: 240,
      tzDate: utc,
      cursor: { drag: { x: false, y: false } },
      scales: {
        x: { time: true },
        y: {
          range: function (plot, min, max) {
            return [0, Math.max(1, max || 0)];
          },
        },
      },
      axes: [Object.assign({ values: tickLabels }, axis), Object.assign({ size: 56 }, axis)],
      series: [
        {
          value: function (plot, seconds) {
            return seconds == null ? "--" : FULL(utc(seconds));
          },
        },
        {
          label: el.dataset.completedLabel || "completed",
          stroke: colors.completed,
          fill: translucent(colors.completed, 0.35),
          width: 1,
          paths: bars,
          points: { show: false },
        },
        {
          label: el.dataset.failedLabel || "failed",
          stroke: colors.failed,
          width: 2,
          points: { show: false },
        },
      ],
    };
    el.textContent = "";
    var plot = new uPlot(opts, [data.x, data.completed, data.failed], el);
    plot.root.setAttribute("aria-hidden", "true");
    drawn.push({ el: el, plot: plot, kind: "chart" });
  }

  function values(raw) {
    return (raw || "").split(",").map(function (item) {
      return item === "" ? null : Number(item);
    });
  }

  function drawSpark(el) {
    var completed = values(el.dataset.completed);
    var failed = values(el.dataset.failed);
    if (!completed.length) return;
    var x = completed.map(function (_value, index) {
      return index;
    });
    var top = 1;
    completed.concat(failed).forEach(function (value) {
      if (value !== null && value > top) top = value;
    });
    var colors = palette(el);
    var opts = {
      width: 56,
      height: 22,
      pxAlign: false,
      cursor: { show: false },
      legend: { show: false },
      select: { show: false },
      scales: { x: { time: false }, y: { range: [0, top] } },
      axes: [{ show: false }, { show: false }],
      series: [
        {},
        { stroke: colors.completed, fill: translucent(colors.completed, 0.25), width: 1.5, points: { show: false } },
        { stroke: colors.failed, width: 1.5, points: { show: false } },
      ],
    };
    el.textContent = "";
    var plot = new uPlot(opts, [x, completed, failed], el);
    drawn.push({ el: el, plot: plot, kind: "spark" });
  }

  function draw(el, kind) {
    el.dataset.chartDrawn = "1";
    try {
      if (kind === "chart") drawChart(el);
      else drawSpark(el);
    } catch (e) {
      if (window.console) window.console.error("charts.js", e);
    }
  }

  // Forget charts whose element a swap removed.
  function prune() {
    drawn = drawn.filter(function (entry) {
      if (doc.contains(entry.el)) return true;
      entry.plot.destroy();
      return false;
    });
  }

  function sparkSeen(entries) {
    entries.forEach(function (entry) {
      if (!entry.isIntersecting) return;
      sparkObserver.unobserve(entry.target);
      draw(entry.target, "spark");
    });
  }

  function drawNew() {
    prune();
    var charts = own("[data-throughput-chart]:not([data-chart-drawn])");
    for (var i = 0; i < charts.length; i++) draw(charts[i], "chart");
    var sparks = own("[data-sparkline]:not([data-chart-drawn])");
    for (var j = 0; j < sparks.length; j++) {
      if (!("IntersectionObserver" in window)) {
        draw(sparks[j], "spark");
        continue;
      }
      if (!sparkObserver) sparkObserver = new IntersectionObserver(sparkSeen, { rootMargin: "200px" });
      sparks[j].dataset.chartDrawn = "0";
      sparkObserver.observe(sparks[j]);
    }
  }

  // The theme changed: draw every chart again in its colours.
  function redrawAll() {
    prune();
    var again = drawn;
    drawn = [];
    again.forEach(function (entry) {
      entry.plot.destroy();
      draw(entry.el, entry.kind);
    });
  }

  var pending = false;
  function schedule() {
    if (pending) return;
    pending = true;
    window.setTimeout(function () {
      pending = false;
      drawNew();
    }, 0);
  }

  ["htmx:load", "htmx:afterSettle", "htmx:historyRestore"].forEach(function (name) {
    doc.addEventListener(name, schedule);
  });

  new MutationObserver(redrawAll).observe(doc.documentElement, {
    attributes: true,
    attributeFilter: ["data-bullmq-theme"],
  });
  if (window.matchMedia) {
    var scheme = window.matchMedia("(prefers-color-scheme: dark)");
    if (scheme.addEventListener) scheme.addEventListener("change", redrawAll);
  }

  var resizing = null;
  window.addEventListener("resize", function () {
    window.clearTimeout(resizing);
    resizing = window.setTimeout(function () {
      prune();
      drawn.forEach(function (entry) {
        if (entry.kind === "chart") entry.plot.setSize({ width: chartWidth(entry.el), height: 240 });
      });
    }, 150);
  });

  if (doc.readyState === "loading") doc.addEventListener("DOMContentLoaded", drawNew);
  else drawNew();
})();
