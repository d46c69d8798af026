"""Telemetry charts in real Chromium: the y-axis labels read the data's numbers in full (not
"1.25" for 21.25), a stretch of missing data is drawn as a gap, and alert / work-order
markers carry a label and a legend, on the desk's asset and episode pages and on the
engineer's phone. Screenshots go to test-artifacts/browser/."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection

from tests import factories as f
from tests.support.web import ARTIFACTS, desk_page
from tests.support.web import browser_login as _login
from tests.support.world import ServedWorld

pytestmark = [pytest.mark.browser, pytest.mark.db]

SERIES_BLUE = (11, 107, 203)  # chart.js COLORS[0], the first series' line

# What the page can tell about one drawn chart: the y-axis labels as uPlot drew them, the room
# the axis has for them, each label's width in the axis font, the ink in the canvas's two
# leftmost CSS pixels (a clipped label spills there), and the first series' pixels in the plot
# column at each asked time.
PROBE = """([box, times]) => {
  const u = box._uplot, ax = u.axes[1], dpr = devicePixelRatio, ctx = u.ctx;
  ctx.save(); ctx.font = ax.font[0];
  const widths = ax._values.map(v => ctx.measureText(v).width / dpr);
  ctx.restore();
  const c = ctx.canvas, edge = ctx.getImageData(0, 0, Math.ceil(2 * dpr), c.height).data;
  let ink = 0;
  for (let i = 3; i < edge.length; i += 4) { if (edge[i] > 40) { ink += 1; } }
  const blue = times.map(t => {
    // Five columns around the time: a thin line's anti-aliased edge can miss any one column.
    const x = Math.round(u.valToPos(t, "x", true));
    const col = ctx.getImageData(x - 2, Math.round(u.bbox.top), 5,
                                 Math.round(u.bbox.height)).data;
    let n = 0;
    for (let i = 0; i < col.length; i += 4) {
      if (col[i + 3] > 200 && col[i + 2] - col[i] > 80) { n += 1; }
    }
    return n;
  });
  return {labels: ax._values, size: ax._size, room: ax._size - ax.ticks.size - ax.gap,
          widths: widths, ink: ink, blue: blue,
          yMin: u.scales.y.min, yMax: u.scales.y.max,
          markers: JSON.parse(box.dataset.markers || "[]")};
}"""


def _rollups(table: str, device: str, metric: str,
             rows: list[tuple[dt.datetime, float, float, float]]) -> None:
    """Rollup rows (bucket, min, mean, max) as the store's refresh writes them."""
    assert table in ("telemetry_1m", "telemetry_1h")
    f.store_device(device)
    with connection.cursor() as cur:
        cur.execute("INSERT INTO metrics (name) VALUES (%s) ON CONFLICT (name) DO NOTHING",
                    [metric])
        for bucket, lo, mean, hi in rows:
            cur.execute(
                f"INSERT INTO {table} (bucket, device_id, metric_id, min, max, mean, last, "  # noqa: S608
                "count) SELECT %s, d.id, m.id, %s, %s, %s, %s, 60 FROM devices d, metrics m "
                "WHERE d.device_key = %s AND m.name = %s",
                [bucket, lo, hi, mean, mean, device, metric])


def _temperatures(t0: dt.datetime, step: dt.timedelta, n: int,
                  missing: range) -> list[tuple[dt.datetime, float, float, float]]:
    """A room temperature around 21 °C (means 20.75..21.25, band 20.5..21.5), with the `missing`
    samples absent."""
    out = []
    for i in range(n):
        if i in missing:
            continue
        mean = 21.0 + 0.25 * math.sin(i * math.pi / 4)
        out.append((t0 + i * step, mean - 0.25, mean, mean + 0.25))
    return out


@pytest.fixture
def chart_world(live_world: ServedWorld) -> Iterator[ServedWorld]:
    yield live_world
    with connection.cursor() as cur:
        cur.execute("DELETE FROM telemetry_1m")


