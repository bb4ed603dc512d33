"""The archive report as a page a person opens: one self-contained HTML file (the chart an inline SVG drawn by
matplotlib, no script, nothing fetched: a Content-Security-Policy that forbids it), beside the scored output.

Tweets are hostile input: every text on the page is escaped, and the chart holds no tweet text."""

from __future__ import annotations

import datetime as dt
import html
import io
from typing import Any

CHART_DAYS_BY_HOUR = 14  # a longer archive is charted by day: hourly bars would be thinner than a pixel
ALERT_COLOUR = "#d62728"
STYLE = """
body { font-family: system-ui, sans-serif; color: #1b1f24; margin: 0 auto; max-width: 64rem; padding: 1.5rem;
       line-height: 1.45; }
h1 { font-size: 1.5rem; margin-bottom: 0.2rem; } h2 { font-size: 1.15rem; margin: 1.6rem 0 0.5rem; }
p.lead { color: #57606a; margin-top: 0; }
.figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(9rem, 1fr)); gap: 0.6rem; }
.figures div { background: #f3f5f7; border-radius: 6px; padding: 0.5rem 0.7rem; }
.figures b { display: block; font-size: 1.3rem; }
table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: 0.3rem 0.5rem;
       border-bottom: 1px solid #d8dee4; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.alert { background: #fdecea; border-left: 4px solid #d62728; padding: 0.5rem 0.8rem; }
figure { margin: 0; } figure svg { width: 100%; height: auto; }
blockquote { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; }
"""
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _number(value: int | float | None) -> str:
    return "–" if value is None else f"{value:,}"


def _percent(share: float | None) -> str:
    return "–" if share is None else f"{100 * share:.1f}%"


def chart_svg(report: dict[str, Any]) -> str:
    """Negative reach over time, stacked by reason, the hours the alert would have fired shaded; an inline SVG.
    Without a time column: negative reach by reason in one bar each."""
    from matplotlib import rcParams
    from matplotlib.figure import Figure

    rcParams["svg.hashsalt"] = "archive-report"  # the same report, the same page
    figure = Figure(figsize=(10, 4), layout="constrained")
    axes = figure.add_subplot()
    reasons = list(report["by_reason"])
    hours = report["hours"]
    if hours:
        _stacked_over_time(axes, hours, reasons)
    else:
        names = reasons or ["none"]
        axes.bar(names, [report["by_reason"].get(name, {}).get("reach", 0) for name in names], color="#4c72b0")
        axes.set_title("Negative reach by reason (the file has no time column)")
    axes.set_ylabel("negative reach (accounts)")
    axes.spines[["top", "right"]].set_visible(False)
    stream = io.StringIO()
    figure.savefig(stream, format="svg", metadata={"Date": None})
    svg = stream.getvalue()
    return svg[svg.index("<svg") :]


def _stacked_over_time(axes: Any, hours: list[dict[str, Any]], reasons: list[str]) -> None:
    moments = [dt.datetime.fromisoformat(hour["hour"].replace("Z", "+00:00")) for hour in hours]
    by_day = (moments[-1] - moments[0]) > dt.timedelta(days=CHART_DAYS_BY_HOUR)
    width = dt.timedelta(days=1) if by_day else dt.timedelta(hours=1)
    buckets: dict[dt.datetime, dict[str, int]] = {}
    for moment, hour in zip(moments, hours, strict=True):
        bucket = moment.replace(hour=0) if by_day else moment
        into = buckets.setdefault(bucket, {})
        for reason, reached in hour["negative_reach_by_reason"].items():
            into[reason] = into.get(reason, 0) + reached
    starts = sorted(buckets)
    names = [*reasons, *sorted({r for b in buckets.values() for r in b} - set(reasons))]
    colours = [f"C{index % 10}" for index in range(len(names))]
    bottom = [0] * len(starts)
    for name, colour in zip(names, colours, strict=True):
        heights = [buckets[start].get(name, 0) for start in starts]
        axes.bar(starts, heights, width=width * 0.9, bottom=bottom, align="edge", label=name, color=colour)
        bottom = [low + high for low, high in zip(bottom, heights, strict=True)]
    fired = [moment for moment, hour in zip(moments, hours, strict=True) if hour["bad_buzz"]]
    for index, moment in enumerate(fired):
        label = "hour the bad-buzz alert would have fired" if index == 0 else None
        axes.axvspan(moment, moment + dt.timedelta(hours=1), color=ALERT_COLOUR, alpha=0.18, label=label, lw=0)
    axes.set_title(f"Negative reach per {'day' if by_day else 'hour'} (UTC), stacked by reason")
    axes.legend(loc="upper left", fontsize="small", frameon=False)
    axes.figure.autofmt_xdate()


