"""The charts of the Lab's reports, drawn by Plotly.

Each chart is a ``<figure>`` holding a Plotly figure (its data and layout as JSON and
one call to ``Plotly.newPlot``); ``html_page`` embeds plotly.js once, so a report is
one self-contained file that opens offline. Plotly (``pip install 'stormproof[cli]'``)
is needed only to write a page with charts: it is imported then, and
``require_plotting`` says clearly when it is missing.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = [
    "REPORT_CSS",
    "Axis",
    "Band",
    "PlottingUnavailable",
    "Style",
    "bar_chart",
    "html_page",
    "line_chart",
    "require_plotting",
    "styles_for",
    "swatch",
]


class PlottingUnavailable(ImportError):
    """An HTML report was asked for, but Plotly, which draws its charts, is missing."""


_MISSING = (
    "the HTML report's charts need Plotly: pip install 'stormproof[cli]' (or "
    "'plotly'), or leave the report out (--no-plots)"
)


@lru_cache(maxsize=1)
def _plotly_js() -> str:
    try:
        from plotly.offline import get_plotlyjs  # noqa: PLC0415 - only reports need it
    except ImportError as error:
        raise PlottingUnavailable(_MISSING) from error
    return str(get_plotlyjs())


def require_plotting() -> None:
    """Raise ``PlottingUnavailable`` (its message says what to install) unless the HTML
    reports can be drawn: call it before a long run whose report is wanted."""
    _plotly_js()


# -- how lines look ------------------------------------------------------------------------

PALETTE = (
    "#d62728",
    "#ff7f0e",
    "#8c564b",
    "#9467bd",
    "#1f77b4",
    "#2ca02c",
    "#17becf",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
)
DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "cross", "star", "hexagon")
WIDTHS = (4.0, 3.4, 2.8, 2.3, 1.9, 1.5)
"""Lines are drawn widest first: lines that coincide show as stripes of their colours."""

# The built-in strategies keep their look from one report to the next.
FIXED = {
    "naive": 0,
    "seed-patterns": 1,
    "aws-legacy": 2,
    "aws-standard": 3,
    "aws-2026": 4,
    "stormproof": 5,
}


@dataclass(frozen=True)
class Style:
    """How one line is drawn: colour, dash (a Plotly dash name), width (px), and the
    marker symbol where points are marked."""

    color: str
    dash: str = "solid"
    width: float = 2.0
    symbol: str = "circle"


def styles_for(names: Sequence[str]) -> dict[str, Style]:
    """A distinct look per name: colour, dash and marker differ, and widths go down in
    the order given (the built-in strategies keep theirs)."""
    out: dict[str, Style] = {}
    spare = (i for i in range(len(PALETTE)) if i not in FIXED.values())
    for order, name in enumerate(names):
        index = FIXED[name] if name in FIXED else next(spare, order)
        out[name] = Style(
            PALETTE[index % len(PALETTE)],
            DASHES[index % len(DASHES)],
            WIDTHS[min(order, len(WIDTHS) - 1)],
            SYMBOLS[index % len(SYMBOLS)],
        )
    return out


_SVG_DASH = {
    "solid": "",
    "dash": "7 3",
    "dot": "2 3",
    "dashdot": "7 3 2 3",
    "longdash": "12 3",
    "longdashdot": "12 3 2 3",
}


def swatch(style: Style) -> str:
    """A small inline picture of a line's look, for tables and legends in HTML."""
    dash = _SVG_DASH.get(style.dash, "")
    dashed = f' stroke-dasharray="{dash}"' if dash else ""
    return (
        '<svg class="swatch" width="30" height="10" viewBox="0 0 30 10" aria-hidden="true">'
        f'<line x1="1" y1="5" x2="29" y2="5" stroke="{html.escape(style.color)}" '
        f'stroke-width="3"{dashed}/></svg>'
    )


# -- charts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Axis:
    """A chart's x axis: where the points sit (``positions``, in the axis's unit), its
    ``title`` (with the unit), the range shown (``low`` to ``high``; None: the data's),
    a log scale, and whether points get markers (by default when there are at most 40)."""

    positions: Sequence[float]
    title: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    markers: bool | None = None


@dataclass(frozen=True)
class Band:
    """A shaded stretch of the x axis (a trigger), from ``start`` to ``end`` in the axis's
    unit, named in the chart's legend as ``label`` and marked at its top with ``tag``."""

    start: float
    end: float
    label: str
    tag: str = ""


BAND_COLORS = ("#e45756", "#4c78a8", "#f58518", "#54a24b", "#b279a2", "#9d755d")


@dataclass(frozen=True)
class Reference:
    """A line that is not a strategy's, drawn grey in steps (a capacity): its values at
    the axis's positions."""

    label: str
    values: Sequence[float | None]


