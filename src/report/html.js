(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var rows = Array.prototype.slice.call(document.querySelectorAll("#results tbody tr[data-status]"));
  var f = { status: $("f-status"), env: $("f-env"), category: $("f-category"), q: $("f-q") };
  var buttons = document.querySelectorAll("button[data-status]");

  function apply(save) {
    var q = f.q.value.trim().toLowerCase();
    var shown = 0;
    rows.forEach(function (r) {
      var show = (!f.status.value || r.dataset.status === f.status.value) &&
        (!f.env.value || r.dataset.env === f.env.value) &&
        (!f.category.value || r.dataset.category === f.category.value) &&
        (!q || r.textContent.toLowerCase().indexOf(q) !== -1);
      r.hidden = !show;
      if (show) shown++;
    });
    $("none").hidden = shown > 0;
    $("shown").textContent = shown + " of " + rows.length + " checks shown";
    Array.prototype.forEach.call(buttons, function (b) {
      b.classList.toggle("active", b.dataset.status === f.status.value);
    });
    if (save) {
      var p = new URLSearchParams();
      Object.keys(f).forEach(function (k) { if (f[k].value) p.set(k, f[k].value); });
      var hash = p.toString();
      try { history.replaceState(null, "", hash ? "#" + hash : location.pathname + location.search); } catch (e) { /* file: URLs in some browsers */ }
    }
  }

  function load() {
    var p = new URLSearchParams(location.hash.slice(1));
    Object.keys(f).forEach(function (k) { f[k].value = p.get(k) || ""; });
    apply(false);
  }

  Object.keys(f).forEach(function (k) { f[k].addEventListener("input", function () { apply(true); }); });
  Array.prototype.forEach.call(buttons, function (b) {
    b.addEventListener("click", function () {
      f.status.value = f.status.value === b.dataset.status ? "" : b.dataset.status;
      apply(true);
    });
  });
  window.addEventListener("hashchange", load);
  load();
})();
