(function () {
  "use strict";
  var R = JSON.parse(document.getElementById("trace").textContent);
  var byIndex = {};
  R.steps.forEach(function (s) { byIndex[s.index] = s; });
  var boxes = Array.prototype.slice.call(document.querySelectorAll("#lanes .step"));
  var panel = document.getElementById("details-body");
  var selected = null;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function eventText(task, e) {
    var k = e[0];
    if (k === "op") return task + " > " + e.slice(1).join(" ");
    if (k === "ret") return task + " < " + e[1] + " = " + e[2];
    if (k === "block") return task + " blocks on " + e[1];
    if (k === "inject") return task + " fault injected: " + e[1] + " fails";
    if (k === "done") return task + " exits";
    return task + " " + e.join(" ");
  }
  function show(idx) {
    var s = byIndex[idx];
    if (!s) return;
    panel.textContent = "";
    var h = el("h2", null, "step " + s.index + " \u00b7 " + s.task);
    panel.appendChild(h);
    var dl = el("dl");
    [["label", s.label], ["objects", s.objects || "-"], ["result", s.result || "-"]]
      .forEach(function (kv) {
        dl.appendChild(el("dt", null, kv[0]));
        dl.appendChild(el("dd", null, kv[1]));
      });
    if (R.conflict && (R.conflict.first === s.index || R.conflict.second === s.index)) {
      var role = R.conflict.second === s.index ? "B, the access the oracle follows from"
                                               : "A, the previous access";
      dl.appendChild(el("dt", null, "conflict"));
      dl.appendChild(el("dd", null, "access " + role + " (" + R.conflict.object + ")"));
    }
    panel.appendChild(dl);
    panel.appendChild(el("h3", null, "changes (" + s.changes.length + ")"));
    if (s.changes.length) {
      var t = el("table", "changes");
      s.changes.forEach(function (c) {
        var tr = el("tr");
        tr.appendChild(el("td", "field", c[0] + "." + c[1]));
        tr.appendChild(el("td", "before", c[2]));
        tr.appendChild(el("td", "arrow", "\u2192"));
        tr.appendChild(el("td", "after", c[3]));
        t.appendChild(tr);
      });
      panel.appendChild(t);
    } else {
      panel.appendChild(el("p", "hint", "no state changed"));
    }
    if (s.events.length) {
      panel.appendChild(el("h3", null, "events"));
      var ul = el("ul", "events");
      s.events.forEach(function (e) { ul.appendChild(el("li", null, eventText(s.task, e))); });
      panel.appendChild(ul);
    }
    if (s.state && s.state.length) {
      panel.appendChild(el("h3", null, "state after"));
      var us = el("ul", "state");
      s.state.forEach(function (line) { us.appendChild(el("li", null, line)); });
      panel.appendChild(us);
    }
    panel.setAttribute("data-step", String(s.index));
  }
  function select(box) {
    if (selected && selected !== box) selected.classList.remove("selected");
    selected = box;
    box.classList.add("selected");
    show(+box.getAttribute("data-step"));
    var hash = "#" + box.id;
    if (location.hash !== hash) {
      try { history.replaceState(null, "", hash); } catch (err) { location.hash = hash; }
    }
  }
  boxes.forEach(function (b) {
    b.addEventListener("mouseenter", function () { show(+b.getAttribute("data-step")); });
    b.addEventListener("mouseleave", function () {
      if (selected) show(+selected.getAttribute("data-step"));
    });
    b.addEventListener("focus", function () { select(b); });
    b.addEventListener("click", function () { b.focus(); });
  });
  function move(delta) {
    if (!boxes.length) return;
    var i = selected ? boxes.indexOf(selected) : (delta > 0 ? -1 : boxes.length);
    i = Math.max(0, Math.min(boxes.length - 1, i + delta));
    var b = boxes[i];
    b.focus({ preventScroll: true });
    if (selected !== b) select(b);
    b.scrollIntoView({ block: "nearest", inline: "nearest" });
  }
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var t = e.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.isContentEditable)) return;
    if (e.key === "j") { move(1); e.preventDefault(); }
    else if (e.key === "k") { move(-1); e.preventDefault(); }
  });
  document.querySelectorAll('a[href^="#step-"]').forEach(function (a) {
    a.addEventListener("click", function (e) {
      var b = document.getElementById(a.getAttribute("href").slice(1));
      if (!b) return;
      e.preventDefault();
      b.focus({ preventScroll: true });
      b.scrollIntoView({ block: "center" });
    });
  });

  // the conflicting pair: an arrow from A to B labelled with the shared object
  function drawArrow() {
    var svg = document.getElementById("arrows");
    var lanes = document.getElementById("lanes");
    if (!svg || !lanes || !R.conflict) return;
    var a = document.getElementById("step-" + R.conflict.first);
    var b = document.getElementById("step-" + R.conflict.second);
    if (!a || !b || a === b) return;
    svg.setAttribute("width", lanes.scrollWidth);
    svg.setAttribute("height", lanes.scrollHeight);
    var ax = a.offsetLeft, ay = a.offsetTop + a.offsetHeight / 2;
    var bx = b.offsetLeft, by = b.offsetTop + b.offsetHeight / 2;
    var x1, x2, c1, c2, d;
    if (a.offsetLeft === b.offsetLeft) {            // same lane: bulge out to the right
      x1 = ax + a.offsetWidth; x2 = bx + b.offsetWidth;
      var out = Math.min(60, Math.max(24, (by - ay) / 4));
      d = "M" + x1 + "," + ay + " C" + (x1 + out) + "," + ay + " " +
          (x2 + out) + "," + by + " " + x2 + "," + by;
    } else {
      var right = bx > ax;
      x1 = right ? ax + a.offsetWidth : ax;
      x2 = right ? bx : bx + b.offsetWidth;
      var k = (right ? 1 : -1) * Math.max(30, Math.abs(x2 - x1) / 2);
      c1 = (x1 + k) + "," + ay; c2 = (x2 - k) + "," + by;
      d = "M" + x1 + "," + ay + " C" + c1 + " " + c2 + " " + x2 + "," + by;
    }
    var path = document.getElementById("conflict-path");
    path.setAttribute("d", d);
    var label = document.getElementById("conflict-label");
    var bg = document.getElementById("conflict-label-bg");
    var mid = path.getPointAtLength(path.getTotalLength() / 2);
    label.setAttribute("x", mid.x);
    label.setAttribute("y", mid.y + 4);
    var bb = label.getBBox();
    // beside the curve, on A's side (B's lane is usually busy up to B)
    var lx = bx >= ax ? mid.x - bb.width - 8 : mid.x + 8;
    label.setAttribute("x", lx);
    bb = label.getBBox();
    bg.setAttribute("x", bb.x - 3); bg.setAttribute("y", bb.y - 1);
    bg.setAttribute("width", bb.width + 6); bg.setAttribute("height", bb.height + 2);
  }
  drawArrow();
  window.addEventListener("resize", drawArrow);
  window.addEventListener("load", drawArrow);

  // the replay command: copy it, or select it where the clipboard is not available
  var btn = document.getElementById("copy-replay"), code = document.getElementById("replay");
  if (btn && code) {
    btn.addEventListener("click", function () {
      var text = code.textContent;
      function done(msg) {
        btn.textContent = msg;
        setTimeout(function () { btn.textContent = "copy"; }, 2000);
      }
      function fallback() {
        var r = document.createRange();
        r.selectNodeContents(code);
        var sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(r);
        var ok = false;
        try { ok = document.execCommand("copy"); } catch (err) { ok = false; }
        done(ok ? "copied" : "selected: press Ctrl+C");
      }
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(function () { done("copied"); }, fallback);
      } else {
        fallback();
      }
    });
  }

  // a link to #step-N selects that step
  var m = /^#step-(\d+)$/.exec(location.hash);
  if (m) {
    var b0 = document.getElementById("step-" + m[1]);
    if (b0) { b0.focus({ preventScroll: true }); b0.scrollIntoView({ block: "center" }); }
  }
})();
