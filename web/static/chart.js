// Telemetry charts from the store's rollups (GET /api/v1/assets/<id>/telemetry), drawn with
// the vendored uPlot: one chart per metric, mean as a line with the min..max band, alert and
// work-order times as vertical markers. Range buttons reload at the matching resolution.
(function () {
  "use strict";
  var COLORS = ["#0b6bcb", "#b7791f", "#1a7f37", "#b42318", "#6941c6", "#0e7490"];

  function group(rows) {
    var byMetric = {};
    rows.forEach(function (r) {
      var key = r.metric + (r.device ? " · " + r.device : "");
      (byMetric[key] = byMetric[key] || []).push(r);
    });
    return byMetric;
  }

  function markerPlugin(markers) {
    return { hooks: { draw: [function (u) {
      var ctx = u.ctx; ctx.save();
      markers.forEach(function (m) {
        var x = u.valToPos(m.t, "x", true);
        if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) { return; }
        ctx.strokeStyle = m.kind === "alert" ? "#b42318" : "#1a7f37";
        ctx.setLineDash([4, 4]); ctx.beginPath();
        ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
      });
      ctx.restore();
    }] } };
  }

  // Wide enough for the longest tick label (uPlot's fixed 50 px cuts "1013.25" or "79.135").
  function ySize(u, values, axisIdx, cycleNum) {
    var axis = u.axes[axisIdx];
    if (cycleNum > 1) { return axis._size; }
    var longest = (values || []).reduce(function (a, v) { return v.length > a.length ? v : a; }, "");
    u.ctx.font = axis.font[0];
    return Math.ceil(axis.ticks.size + axis.gap + u.ctx.measureText(longest).width / devicePixelRatio);
  }

  function draw(el, rows, markers) {
    el.innerHTML = "";
    var groups = group(rows), keys = Object.keys(groups);
    if (!keys.length) { el.innerHTML = '<p class="empty">No telemetry in this range.</p>'; return; }
    keys.forEach(function (key, i) {
      var pts = groups[key];
      var xs = pts.map(function (p) { return Date.parse(p.bucket) / 1000; });
      var data = [xs, pts.map(function (p) { return p.mean; }),
                  pts.map(function (p) { return p.min; }), pts.map(function (p) { return p.max; })];
      var color = COLORS[i % COLORS.length];
      var box = document.createElement("div"); box.className = "chart-one"; el.appendChild(box);
      /* global uPlot */
      new uPlot({
        title: key, width: Math.max(240, el.clientWidth - 8), height: 220,
        plugins: [markerPlugin(markers)],
        axes: [{}, { size: ySize }],
        series: [{}, { label: "mean", stroke: color, width: 2 },
                 { label: "min", stroke: color, dash: [2, 4], width: 1 },
                 { label: "max", stroke: color, dash: [2, 4], width: 1 }],
        bands: [{ series: [3, 2], fill: color + "22" }],
      }, data, box);
    });
  }

  function load(el) {
    var hours = Number(el.dataset.hours || el.dataset.hoursBefore || 24);
    var end = el.dataset.start ? new Date(Date.parse(el.dataset.start) + 6 * 3600e3) : new Date();
    var start = new Date(end.getTime() - hours * 3600e3);
    var url = el.dataset.telemetryUrl + "?resolution=" + (el.dataset.resolution || "1h") +
      "&start=" + encodeURIComponent(start.toISOString()) + "&end=" + encodeURIComponent(end.toISOString());
    var markersEl = el.dataset.markers && document.getElementById(el.dataset.markers);
    var markers = markersEl ? JSON.parse(markersEl.textContent) : [];
    el.innerHTML = '<p class="empty">Loading…</p>';
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
      .then(function (rows) { draw(el, rows, markers); el.dataset.loaded = "1"; })
      .catch(function (e) { el.innerHTML = '<p class="empty">Could not load telemetry (' + e.message + ').</p>'; });
  }

  document.querySelectorAll(".chart[data-telemetry-url]").forEach(function (el) {
    load(el);
    var ranges = el.parentNode.querySelector(".ranges");
    if (!ranges) { return; }
    ranges.addEventListener("click", function (ev) {
      var b = ev.target.closest("button"); if (!b) { return; }
      ranges.querySelectorAll("button").forEach(function (x) { x.classList.remove("active"); });
      b.classList.add("active");
      el.dataset.hours = b.dataset.rangeHours; el.dataset.resolution = b.dataset.resolution;
      load(el);
    });
  });
})();
