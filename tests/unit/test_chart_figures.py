"""统计分析 figures, tested as data (CONVENTIONS §6, §10): what each builder draws, the
table a download carries (``table_of``: the same numbers), and the pure helpers of
app/charts/queries.py (periods, age bands, hours per month and category)."""
import json
from datetime import date, timedelta

import pytest

from app.charts import figures, queries
from app.charts.queries import KeyValue, MinuteCell, MinuteSums, MonthValue, Period, RegionValue, parse_period


# --- figures ---


def test_bars__one_series_draws_the_values_with_their_links():
    fig = figures.bars(["龙亭区", "顺河回族区"], [("志愿者", [77, 88])], title="T", x_label="区", y_label="人",
                       links=["/statistics/?region=410202", "/statistics/?region=410203"])
    assert list(fig["data"][0]["x"]) == ["龙亭区", "顺河回族区"]
    assert list(fig["data"][0]["y"]) == [77, 88]
    assert list(fig["data"][0]["customdata"]) == ["/statistics/?region=410202", "/statistics/?region=410203"]
    layout = fig["layout"]
    assert layout["title"]["text"] == "T"
    assert layout["xaxis"]["title"]["text"] == "区" and layout["yaxis"]["title"]["text"] == "人"
    assert fig["layout"]["xaxis"]["type"] == "category"  # "2026-01" stays a label, not a date
    assert "template" not in fig["layout"]  # no 6 KB default template in the JSON


def test_bars__without_links_carry_no_customdata():
    fig = figures.bars(["a"], [("n", [1])], title="", x_label="", y_label="")
    assert "customdata" not in fig["data"][0]


def test_bars__stacked_series_one_trace_each():
    fig = figures.bars(["社区", "学校"], [("县级", [1, 2]), ("街道", [3, 0])], title="", x_label="", y_label="",
                       stacked=True)
    assert [t["name"] for t in fig["data"]] == ["县级", "街道"]
    assert [list(t["y"]) for t in fig["data"]] == [[1, 2], [3, 0]]
    assert fig["layout"]["barmode"] == "stack" and fig["layout"]["showlegend"] is True


def test_bars__small_counts_get_whole_number_ticks():
    assert figures.bars(["a"], [("n", [3])], title="", x_label="", y_label="")["layout"]["yaxis"]["dtick"] == 1
    assert figures.bars(["a"], [("n", [300])], title="", x_label="", y_label="")["layout"]["yaxis"].get("dtick") is None
    assert figures.bars(["a"], [("n", [0.5])], title="", x_label="", y_label="")["layout"]["yaxis"].get("dtick") is None


def test_bars__horizontal_puts_categories_on_y_first_on_top():
    fig = figures.bars(["甲", "乙"], [("小时", [9.5, 3.0])], title="", x_label="团体", y_label="小时",
                       horizontal=True)
    assert fig["data"][0]["orientation"] == "h"
    assert list(fig["data"][0]["y"]) == ["甲", "乙"] and list(fig["data"][0]["x"]) == [9.5, 3.0]
    assert fig["layout"]["yaxis"]["autorange"] == "reversed"
    assert fig["layout"]["yaxis"]["title"]["text"] == "团体" and fig["layout"]["xaxis"]["title"]["text"] == "小时"


def test_pie__labels_and_values():
    fig = figures.pie(["男", "女"], [40, 47], title="性别", name="志愿者")
    assert list(fig["data"][0]["labels"]) == ["男", "女"] and list(fig["data"][0]["values"]) == [40, 47]


def test_line__months_and_values():
    fig = figures.line(["2026-01", "2026-02"], [3, 5], title="", x_label="", y_label="", name="成员")
    assert list(fig["data"][0]["x"]) == ["2026-01", "2026-02"] and list(fig["data"][0]["y"]) == [3, 5]


def test_rate_bars__percent_colours_and_target_line():
    fig = figures.rate_bars(["甲", "乙", "丙"], [0.2, 0.05, None], target=0.13, title="", x_label="",
                            y_label="", rate_name="注册率", target_name="目标", links=["/a", "/b", "/c"])
    assert list(fig["data"][0]["y"]) == [20.0, 5.0, None]
    assert list(fig["data"][0]["marker"]["color"]) == [figures.AT_TARGET_COLOR, figures.BELOW_TARGET_COLOR,
                                              figures.AT_TARGET_COLOR]
    assert list(fig["data"][0]["customdata"]) == ["/a", "/b", "/c"]
    line = fig["layout"]["shapes"][0]
    assert (line["y0"], line["y1"]) == (13.0, 13.0)
    assert "目标" in fig["layout"]["annotations"][0]["text"]


def test_hours_and_percent_round_to_two_decimals():
    assert figures.hours(75330) == 1255.5 and figures.hours(-30) == -0.5 and figures.hours(1) == 0.02
    assert figures.percent(77 / 238500) == 0.03 and figures.percent(None) is None


