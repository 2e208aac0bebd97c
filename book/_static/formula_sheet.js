/* The formula sheet (book/formula_sheet.md): display equations shrink to fit their column.
   MathJax 3 cannot break a display equation across lines, so one wider than its column would scroll (on
   screen) or be cut off (in print's narrow columns). Once MathJax has typeset the page, and again whenever
   the layout changes (window width, print), each entry's equation gets the largest font size, down to a
   floor, at which it fits: the equation stays whole, only a little smaller. window.mpSheetFit() runs it on
   demand (tests/sitecheck.py calls it before printing the PDF). */
(function () {
  "use strict";
  // The smallest scale: on a desktop and in print every equation of the book fits at it (the site check
  // and the PDF check fail otherwise); on a phone, below it an equation scrolls in its box instead.
  var FLOOR = {desktop: 0.6, phone: 0.75, print: 0.6};

  function fit() {
    var floor = window.matchMedia("print").matches ? FLOOR.print : window.innerWidth < 700 ? FLOOR.phone : FLOOR.desktop;
    var boxes = [].slice.call(document.querySelectorAll(".mp-sheet-entry > div.math"));
    // All writes, then all reads, then all writes: one layout of the page, not one per equation.
    boxes.forEach(function (box) { box.style.fontSize = ""; });
    var sizes = boxes.map(function (box) {
      var eq = box.querySelector("mjx-container");
      return eq ? [box.clientWidth, eq.scrollWidth] : [1, 0];
    });
    boxes.forEach(function (box, i) {
      var room = sizes[i][0], need = sizes[i][1];
      if (need > room + 0.5) {
        box.style.fontSize = 100 * Math.max(floor, Math.floor(100 * room / need) / 100 - 0.01) + "%";
      }
    });
  }

  window.mpSheetFit = fit;
  function start() {
    var p = window.MathJax && window.MathJax.startup && window.MathJax.startup.promise;
    if (p) { p.then(fit); } else { setTimeout(start, 50); }
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
  var timer = null;
  window.addEventListener("resize", function () { clearTimeout(timer); timer = setTimeout(fit, 100); });
  window.matchMedia("print").addEventListener("change", fit);
  window.addEventListener("beforeprint", fit);
  window.addEventListener("afterprint", fit);
})();
