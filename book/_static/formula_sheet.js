/* The formula sheet (book/formula_sheet.md): display equations shrink to fit their column.
   MathJax 3 cannot break a display equation across lines, so one wider than its column would scroll (on
   screen) or be cut off (in print's narrow columns). Whenever MathJax has typeset equations, and whenever
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
  // MathJax typesets lazily (the equations in view first, the others as they scroll into view), so the
  // sheet is fitted after every typesetting pass: a render action after MathJax's last one (this script
  // runs after the page's MathJax configuration and before MathJax itself, which is deferred).
  var mj = window.MathJax = window.MathJax || {};
  mj.options = mj.options || {};
  mj.options.renderActions = Object.assign({}, mj.options.renderActions, {mpSheetFit: [10000, fit, function () {}]});
  var timer = null;
  window.addEventListener("resize", function () { clearTimeout(timer); timer = setTimeout(fit, 100); });
  window.matchMedia("print").addEventListener("change", fit);
  window.addEventListener("beforeprint", fit);
  window.addEventListener("afterprint", fit);
})();