# --- table_of: a download carries the numbers drawn ---


def test_table_of__vertical_bars_one_column_per_series():
    fig = figures.bars(["社区", "学校"], [("县级", [1, 2]), ("街道", [3, 0])], title="", x_label="", y_label="",
                       stacked=True)
    table = figures.table_of(fig, "团体类型")
    assert table.columns == ["团体类型", "县级", "街道"]
    assert table.rows == [["社区", 1, 3], ["学校", 2, 0]]


def test_table_of__horizontal_bars():
    fig = figures.bars(["甲", "乙"], [("小时", [9.5, 3.0])], title="", x_label="", y_label="", horizontal=True)
    assert figures.table_of(fig, "团体").rows == [["甲", 9.5], ["乙", 3.0]]


def test_table_of__pie_and_line():
    assert figures.table_of(figures.pie(["男", "女"], [40, 47], title="", name="志愿者"), "性别") == \
        figures.Table(["性别", "志愿者"], [["男", 40], ["女", 47]])
    fig = figures.line(["2026-01"], [3], title="", x_label="", y_label="", name="成员")
    assert figures.table_of(fig, "月份").rows == [["2026-01", 3]]


def test_table_of__empty_figure():
    assert figures.table_of({"data": [], "layout": {}}, "x") == figures.Table(["x"], [])


def test_to_json__names_cannot_become_markup_links_stay_links():
    fig = figures.bars(['<a href="https://evil.example">点我</a>', "A & B"], [("<b>n</b>", [1, 2])],
                       title="<i>t</i>", x_label="x", y_label="y", links=["/statistics/?region=1&period=year", "/b"])
    text = figures.to_json(fig)
    assert "<" not in text and ">" not in text
    data = json.loads(text)
    assert data["data"][0]["x"] == ['&lt;a href="https://evil.example"&gt;点我&lt;/a&gt;', "A &amp; B"]
    assert data["data"][0]["name"] == "&lt;b&gt;n&lt;/b&gt;" and data["layout"]["title"]["text"] == "&lt;i&gt;t&lt;/i&gt;"
    assert data["data"][0]["customdata"] == ["/statistics/?region=1&period=year", "/b"]
    assert figures.table_of(fig, "x").rows[1] == ["A & B", 2]  # the download keeps the plain text


EVERY_BUILDER = {
    "bars": lambda: figures.bars(["a", "b"], [("n", [1, 2]), ("m", [3, None])], title="t", x_label="x",
                                 y_label="y", links=["/a", "/b"], stacked=True),
    "horizontal bars": lambda: figures.bars(["a"], [("n", [1.5])], title="t", x_label="x", y_label="y",
                                            horizontal=True),
    "pie": lambda: figures.pie(["男", "女"], [1, 2], title="t", name="n"),
    "line": lambda: figures.line(["2026-01"], [3], title="t", x_label="x", y_label="y", name="n"),
    "rate bars": lambda: figures.rate_bars(["a", "b"], [0.2, None], target=0.13, title="t", x_label="x",
                                           y_label="y", rate_name="r", target_name="目标", links=["/a", "/b"]),
}


@pytest.mark.parametrize("builder", EVERY_BUILDER)
def test_every_builder_draws_a_valid_plotly_figure(builder):
    """The builders write Plotly's JSON by hand (no validation on the page): plotly.py's
    graph objects validate it here — a misspelt property or a bad value raises."""
    import plotly.graph_objects as go

    fig = EVERY_BUILDER[builder]()
    checked = go.Figure(fig)  # raises ValueError on any invalid property
    assert checked.to_plotly_json()["data"][0]["type"] == fig["data"][0]["type"]
    assert json.loads(figures.to_json(fig)) == json.loads(json.dumps(fig))  # no markup in these labels


# --- periods ---

TODAY = date(2026, 11, 28)


@pytest.mark.parametrize("args, kind, start, end", [
    ({}, "year", date(2026, 1, 1), date(2026, 12, 31)),
    ({"period": "year", "on": "2025"}, "year", date(2025, 1, 1), date(2025, 12, 31)),
    ({"period": "month", "on": "2026-02"}, "month", date(2026, 2, 1), date(2026, 2, 28)),
    ({"period": "month"}, "month", date(2026, 11, 1), date(2026, 11, 30)),
    ({"period": "quarter", "on": "2026-Q4"}, "quarter", date(2026, 10, 1), date(2026, 12, 31)),
    ({"period": "quarter"}, "quarter", date(2026, 10, 1), date(2026, 12, 31)),
    ({"period": "custom", "from": "2026-03-15", "to": "2026-05-02"}, "custom", date(2026, 3, 15), date(2026, 5, 2)),
])
def test_parse_period__names_its_days(args, kind, start, end):
    period = parse_period(args, TODAY)
    assert (period.kind, period.start, period.end) == (kind, start, end)
    assert parse_period(period.args(), TODAY) == period  # the links it makes name it again