def _clean(values: Sequence[float | None]) -> list[float | None]:
    """Values JSON can hold: NaN and infinities become gaps."""
    return [None if v is None or not math.isfinite(v) else _round(v) for v in values]


def _round(value: float) -> float:
    if value == 0 or value == int(value):
        return value
    return float(f"{value:.6g}")


def _figure_html(title: str, note: str, figure: dict[str, Any], *, tall: bool = False) -> str:
    """A chart as HTML: a caption (the title, then the note) and the Plotly figure."""
    text = json.dumps(figure, separators=(",", ":"), allow_nan=False)
    text = text.replace("</", "<\\/")  # no "</script>" inside the script
    ident = "chart-" + hashlib.sha1(f"{title}\0{text}".encode()).hexdigest()[:12]
    caption = f"<b>{html.escape(title)}</b>"
    if note:
        caption += f' <span class="note">{html.escape(note)}</span>'
    size = " tall" if tall else ""
    return (
        f'<figure class="chart"><figcaption>{caption}</figcaption>'
        f'<div class="plot{size}" id="{ident}"></div>'
        f"<script>(function(){{var f={text};"
        f'Plotly.newPlot("{ident}",f.data,f.layout,f.config);}})();</script></figure>\n'
    )


_CONFIG = {"responsive": True, "displaylogo": False, "displayModeBar": False}
_FONT = {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12}


def _layout(axis_title: str, y_label: str) -> dict[str, Any]:
    return {
        "font": _FONT,
        "margin": {"l": 58, "r": 14, "t": 8, "b": 44, "pad": 2},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "hovermode": "x unified",
        "showlegend": True,
        "legend": {
            "orientation": "h",
            "x": 0,
            "xanchor": "left",
            "y": 1.02,
            "yanchor": "bottom",
            "font": {"size": 11},
        },
        "xaxis": {
            "title": {"text": axis_title, "standoff": 6},
            "showgrid": True,
            "gridcolor": "#eee",
            "zeroline": False,
            "showline": True,
            "linecolor": "#999",
            "ticks": "outside",
            "automargin": True,
        },
        "yaxis": {
            "title": {"text": y_label, "standoff": 6},
            "gridcolor": "#eee",
            "zeroline": True,
            "zerolinecolor": "#bbb",
            "showline": True,
            "linecolor": "#999",
            "automargin": True,
        },
    }


def line_chart(
    title: str,
    lines: Mapping[str, Sequence[float | None]],
    axis: Axis,
    y_label: str,
    *,
    styles: Mapping[str, Style],
    note: str = "",
    bands: Sequence[Band] = (),
    references: Sequence[Reference] = (),
    y_max: float | None = None,
    percent: bool = False,
    log: bool = False,
    value_format: str = ".3g",
) -> str:
    """A line chart as an HTML ``<figure>``: ``title`` and ``note`` (say the bucket size
    there) above it; a line per name in ``lines`` (its values at ``axis.positions``;
    None or NaN leaves a gap) drawn in ``styles[name]``; each ``band`` shaded behind
    and named in the legend; ``references`` as grey step lines. The y axis starts at 0
    (up to ``y_max`` if given), in percent, or on a log scale. A legend above the plot
    names every line (click a name to hide it); hovering shows every line's value at
    that x. Put it in a page made by ``html_page``."""
    x = _clean(axis.positions)
    markers = axis.markers if axis.markers is not None else len(x) <= 40
    hover = ".1%" if percent else value_format
    data: list[dict[str, Any]] = []
    for name, values in lines.items():
        style = styles[name]
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers" if markers else "lines",
                "name": name,
                "x": x,
                "y": _clean(values),
                "line": {"color": style.color, "dash": style.dash, "width": style.width},
                "marker": {"symbol": style.symbol, "size": 7, "color": style.color},
                "hovertemplate": f"%{{y:{hover}}}",
            }
        )
    data.extend(
        {
            "type": "scatter",
            "mode": "lines",
            "name": reference.label,
            "x": x,
            "y": _clean(reference.values),
            "line": {"color": "rgba(40,40,40,0.75)", "width": 2, "shape": "hvh"},
            "hovertemplate": f"%{{y:{hover}}}",
        }
        for reference in references
    )
    layout = _layout(axis.title, y_label)
    xaxis, yaxis = layout["xaxis"], layout["yaxis"]
    if axis.log:
        xaxis["type"] = "log"
    elif axis.low is not None and axis.high is not None:
        xaxis["range"] = [axis.low, axis.high]
    if log:
        yaxis["type"] = "log"
        yaxis["dtick"] = 1  # a tick per power of ten
    else:
        yaxis["rangemode"] = "tozero"
        if y_max is not None:
            yaxis["range"] = [0, y_max * 1.02]
    if percent:
        yaxis["tickformat"] = ".0%"
    xaxis["hoverformat"] = ".4~g"
    shapes: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for i, band in enumerate(bands):
        color = BAND_COLORS[i % len(BAND_COLORS)]
        shapes.append(
            {
                "type": "rect",
                "xref": "x",
                "yref": "paper",
                "x0": band.start,
                "x1": band.end,
                "y0": 0,
                "y1": 1,
                "fillcolor": color,
                "opacity": 0.16,
                "line": {"width": 1, "color": color},
                "layer": "below",
                "name": band.label,
                "showlegend": True,
            }
        )
        if band.tag:
            annotations.append(
                {
                    "x": band.start,
                    "xref": "x",
                    "y": 1 - 0.09 * (i % 6),
                    "yref": "paper",
                    "text": html.escape(band.tag),
                    "showarrow": False,
                    "xanchor": "left",
                    "yanchor": "top",
                    "font": {"size": 11, "color": color},
                    "bgcolor": "rgba(255,255,255,0.7)",
                }
            )
    layout["shapes"] = shapes
    layout["annotations"] = annotations
    figure = {"data": data, "layout": layout, "config": _CONFIG}
    return _figure_html(title, note, figure)


