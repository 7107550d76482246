(function () {
  "use strict";
  var violations = 0;
  document.addEventListener("securitypolicyviolation", function () {
    violations++;
    document.body.setAttribute("data-csp-violations", String(violations));
  });
  var colors = { accepted: "#1a7f37", rejected: "#cf222e", mixed: "#bf8700", dry_run: "#8c959f" };
  var data = JSON.parse(document.getElementById("graph-data").textContent);
  var svg = document.getElementById("graph");
  var NS = svg.namespaceURI;
  function el(name, attrs, text) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) {
      if (Object.prototype.hasOwnProperty.call(attrs, k)) e.setAttribute(k, String(attrs[k]));
    }
    if (text !== undefined) e.textContent = text;
    return e;
  }
  var defs = el("defs", {});
  Object.keys(colors).forEach(function (d) {
    var m = el("marker", { id: "arrow-" + d, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
    m.appendChild(el("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: colors[d] }));
    defs.appendChild(m);
  });
  svg.appendChild(defs);
  data.edges.forEach(function (e) {
    var c = colors[e.decision] || "#555";
    var g = el("g", { "data-edge": e.decision });
    g.appendChild(el("title", {}, e.from + " \u2192 " + e.to + ": " + e.label));
    g.appendChild(el("path", { d: e.path, fill: "none", stroke: c, "stroke-width": 2,
      "stroke-dasharray": e.decision === "dry_run" ? "5 3" : "none",
      "marker-end": "url(#arrow-" + (colors[e.decision] ? e.decision : "mixed") + ")" }));
    g.appendChild(el("text", { x: e.lx, y: e.ly, fill: "#555", "text-anchor": "middle" }, e.label));
    svg.appendChild(g);
  });
  data.nodes.forEach(function (n) {
    var g = el("g", { "data-node": "agent" });
    g.appendChild(el("title", {}, n.id + (n.findings ? " (" + n.findings + " findings)" : "")));
    g.appendChild(el("circle", { cx: n.x, cy: n.y, r: 22, fill: n.findings ? "#ffebe9" : "#ddf4ff", stroke: n.findings ? "#cf222e" : "#0969da", "stroke-width": 1.5 }));
    g.appendChild(el("text", { x: n.x, y: n.y + 38, "text-anchor": "middle" }, n.label));
    svg.appendChild(g);
  });
  svg.setAttribute("data-drawn", String(data.nodes.length + data.edges.length));
})();
