// The report's leaderboard table (harness/report/html.py): rows from the page's JSON (#board-data),
// one page of rows in the DOM at a time (fast at any size), sorting by a heading, filtering by text.
// Bundled into the page: no CDN, works offline.
(function () {
  var el = document.getElementById("board-data"); if (!el) return;
  var data = JSON.parse(el.textContent), cols = data.columns, rows = data.rows;
  var PAGE = 50, page = 0, sortCol = -1, asc = true, shown = rows;
  var table = document.getElementById("board"), filter = document.getElementById("board-filter");
  var rankedOnly = document.getElementById("board-ranked"), count = document.getElementById("board-count");
  function key(v) { return Array.isArray(v) ? (v.length && Array.isArray(v[0]) ? v.map(function (p) { return p[1]; }).join(" ") : v[0]) : v; }
  function text(v) { return Array.isArray(v) ? (v.length && Array.isArray(v[0]) ? v.map(function (p) { return p[1]; }).join(" ") : v[1]) : (v === null ? "" : String(v)); }
  var head = document.createElement("tr");
  cols.forEach(function (c, i) {
    var th = document.createElement("th"); th.textContent = c.title.replace(/([_@])/g, "\u200b$1"); th.title = c.label;  // breaks at _ and @
    th.onclick = function () { asc = sortCol === i ? !asc : true; sortCol = i; page = 0; update(); };
    head.appendChild(th);
  });
  table.tHead.appendChild(head);
  function update() {
    var q = filter.value.toLowerCase(), rankCol = cols.findIndex(function (c) { return c.name === "rank"; });
    shown = rows.filter(function (r) {
      if (rankedOnly.checked && rankCol >= 0 && r[rankCol] === null) return false;
      return !q || r.some(function (v) { return text(v).toLowerCase().indexOf(q) >= 0; });
    });
    if (sortCol >= 0) {
      shown = shown.slice().sort(function (a, b) {
        var x = key(a[sortCol]), y = key(b[sortCol]);
        if (x === null || x === undefined || x === "") return 1; if (y === null || y === undefined || y === "") return -1;
        return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
      });
    }
    Array.prototype.forEach.call(head.children, function (th, i) { th.className = i === sortCol ? (asc ? "asc" : "desc") : ""; });
    var pages = Math.max(1, Math.ceil(shown.length / PAGE)); page = Math.min(page, pages - 1);
    var body = document.createElement("tbody");
    shown.slice(page * PAGE, (page + 1) * PAGE).forEach(function (r) {
      var tr = document.createElement("tr");
      r.forEach(function (v, i) {
        var td = document.createElement("td"), c = cols[i];
        if (c.name === "flags") {
          td.className = "flags";
          v.forEach(function (p) {
            var s = document.createElement("span"); s.className = "badge " + ({"quality gate": "amber", "soundness": "red", "unsound": "red", "latency only": "blue"}[p[0]] || "grey");
            s.textContent = p[0]; s.title = p[1]; td.appendChild(s);
          });
        } else if (c.name === "method_params" || c.name === "backend_params") {
          td.className = "wrap"; td.textContent = text(v).replace(/,/g, ",\u200b");  // long parameters wrap
        } else { td.textContent = text(v); if (c.num) td.className = "num"; }
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    table.replaceChild(body, table.tBodies[0]);
    count.textContent = shown.length ? "rows " + (page * PAGE + 1) + "-" + Math.min(shown.length, (page + 1) * PAGE) + " of " + shown.length + " (page " + (page + 1) + " of " + pages + ")" : "no rows match";
  }
  filter.oninput = function () { page = 0; update(); };
  rankedOnly.onchange = function () { page = 0; update(); };
  document.getElementById("board-prev").onclick = function () { if (page > 0) { page--; update(); } };
  document.getElementById("board-next").onclick = function () { if ((page + 1) * PAGE < shown.length) { page++; update(); } };
  update();
})();
