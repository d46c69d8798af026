// Telemetry charts from the store's rollups (GET /api/v1/assets/<id>/telemetry), drawn with
// the vendored uPlot: one chart per metric, mean as a line with the min..max band, alert and
// work-order times as vertical markers. Range buttons reload at the matching resolution.
(function () {
  "use strict";
  var COLORS = ["#0b6bcb", "#b7791f", "#1a7f37", "#b42318", "#6941c6", "#0e7490"];
  var MARKER = { alert: { color: "#b42318", name: "Alert" },
                 work_order: { color: "#1a7f37", name: "Work order" } };
  var EDGE_PX = 4;  // blank margin left of the longest y label, so no glyph touches the edge

  // Vertical dashed line per marker with its label at the top, on the first of three rows where
  // it overlaps no other label (beyond that the label is left out; the line and legend stay).
  // The drawn markers are kept on the chart box (data-markers) for tests and tools.
  function markerPlugin(markers, box) {
    return { hooks: { draw: [function (u) {
      var ctx = u.ctx, dpr = devicePixelRatio, drawn = [], rows = [[], [], []];
      ctx.save();
      ctx.font = Math.round(11 * dpr) + "px system-ui, sans-serif";
      ctx.textBaseline = "top"; ctx.textAlign = "left";  // uPlot leaves its axes' alignment set
      markers.forEach(function (m) {
        var x = u.valToPos(m.t, "x", true);
        if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) { return; }
        var color = (MARKER[m.kind] || MARKER.alert).color;
        ctx.strokeStyle = color; ctx.lineWidth = dpr;
        ctx.setLineDash([4 * dpr, 4 * dpr]); ctx.beginPath();
        ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
        var label = m.label || (MARKER[m.kind] || MARKER.alert).name;
        var w = ctx.measureText(label).width, lx = x + 3 * dpr;
        if (lx + w > u.bbox.left + u.bbox.width) { lx = x - 3 * dpr - w; }
        var row = rows.findIndex(function (taken) {
          return taken.every(function (iv) { return lx + w + 4 * dpr < iv[0] || lx > iv[1] + 4 * dpr; });
        });
        if (row >= 0) {
          var y = u.bbox.top + (2 + row * 14) * dpr;
          ctx.fillStyle = "rgba(255,255,255,.85)";
          ctx.fillRect(lx - dpr, y, w + 2 * dpr, 13 * dpr);
          ctx.fillStyle = color; ctx.fillText(label, lx, y + dpr);
          rows[row].push([lx, lx + w]);
        }
        drawn.push({ t: m.t, kind: m.kind, label: label });
      });
      ctx.restore();
      box.dataset.markers = JSON.stringify(drawn);
      box.dataset.yLabels = JSON.stringify(u.axes[1]._values || []);
    }] } };
  }

  function markerLegend(markers, t0, t1) {
    var kinds = {};
    markers.forEach(function (m) { if (m.t >= t0 && m.t <= t1) { kinds[m.kind] = (kinds[m.kind] || 0) + 1; } });
    var ul = document.createElement("ul"); ul.className = "marker-legend";
    Object.keys(MARKER).forEach(function (k) {
      if (!kinds[k]) { return; }
      var li = document.createElement("li"), sw = document.createElement("span");
      sw.className = "marker-swatch"; sw.style.borderColor = MARKER[k].color;
      li.appendChild(sw);
      li.appendChild(document.createTextNode(" " + MARKER[k].name + (kinds[k] > 1 ? "s (" + kinds[k] + ")" : "")));
      ul.appendChild(li);
    });
    return ul;
  }

  // Wide enough for the longest tick label in the axis font. uPlot lays out in cycles and may
  // find other labels (another tick step) on a later cycle than the first, so the size only
  // grows: whatever labels are drawn last fit, and growing-only converges.
  function ySize(u, values, axisIdx) {
    var axis = u.axes[axisIdx];
    var base = axis.ticks.size + axis.gap + EDGE_PX;
    if (!values) { return Math.max(axis._size || 0, base); }
    u.ctx.save();
    u.ctx.font = axis.font[0];
    var widest = values.reduce(function (a, v) { return Math.max(a, u.ctx.measureText(String(v)).width); }, 0);
    u.ctx.restore();
    return Math.max(axis._size || 0, Math.ceil(base + widest / devicePixelRatio));
  }

  // The series' own step is the median spacing of its times; a missing stretch longer than
  // two steps gets a null in the middle, which uPlot draws as a gap instead of a straight line
  // across hours without data. Returns [data, gaps inserted].
  function withGaps(data) {
    var t = data[0], n = t.length;
    if (n < 3) { return [data, 0]; }
    var d = [];
    for (var i = 1; i < n; i++) { d.push(t[i] - t[i - 1]); }
    d.sort(function (a, b) { return a - b; });
    var step = d[Math.floor(d.length / 2)];
    if (!(step > 0)) { return [data, 0]; }
    var out = data.map(function () { return []; }), gaps = 0;
    for (var j = 0; j < n; j++) {
      if (j > 0 && t[j] - t[j - 1] > 2 * step) {
        out[0].push(t[j - 1] + step);
        for (var k = 1; k < data.length; k++) { out[k].push(null); }
        gaps += 1;
      }
      for (var c = 0; c < data.length; c++) { out[c].push(data[c][j]); }
    }
    return [out, gaps];
  }

  // `series` is the endpoint's layout=columns answer: one entry per (device, metric) with
  // epoch-second times and one array per statistic, i.e. uPlot's data as it comes.
  function draw(el, series, markers, range) {
    el.innerHTML = "";
    if (!series.length) { el.innerHTML = '<p class="empty">No telemetry in this range.</p>'; return; }
    // The time axis spans the data and the markers inside the asked range, so an alert just
    // after the last sample (or a visit before the first) is still shown.
    var lo = Infinity, hi = -Infinity;
    series.forEach(function (s) { if (s.t.length) { lo = Math.min(lo, s.t[0]); hi = Math.max(hi, s.t[s.t.length - 1]); } });
    markers.forEach(function (m) { if (m.t >= range[0] && m.t <= range[1]) { lo = Math.min(lo, m.t); hi = Math.max(hi, m.t); } });
    var xRange = lo < hi ? [lo, hi + (hi - lo) * 0.02] : null;
    series.forEach(function (s, i) {
      var key = s.metric + (s.device ? " · " + s.device : "");
      var gapped = withGaps([s.t, s.mean, s.min, s.max]);
      var color = COLORS[i % COLORS.length];
      var box = document.createElement("div"); box.className = "chart-one"; el.appendChild(box);
      box.dataset.gaps = String(gapped[1]);
      /* global uPlot */
      box._uplot = new uPlot({
        title: key, width: Math.max(240, el.clientWidth - 8), height: 220,
        plugins: [markerPlugin(markers, box)],
        scales: xRange ? { x: { time: true, range: function () { return xRange; } } } : {},
        axes: [{}, { size: ySize }],
        series: [{}, { label: "mean", stroke: color, width: 2 },
                 { label: "min", stroke: color, dash: [2, 4], width: 1 },
                 { label: "max", stroke: color, dash: [2, 4], width: 1 }],
        bands: [{ series: [3, 2], fill: color + "22" }],
      }, gapped[0], box);
    });
    if (markers.length && xRange) { el.appendChild(markerLegend(markers, xRange[0], xRange[1])); }
  }

  function load(el) {
    var hours = Number(el.dataset.hours || el.dataset.hoursBefore || 24);
    var end = el.dataset.start ? new Date(Date.parse(el.dataset.start) + 6 * 3600e3) : new Date();
    var start = new Date(end.getTime() - hours * 3600e3);
    var url = el.dataset.telemetryUrl + "?layout=columns&resolution=" +
      (el.dataset.resolution || "1h") + "&start=" + encodeURIComponent(start.toISOString()) + "&end=" + encodeURIComponent(end.toISOString());
    var markersEl = el.dataset.markers && document.getElementById(el.dataset.markers);
    var markers = markersEl ? JSON.parse(markersEl.textContent) : [];
    el.innerHTML = '<p class="empty">Loading…</p>';
    delete el.dataset.loaded;
    // Only the newest request draws: a slow answer for the range shown before a click must
    // not replace the range the user picked.
    var seq = el.chartSeq = (el.chartSeq || 0) + 1;
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
      .then(function (body) {
        if (seq !== el.chartSeq) { return; }
        draw(el, body.series, markers, [start.getTime() / 1000, end.getTime() / 1000]);
        el.dataset.loaded = "1";
      })
      .catch(function (e) {
        if (seq !== el.chartSeq) { return; }
        el.innerHTML = '<p class="empty">Could not load telemetry (' + e.message + ').</p>';
      });
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

// Bar charts for reports and the dashboard (uPlot's bars path builder). An element
// <div data-bars="ID"> is drawn from the JSON in <script type="application/json" id="ID">
// (Django's json_script, so no inline script under the CSP):
//   {"labels": [...], "series": [{"label": "...", "values": [...], "color": "#..."}],
//    "stacked": false, "horizontal": false, "colors": null, "unit": "", "max": null,
//    "integer": false}  (integer: counts, so whole-number ticks only)
// "stacked" piles the series (drawn as running totals, the top one first); "colors" gives
// each bar its own colour (one series). The legend is HTML with each series' total, and
// the element gets data-drawn="<bars>" once the canvas is drawn. Charts are redrawn when
// poll.js replaces a fragment (event "aftercare:updated") and when the window is resized.
(function () {
  "use strict";
  /* global uPlot */
  var PALETTE = ["#0b6bcb", "#b42318", "#1a7f37", "#b7791f", "#6941c6", "#0e7490"];
  var INT_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000];

  function cumulative(series) {
    var run = null;
    return series.map(function (s) {
      run = s.values.map(function (v, i) { return (run ? run[i] : 0) + (v || 0); });
      return run;
    });
  }

  function labelFor(labels, step, maxChars) {
    return function (u, splits) {
      return splits.map(function (i) {
        var l = labels[Math.round(i)];
        if (l === undefined || Math.round(i) !== i || i % step) { return ""; }
        return l.length > maxChars ? l.slice(0, maxChars - 1) + "…" : l;
      });
    };
  }

  // Room for the longest category label (as cut by labelFor), measured in the axis font; like
  // the time series' y axis it only grows across uPlot's layout cycles, so it converges and
  // the labels drawn last always fit.
  function labelWidth(u, values, axisIdx) {
    var axis = u.axes[axisIdx];
    u.ctx.save();
    u.ctx.font = axis.font[0];
    var widest = (values || []).reduce(function (a, v) { return Math.max(a, u.ctx.measureText(v).width); }, 0);
    u.ctx.restore();
    return Math.max(axis._size || 0, Math.min(Math.ceil(axis.ticks.size + axis.gap + widest / devicePixelRatio + 4),
                                              Math.round(u.width * 0.45)));
  }

  function legend(spec, series) {
    var ul = document.createElement("ul"); ul.className = "bar-legend";
    series.forEach(function (s) {
      var li = document.createElement("li"), sw = document.createElement("span");
      sw.className = "swatch"; sw.style.background = s.color;
      var total = s.values.reduce(function (a, v) { return a + (v || 0); }, 0);
      li.appendChild(sw);
      li.appendChild(document.createTextNode(" " + s.label + (spec.totals === false ? "" : ": " + (Math.round(total * 10) / 10) + (spec.unit || ""))));
      if (s.key) { li.dataset.key = s.key; li.dataset.total = String(total); }
      ul.appendChild(li);
    });
    return ul;
  }

  function bars(el, spec) {
    el.innerHTML = "";
    var labels = spec.labels || [], n = labels.length;
    if (!n) { el.innerHTML = '<p class="empty">No data yet.</p>'; el.dataset.drawn = "0"; return; }
    var series = (spec.series || []).map(function (s, i) {
      return { label: s.label, key: s.key, values: s.values, color: s.color || PALETTE[i % PALETTE.length] };
    });
    if (spec.colors) {  // one series, one colour per bar: split into sparse series
      var only = series[0];
      series = labels.map(function (l, i) {
        return { label: l, key: spec.keys ? spec.keys[i] : null, color: spec.colors[i],
                 values: labels.map(function (_, j) { return j === i ? only.values[i] : null; }) };
      });
    }
    var drawn = spec.stacked ? cumulative(series) : series.map(function (s) { return s.values; });
    var order = series.map(function (_, i) { return i; });
    if (spec.stacked) { order.reverse(); }  // tallest running total first, the rest on top
    var top = 0;
    drawn.forEach(function (vs) { vs.forEach(function (v) { if (v !== null && v > top) { top = v; } }); });
    var max = spec.max || (top > 0 ? top * 1.1 : 1);
    var horizontal = !!spec.horizontal;
    var width = Math.max(240, el.clientWidth - 8);
    var height = horizontal ? Math.max(120, n * 30 + 50) : (spec.height || 220);
    var step = Math.max(1, Math.ceil(n * (horizontal ? 20 : 64) / (horizontal ? height : width)));
    var size = [0.7, 48];
    var opts = {
      width: width, height: height, legend: { show: false }, cursor: { show: false },
      // Horizontal bars list the categories top to bottom, in the order given.
      scales: { x: { time: false, range: [-0.5, n - 0.5], ori: horizontal ? 1 : 0, dir: horizontal ? -1 : 1 },
                y: { range: [0, max], ori: horizontal ? 0 : 1, dir: 1 } },
      axes: [
        { scale: "x", side: horizontal ? 3 : 2, splits: function () { return labels.map(function (_, i) { return i; }); },
          values: labelFor(labels, step, width > 600 ? 32 : 18), grid: { show: false }, size: horizontal ? labelWidth : 40 },
        { scale: "y", side: horizontal ? 2 : 3, space: horizontal ? (spec.integer ? 45 : 70) : 30, incrs: spec.integer ? INT_STEPS : undefined,
          values: function (u, splits) { return splits.map(function (v) { return v + (spec.unit || ""); }); } },
      ],
      series: [{}].concat(order.map(function (i) {
        return { label: series[i].label, fill: series[i].color, stroke: series[i].color, width: 0,
                 points: { show: false }, paths: uPlot.paths.bars({ size: size, align: 0 }) };
      })),
    };
    var data = [labels.map(function (_, i) { return i; })].concat(order.map(function (i) { return drawn[i]; }));
    var box = document.createElement("div"); box.className = "chart-one"; el.appendChild(box);
    new uPlot(opts, data, box);
    el.appendChild(legend(spec, series));
    var count = 0;
    series.forEach(function (s) { s.values.forEach(function (v) { if (v) { count += 1; } }); });
    el.dataset.drawn = String(count);
  }

  function drawAll(root) {
    (root || document).querySelectorAll("[data-bars]").forEach(function (el) {
      var src = document.getElementById(el.dataset.bars);
      if (!src) { return; }
      try { bars(el, JSON.parse(src.textContent)); }
      catch (e) { el.innerHTML = '<p class="empty">Could not draw the chart (' + e.message + ').</p>'; }
    });
  }

  window.AftercareCharts = { bars: bars, drawAll: drawAll };
  drawAll(document);
  document.addEventListener("aftercare:updated", function (ev) { drawAll(ev.target); });
  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer); resizeTimer = setTimeout(function () { drawAll(document); }, 200);
  });
})();