def page(report: dict[str, Any], title: str) -> str:
    """The whole page: summary figures, the alert hours, the chart, the reasons, the loudest complaints."""
    negative = report["by_sentiment"]["negative"]
    fired = report["bad_buzz_hours"]
    rule = report["bad_buzz_rule"]
    figures = [
        ("rows", _number(report["rows"])),
        ("distinct tweets", _number(report["tweets"])),
        ("retweets and copies", _number(report["retweets_and_copies"])),
        ("reach", _number(report["reach"])),
        ("negative tweets", _percent(negative["share_of_tweets"])),
        ("negative reach", _percent(negative["share_of_reach"])),
        ("unsure", _percent(report["unsure_share"])),
        ("unreadable", _percent(report["unreadable_share"])),
        ("rows with an error", _percent(report["error_share"])),
    ]
    alert = (
        f'<p class="alert"><b>The bad-buzz alert would have fired in {len(fired)} hour(s)</b>: '
        + ", ".join(_e(hour.replace("T", " ").replace(":00:00Z", ":00")) for hour in fired[:24])
        + " (UTC)"
        + ("…" if len(fired) > 24 else "")
        + "</p>"
        if fired
        else "<p>The bad-buzz alert would not have fired"
        + ("" if report["hours"] else " (no time column: hours cannot be judged)")
        + ".</p>"
    )
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_e(title)}: tweet sentiment report</title><style>{STYLE}</style></head><body>",
            f"<h1>{_e(title)}</h1>",
            f'<p class="lead">Scored tweets: what the anger was about and when it came. Retweets and copies are '
            f"counted once, their reach added to the original's. Alert rule: negative share of an hour over the "
            f"{_e(rule['baseline_hours'])} hours before by more than {_e(rule['margin_points'])} points, at least "
            f"{_e(rule['minimum_volume'])} readable tweets in each.</p>",
            '<div class="figures">'
            + "".join(f"<div>{_e(name)}<b>{_e(value)}</b></div>" for name, value in figures)
            + "</div>",
            alert,
            f'<h2>Negative reach over time</h2><figure aria-label="negative reach by reason">{chart_svg(report)}'
            "</figure>",
            "<h2>Top reasons</h2>",
            _reasons_table(report),
            "<h2>Loudest complaints</h2>",
            _loudest_table(report),
            "</body></html>",
        ]
    )


def _table(table_id: str, headers: list[str], rows: list[str]) -> str:
    if not rows:
        return "<p>No negative tweet.</p>"
    head = "".join(f"<th>{_e(header)}</th>" for header in headers)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _reasons_table(report: dict[str, Any]) -> str:
    rows = [
        f"<tr><td>{_e(name)}</td><td class=n>{_number(tally['tweets'])}</td><td class=n>{_number(tally['rows'])}"
        f"</td><td class=n>{_number(tally['reach'])}</td><td class=n>{_percent(tally['share_of_negative_reach'])}"
        "</td></tr>"
        for name, tally in report["by_reason"].items()
    ]
    return _table("reasons", ["reason", "tweets", "rows", "reach", "share of negative reach"], rows)


def _loudest_table(report: dict[str, Any]) -> str:
    rows = [
        f"<tr><td><blockquote>{_e(item['text'])}</blockquote></td><td>{_e(item['reason'] or '–')}</td>"
        f"<td class=n>{_number(item['reach'])}</td><td class=n>{_number(item['rows'])}</td></tr>"
        for item in report["loudest_complaints"]
    ]
    return _table("loudest", ["tweet", "reason", "reach", "rows"], rows)