def _check_axis(probe: dict[str, Any], *, lo: float, hi: float, where: str) -> None:
    labels = probe["labels"]
    assert len(labels) >= 3, (where, probe)
    values = [float(v) for v in labels]
    # The labels are the data's numbers: inside the drawn range, around 20.5..21.5.
    assert all(probe["yMin"] - 1e-9 <= v <= probe["yMax"] + 1e-9 for v in values), (where, probe)
    assert probe["yMin"] <= lo, (where, probe)
    assert probe["yMax"] >= hi, (where, probe)
    assert all(20 <= v <= 22 for v in values), (where, probe)
    # ... and every one of them fits the axis, so none is drawn cut off at the left edge.
    assert all(w <= probe["room"] + 0.5 for w in probe["widths"]), (where, probe)
    assert probe["ink"] == 0, (where, probe)


def test_chart_axis_gap_and_markers_on_desk(
        browser: Any, live_server: Any, chart_world: ServedWorld, desk_agent: Any) -> None:
    from service_crm.services.work_orders import work_order_schedule

    world = chart_world
    hour = dt.timedelta(hours=1)
    visit = world.now - 2 * hour  # a visit earlier today, inside the charts' ranges
    work_order_schedule(work_order=world.north.work_order, engineer=world.north.engineer,
                        start=visit, end=visit + hour, actor=desk_agent)
    t0 = world.now.replace(minute=0, second=0) - 20 * hour
    _rollups("telemetry_1h", "cmp-n1", "temperature_c",
             _temperatures(t0, hour, 21, missing=range(8, 12)))
    minute = dt.timedelta(minutes=1)
    m0 = world.north.episode.opened_at.replace(second=0) - 60 * minute
    _rollups("telemetry_1m", "cmp-n1", "temperature_c",
             _temperatures(m0, minute, 120, missing=range(30, 34)))
    errors: list[str] = []
    context, page = desk_page(browser, live_server.url, errors,
                              viewport={"width": 1280, "height": 900})

    page.goto(f"{live_server.url}/desk/assets/{world.north.asset.pk}/")
    page.click("button[data-range-hours='168']")
    page.wait_for_selector(".chart[data-loaded='1'] .chart-one canvas")
    box = page.query_selector(".chart .chart-one")
    gap_t, data_t = (t0 + 9.5 * hour).timestamp(), (t0 + 3.5 * hour).timestamp()
    probe = page.evaluate(PROBE, [box, [gap_t, data_t]])
    _check_axis(probe, lo=20.5, hi=21.5, where="desk asset")
    assert probe["blue"][0] == 0, probe  # the 4 missing hours: no line across them
    assert probe["blue"][1] > 0, probe  # where there is data, the line is drawn
    legend = page.inner_text(".chart .marker-legend")
    assert "Alert" in legend, legend
    assert "Work order" in legend, legend
    assert world.north.alert.failure_mode_code in [mk["label"] for mk in probe["markers"]], probe
    page.screenshot(path=ARTIFACTS / "chart-desk-asset.png", full_page=True)

    page.goto(f"{live_server.url}/desk/episodes/{world.north.episode.pk}/")
    page.wait_for_selector(".chart[data-loaded='1'] .chart-one canvas")
    box = page.query_selector(".chart .chart-one")
    gap_t = (m0 + 31.5 * minute).timestamp()
    data_t = (m0 + 10.5 * minute).timestamp()
    probe = page.evaluate(PROBE, [box, [gap_t, data_t]])
    page.screenshot(path=ARTIFACTS / "chart-desk-episode.png", full_page=True)
    _check_axis(probe, lo=20.5, hi=21.5, where="desk episode")
    assert probe["blue"][0] == 0, probe
    assert probe["blue"][1] > 0, probe
    assert {mk["kind"] for mk in probe["markers"]} == {"alert", "work_order"}, probe
    legend = page.inner_text(".chart .marker-legend")
    assert "Alert" in legend, legend
    assert "Work order" in legend, legend
    assert errors == []
    context.close()


