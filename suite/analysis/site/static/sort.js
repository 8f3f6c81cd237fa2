// Click a column's header to sort its table by that column; click again to reverse.
// Cells that start with a number ("0.1617 ± 0.00033", "98 %") sort by that number.
(function () {
  function key(cell) {
    var text = cell.textContent.trim().replace(/\u2212/g, "-");
    var number = parseFloat(text);
    return isNaN(number) ? [1, text.toLowerCase()] : [0, number];
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.querySelectorAll("th").forEach(function (th, column) {
      th.addEventListener("click", function () {
        var body = table.tBodies[0];
        var up = th.getAttribute("aria-sort") !== "ascending";
        table.querySelectorAll("th").forEach(function (other) { other.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", up ? "ascending" : "descending");
        Array.from(body.rows).sort(function (a, b) {
          var x = key(a.cells[column]), y = key(b.cells[column]);
          var order = x[0] - y[0] || (x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0);
          return up ? order : -order;
        }).forEach(function (row) { body.appendChild(row); });
      });
    });
  });
})();
