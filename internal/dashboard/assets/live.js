// Live refresh: a page marked data-live reloads its main part every few
// seconds while it is visible and nobody is typing in it. Without this
// script every page works the same; it just does not refresh itself.
(function () {
  var main = document.querySelector("main[data-live]");
  if (!main || !window.fetch || !window.DOMParser) return;
  var every = (parseInt(main.getAttribute("data-live"), 10) || 10) * 1000;
  function busy() {
    var a = document.activeElement;
    return document.hidden || (a && /^(INPUT|SELECT|TEXTAREA)$/.test(a.tagName)) ||
      String(window.getSelection ? window.getSelection() : "") !== "";
  }
  function refresh() {
    if (busy()) return schedule();
    fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) return;
        var next = new DOMParser().parseFromString(html, "text/html").querySelector("main[data-live]");
        var cur = document.querySelector("main[data-live]");
        if (next && cur && !busy()) cur.replaceWith(document.importNode(next, true));
      })
      .catch(function () {})
      .then(schedule);
  }
  function schedule() { setTimeout(refresh, every); }
  schedule();
})();