def bar_chart(
    title: str,
    values: Mapping[str, float | None],
    y_label: str,
    *,
    styles: Mapping[str, Style],
    note: str = "",
    value_format: str = ".3g",
) -> str:
    """A bar per name in ``values`` (None: no bar), coloured by ``styles``, as an HTML
    ``<figure>`` for a page made by ``html_page``."""
    names = list(values)
    bars = {
        "type": "bar",
        "x": names,
        "y": _clean([values[n] for n in names]),
        "marker": {"color": [styles[n].color for n in names]},
        "hovertemplate": f"%{{x}}: %{{y:{value_format}}}<extra></extra>",
        "showlegend": False,
    }
    layout = _layout("strategy", y_label)
    layout["hovermode"] = "closest"
    layout["showlegend"] = False
    layout["yaxis"]["rangemode"] = "tozero"
    return _figure_html(title, note, {"data": [bars], "layout": layout, "config": _CONFIG})


# -- pages ----------------------------------------------------------------------------------

REPORT_CSS = """
*, *::before, *::after { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
       margin: 0 auto; padding: 1em 16px 3em; max-width: 1180px; }
h1 { font-size: 1.5em; line-height: 1.25; } h2 { font-size: 1.2em; margin-top: 2em; }
code { font-size: 0.92em; overflow-wrap: anywhere; }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; margin: 1em 0; }
table { border-collapse: collapse; font-size: 13px; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: right;
         white-space: nowrap; }
th { border-bottom: 2px solid #bbb; }
th:first-child, td:first-child { text-align: left; }
svg.swatch { vertical-align: middle; margin-right: 6px; }
figure.chart { margin: 1.2em 0 2em; }
figure.chart figcaption { font-size: 14px; margin-bottom: 2px; }
.plot { width: 100%; height: 400px; }
.plot.tall { height: 520px; }
@media (max-width: 640px) {
  body { font-size: 14px; padding: 0.5em 8px 2em; }
  .plot { height: 460px; }
  .plot.tall { height: 560px; }
}
dl.legend { font-size: 13px; margin: 0.5em 0 1.5em; }
dl.legend dt { font-weight: 600; float: left; clear: left; margin-right: 0.5em; }
dl.legend dd { margin: 0 0 0.3em 0; }
ul.strategies { list-style: none; padding: 0; font-size: 14px; }
ul.strategies li { margin: 0.3em 0; }
.note { color: #555; }
"""
"""The style sheet of the Lab's HTML pages (``html_page``)."""


def html_page(title: str, body: str, *, css: str = REPORT_CSS) -> str:
    """A self-contained HTML page: ``title``, the style sheet, plotly.js once when
    ``body`` holds charts (``line_chart``, ``bar_chart``), then ``body``. Raises
    ``PlottingUnavailable`` when it has charts and Plotly is not installed."""
    script = tail = ""
    if 'class="chart"' in body:
        script = f'<script type="text/javascript">{_plotly_js()}</script>\n'
        tail = _RESIZE
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{css}</style>
{script}</head><body>
{body}
{tail}</body></html>
"""


_RESIZE = """<script>
// Charts follow their box's width (a phone turned, a window resized, a panel opened).
if (window.ResizeObserver) {
  var resized = new ResizeObserver(function (entries) {
    entries.forEach(function (entry) {
      if (entry.target._fullLayout) { Plotly.Plots.resize(entry.target); }
    });
  });
  document.querySelectorAll(".plot").forEach(function (plot) { resized.observe(plot); });
}
</script>
"""
