// Applies the stored theme (localStorage "bullmq-dashboard-theme") before first paint. Load it in <head>,
// synchronously (no defer/async) and before the stylesheet; dashboard.js owns the toggle. A file rather
// than an inline snippet, so a Content-Security-Policy of script-src 'self' needs no hash or nonce.
(function () {
  try {
    var theme = window.localStorage.getItem("bullmq-dashboard-theme");
    if (theme === "dark" || theme === "light") document.documentElement.dataset.bullmqTheme = theme;
  } catch (e) {
    /* storage disabled: the system theme applies */
  }
})();