@pytest.mark.parametrize("args", [
    {"period": "week"}, {"period": "year", "on": "26"}, {"period": "year", "on": "２０２６"},
    {"period": "month", "on": "2026-13"}, {"period": "month", "on": "2026-+1"}, {"period": "quarter", "on": "2026-Q5"},
    {"period": "custom", "from": "2026-05-02", "to": "2026-03-15"}, {"period": "custom", "from": "x", "to": ""},
    {"period": "custom", "from": "2000-01-01", "to": "2026-01-01"},  # more than ten years
])
def test_parse_period__refuses_what_names_no_period(args):
    assert parse_period(args, TODAY) is None


def test_period_months_span_years():
    period = Period("custom", date(2025, 11, 20), date(2026, 2, 3))
    assert period.months == ["2025-11", "2025-12", "2026-01", "2026-02"]
    assert period.first_month == date(2025, 11, 1)


@pytest.mark.parametrize("start, end, whole, partial", [
    (date(2026, 1, 1), date(2026, 12, 31), (date(2026, 1, 1), date(2026, 12, 1)), []),
    (date(2026, 2, 10), date(2026, 4, 5), (date(2026, 3, 1), date(2026, 3, 1)),
     [(date(2026, 2, 10), date(2026, 2, 28)), (date(2026, 4, 1), date(2026, 4, 5))]),
    (date(2026, 3, 2), date(2026, 3, 30), None, [(date(2026, 3, 2), date(2026, 3, 30))]),
    (date(2026, 3, 2), date(2026, 4, 30), (date(2026, 4, 1), date(2026, 4, 1)),
     [(date(2026, 3, 2), date(2026, 3, 31))]),
    (date(2025, 12, 31), date(2026, 1, 1), None, [(date(2025, 12, 31), date(2026, 1, 1))]),
    (date(2025, 12, 1), date(2026, 1, 31), (date(2025, 12, 1), date(2026, 1, 1)), []),
])
def test_period__whole_months_and_partial_days_cover_it_once(start, end, whole, partial):
    period = Period("custom", start, end)
    assert period.whole_months == whole and period.partial_days == partial
    days = {first + timedelta(days=n) for first, last in partial for n in range((last - first).days + 1)}
    if whole:
        last = date(whole[1].year, whole[1].month, 28) + timedelta(days=4)
        last -= timedelta(days=last.day)  # the last day of the last whole month
        days |= {whole[0] + timedelta(days=n) for n in range((last - whole[0]).days + 1)}
    assert days == {start + timedelta(days=n) for n in range((end - start).days + 1)}


# --- pure helpers of the queries ---


def test_age_bands__ages_at_the_period_end_year():
    # Ages in 2026: 16, 17 | 18, 35 | 36, 59 | 60, 80; and unknown.
    births = {"2010": 1, "2009": 2, "2008": 3, "1991": 4, "1990": 5, "1967": 6, "1966": 7, "1946": 8, "": 9}
    assert queries.age_bands(births, 2026) == [
        KeyValue("under_18", 1 + 2), KeyValue("18_35", 3 + 4), KeyValue("36_59", 5 + 6), KeyValue("60_plus", 7 + 8),
        KeyValue("", 9)]
    # Ten years earlier the same people were younger.
    assert queries.age_bands(births, 2016)[0] == KeyValue("under_18", 1 + 2 + 3)


def test_minutes_by_month_category_and_child():
    cells = [MinuteCell("2026-01", "culture_sports", "P/A/", 60), MinuteCell("2026-01", "", "P/B/", 30),
             MinuteCell("2026-03", "culture_sports", None, -15)]
    cells = MinuteSums.of(cells)
    assert cells.total == 75
    period = Period("quarter", date(2026, 1, 1), date(2026, 3, 31), "2026-Q1")
    assert queries.minutes_by_month(cells, period) == [MonthValue("2026-01", 90), MonthValue("2026-02", 0),
                                                       MonthValue("2026-03", -15)]
    assert queries.minutes_by_category(cells, ["elderly", "culture_sports"]) == [
        KeyValue("elderly", 0), KeyValue("culture_sports", 45), KeyValue("", 30)]
    kids = [queries.Area(1, "A", "甲", 3, "P/A/"), queries.Area(2, "B", "乙", 3, "P/B/")]
    area = queries.Area(9, "P", "省", 1, "P/")
    assert queries.minutes_by_child(cells, kids, area) == [
        RegionValue("A", "甲", 60), RegionValue("B", "乙", 30), RegionValue(None, "省", -15)]


def test_region_value_rate():
    assert RegionValue("A", "甲", 13, 100).rate == 0.13
    assert RegionValue("A", "甲", 13, None).rate is None and RegionValue("A", "甲", 13, 0).rate is None