def test_chart_axis_on_phone(browser: Any, live_server: Any, chart_world: ServedWorld,
                             desk_agent: Any, field_engineer: Any) -> None:
    from service_crm.services.work_orders import work_order_schedule

    world = chart_world
    start = world.now + dt.timedelta(minutes=5)
    work_order_schedule(work_order=world.north.work_order, engineer=world.north.engineer,
                        start=start, end=start + dt.timedelta(hours=2), actor=desk_agent)
    hour = dt.timedelta(hours=1)
    t0 = world.now.replace(minute=0, second=0) - 20 * hour
    _rollups("telemetry_1h", "cmp-n1", "temperature_c",
             _temperatures(t0, hour, 21, missing=range(8, 12)))
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                  has_touch=True, device_scale_factor=3)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    _login(page, live_server.url, "jana")
    page.goto(f"{live_server.url}/field/work-orders/{world.north.work_order.pk}/")
    page.wait_for_selector(".chart[data-loaded='1'] .chart-one canvas")
    box = page.query_selector(".chart .chart-one")
    probe = page.evaluate(PROBE, [box, [(t0 + 9.5 * hour).timestamp(),
                                        (t0 + 3.5 * hour).timestamp()]])
    _check_axis(probe, lo=20.5, hi=21.5, where="field phone")
    assert probe["blue"][0] == 0, probe
    assert probe["blue"][1] > 0, probe
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=ARTIFACTS / "chart-field-phone.png", full_page=True)
    context.close()

    # The desk's asset page on the same phone: the axis fits there too.
    context, page = desk_page(browser, live_server.url, errors,
                              viewport={"width": 390, "height": 844}, is_mobile=True,
                              has_touch=True, device_scale_factor=3)
    page.goto(f"{live_server.url}/desk/assets/{world.north.asset.pk}/")
    page.click("button[data-range-hours='168']")
    page.wait_for_selector(".chart[data-loaded='1'] .chart-one canvas")
    box = page.query_selector(".chart .chart-one")
    probe = page.evaluate(PROBE, [box, [(t0 + 9.5 * hour).timestamp()]])
    _check_axis(probe, lo=20.5, hi=21.5, where="desk asset phone")
    page.screenshot(path=ARTIFACTS / "chart-desk-asset-phone.png", full_page=True)
    assert errors == []
    context.close()


def test_a_late_answer_for_the_old_range_does_not_replace_the_one_picked(
        browser: Any, live_server: Any, chart_world: ServedWorld, desk_agent: Any) -> None:
    """The page's first (24 h, 1 min) telemetry request is held back until after the user
    picked 7 days: the chart must end up showing the 7-day answer, not the late 24 h one."""
    import time

    world = chart_world
    hour, minute = dt.timedelta(hours=1), dt.timedelta(minutes=1)
    t0 = world.now.replace(minute=0, second=0) - 20 * hour
    _rollups("telemetry_1h", "cmp-n1", "temperature_c", _temperatures(t0, hour, 21, range(0)))
    _rollups("telemetry_1m", "cmp-n1", "temperature_c",
             _temperatures(world.now - 60 * minute, minute, 50, range(0)))
    errors: list[str] = []
    context, page = desk_page(browser, live_server.url, errors,
                              viewport={"width": 1280, "height": 900})
    held: list[Any] = []

    def hold_first(route: Any) -> None:
        if not held:
            held.append(route)   # answered below, after the 7-day one
        else:
            route.continue_()

    page.route("**/telemetry/*", hold_first)
    page.goto(f"{live_server.url}/desk/assets/{world.north.asset.pk}/")
    deadline = time.monotonic() + 30
    while not held and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert held, "the first telemetry request never came"
    page.click("button[data-range-hours='168']")
    page.wait_for_selector(".chart[data-loaded='1'] .chart-one canvas")
    held[0].continue_()          # the stale 24 h answer arrives last
    page.wait_for_timeout(1500)
    span_h = page.evaluate("""() => {
      const u = document.querySelector('.chart .chart-one')._uplot;
      return (u.scales.x.max - u.scales.x.min) / 3600; }""")
    context.close()
    # The x axis spans the data drawn: ~20 h of hourly rollups for the 7-day answer, ~1 h of
    # minute rollups had the stale 24 h answer replaced it.
    assert span_h > 10, span_h
    assert errors == []
