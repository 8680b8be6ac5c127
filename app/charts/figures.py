"""Plotly figures for 统计分析: pure functions from rows to figures.

No Flask, no database, no Babel here: every label arrives translated, every link
arrives built. A figure is Plotly's own JSON form — ``{"data": [traces], "layout":
{...}}``, what plotly.js draws (static/js/charts.js) — built as plain dicts: plotly.py's
``graph_objects`` validate every property on assignment, which cost ~80 ms of a
dashboard's 16 figures; tests/unit/test_chart_figures.py validates every builder's
output with ``plotly.graph_objects.Figure`` instead. ``table_of`` turns a figure back
into the table of the numbers it draws, so a download (CSV, Excel) carries exactly
what the chart shows.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

BELOW_TARGET_COLOR = "#d9534f"
AT_TARGET_COLOR = "#5cb85c"
TARGET_COLOR = "#333333"
MARGIN = dict(t=48, l=56, r=16, b=48)

Figure = dict  # {"data": [trace, …], "layout": {…}}


@dataclass(frozen=True)
class Table:
    """A download: column headings and rows of plain values."""

    columns: list[str]
    rows: list[list]


def hours(minutes: int) -> float:
    """Minutes as hours, two decimals (what every hours figure draws)."""
    return round(minutes / 60, 2)


def percent(rate: float | None) -> float | None:
    """A rate as a percentage, two decimals; None stays None (no population known)."""
    return None if rate is None else round(rate * 100, 2)


def to_json(fig: Figure) -> str:
    """The figure as JSON text (what the page embeds). Text is entity-escaped: plotly.js
    reads tags such as ``<a href>``, ``<b>`` and ``<span style>`` in labels, and names are
    user data; it shows ``&lt;`` as "<" again. ``customdata`` (the drill-down links) is
    left as it is."""
    return json.dumps(_escaped(fig), ensure_ascii=False, separators=(",", ":"))


def _escaped(value, key: str = ""):
    if isinstance(value, str):
        return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if isinstance(value, dict):
        return {k: v if k == "customdata" else _escaped(v, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_escaped(v, key) for v in value]
    return value


def _value_axis(values: Sequence[float | None], label: str) -> dict:
    """A value axis from zero; small counts get whole-number ticks (no "0.2 groups")."""
    axis = dict(title=dict(text=label), automargin=True, rangemode="tozero")
    numbers = [v for v in values if v is not None]
    if numbers and all(float(v).is_integer() for v in numbers) and max(numbers) <= 10:
        axis.update(tick0=0, dtick=1)
    return axis


def _figure(traces: list[dict], *, title: str, x_label: str = "", y_label: str = "",
            values: Sequence[float | None] = (), horizontal: bool = False, **extra) -> Figure:
    # No template: plotly.js draws with its own defaults (plotly.py would embed ~6 KB of
    # its default template in every figure). Categories stay categories: plotly.js would
    # read "2026-01" as a date and "5" as a number.
    categories = dict(title=dict(text=x_label), automargin=True, type="category")
    value_axis = _value_axis(values, y_label)
    if horizontal:
        categories["autorange"] = "reversed"  # the first category on top
        axes = dict(xaxis=value_axis, yaxis=categories)
    else:
        axes = dict(xaxis=categories, yaxis=value_axis)
    layout = dict(title=dict(text=title), margin=MARGIN, height=360, **axes, **extra)
    return {"data": traces, "layout": layout}


def bars(categories: Sequence[str], series: Sequence[tuple[str, Sequence[float]]], *, title: str,
         x_label: str, y_label: str, links: Sequence[str] | None = None, stacked: bool = False,
         horizontal: bool = False) -> Figure:
    """Bars of one or more series over ``categories``; ``links`` (one URL per category)
    ride along as ``customdata`` so a click drills down (static/js/charts.js)."""
    cats = list(categories)
    traces = []
    for name, values in series:
        trace = dict(type="bar", name=name)
        if links:
            trace["customdata"] = list(links)
        if horizontal:
            trace.update(y=cats, x=list(values), orientation="h")
        else:
            trace.update(x=cats, y=list(values))
        traces.append(trace)
    if stacked:
        values = [sum(v or 0 for v in column) for column in zip(*(values for _, values in series))]
    else:
        values = [v for _, values in series for v in values]
    return _figure(traces, title=title, x_label=x_label, y_label=y_label, values=values, horizontal=horizontal,
                   barmode="stack" if stacked else "group", showlegend=stacked or len(series) > 1)


def pie(labels: Sequence[str], values: Sequence[int], *, title: str, name: str) -> Figure:
    """A pie of shares (gender)."""
    trace = dict(type="pie", labels=list(labels), values=list(values), name=name, sort=False)
    return {"data": [trace], "layout": dict(title=dict(text=title), margin=MARGIN, height=360)}


def line(categories: Sequence[str], values: Sequence[float], *, title: str, x_label: str, y_label: str,
         name: str) -> Figure:
    """A line over months (a group's members over time)."""
    trace = dict(type="scatter", x=list(categories), y=list(values), mode="lines+markers", name=name)
    return _figure([trace], title=title, x_label=x_label, y_label=y_label, values=values, showlegend=False)


def rate_bars(names: Sequence[str], rates: Sequence[float | None], *, target: float, title: str,
              x_label: str, y_label: str, rate_name: str, target_name: str,
              links: Sequence[str] | None = None) -> Figure:
    """A KPI in percent per region or unit: bars (red below ``target``, green at or
    above it; None: nothing known) and the target as a dashed line across the chart
    (``layout.shapes[0]``, labelled by ``layout.annotations[0]``: ``target_name``)."""
    values = [percent(r) for r in rates]
    goal = percent(target)
    colors = [BELOW_TARGET_COLOR if v is not None and v < goal else AT_TARGET_COLOR for v in values]
    trace = dict(type="bar", x=list(names), y=values, name=rate_name, marker=dict(color=colors))
    if links:
        trace["customdata"] = list(links)
    target_line = dict(type="line", xref="paper", x0=0, x1=1, yref="y", y0=goal, y1=goal,
                       line=dict(color=TARGET_COLOR, dash="dash", width=1.5))
    label = dict(text=f"{target_name} {goal:g}", xref="paper", x=1, xanchor="right", yref="y", y=goal,
                 yanchor="bottom", showarrow=False)
    return _figure([trace], title=title, x_label=x_label, y_label=y_label, values=[*values, goal],
                   showlegend=False, shapes=[target_line], annotations=[label])


def table_of(fig: Figure, category_label: str) -> Table:
    """The numbers ``fig`` draws, one row per category (bar, line) or slice (pie), one
    column per trace: what the downloads carry."""
    traces = fig.get("data") or []
    if not traces:
        return Table([category_label], [])
    first = traces[0]
    if first["type"] == "pie":
        return Table([category_label, first.get("name") or ""],
                     [[c, v] for c, v in zip(first["labels"], first["values"])])
    horizontal = first.get("orientation") == "h"
    categories = list(first["y"] if horizontal else first["x"])
    columns = [category_label] + [t.get("name") or "" for t in traces]
    values = [list(t["x"] if horizontal else t["y"]) for t in traces]
    return Table(columns, [[c, *(v[i] for v in values)] for i, c in enumerate(categories)])
