// The portal's only script, and only an improvement: every form works without it.
// A "select all" box above a license table checks or clears the table's licenses.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("input[data-select-all]").forEach(function (all) {
    var table = all.closest("table");
    var boxes = table.querySelectorAll('input[name="license"]:not(:disabled)');
    var sync = function () {
      var checked = Array.prototype.filter.call(boxes, function (b) { return b.checked; }).length;
      all.checked = checked === boxes.length;
      all.indeterminate = checked > 0 && checked < boxes.length;
    };
    all.hidden = false;
    sync();
    all.addEventListener("change", function () {
      boxes.forEach(function (b) { b.checked = all.checked; });
    });
    boxes.forEach(function (b) { b.addEventListener("change", sync); });
  });
});
