"""The dashboard's plotly figures, drawn from `DashboardData` (no store access here).

Names that come from the data (annotators, flags, metrics) are escaped: plotly renders
labels as HTML.
"""

from __future__ import annotations

import html

import plotly.graph_objects as go

from ..records import IFD_METRIC
from .dashboard import DashboardData

# One colour per version everywhere, so "response" is the same bar in every chart.
VERSION_COLORS = {
    "original": "#4d4d4d",
    "instruction": "#1f77b4",
    "response": "#ff7f0e",
    "both": "#9467bd",
    "compress": "#8c564b",
    "reroll": "#e377c2",
    "edit": "#2ca02c",
    "other": "#17becf",
}
STATUS_COLORS = {
    "accepted": "#2e7d32",
    "edited": "#1565c0",
    "rejected": "#c62828",
    "skipped": "#9e9e9e",
    "undecided": "#bdbdbd",
}


def _figure(title: str, **layout) -> go.Figure:
    figure = go.Figure()
    figure.update_layout(title=title, margin={"t": 50, "b": 40, "l": 50, "r": 20}, **layout)
    return figure


def _empty(title: str, message: str) -> go.Figure:
    figure = _figure(title, xaxis_visible=False, yaxis_visible=False, height=260)
    figure.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    return figure


def progress_figure(data: DashboardData) -> go.Figure:
    title = "Decisions over time"
    if data.progress.empty:
        return _empty(title, "No decisions yet")
    figure = _figure(
        title,
        barmode="stack",
        yaxis_title="decided in period",
        yaxis2={
            "title": "decided (total)",
            "overlaying": "y",
            "side": "right",
            "rangemode": "tozero",
        },
    )
    for status, frame in data.progress.groupby("status", sort=False):
        figure.add_bar(
            x=frame["time"], y=frame["n"], name=status, marker_color=STATUS_COLORS.get(status)
        )
    totals = data.progress.drop_duplicates("time")
    figure.add_scatter(x=totals["time"], y=totals["decided"], name="decided (total)", yaxis="y2")
    return figure


def annotators_figure(data: DashboardData) -> go.Figure:
    title = "Decisions by annotator"
    if data.annotators.empty:
        return _empty(title, "No decisions yet")
    # Plotly draws a few HTML tags in labels; names are typed by people, so escape them.
    frame = data.annotators.assign(annotator=data.annotators["annotator"].map(html.escape))
    figure = _figure(title, barmode="stack", xaxis_title="samples")
    for status, part in frame.groupby("status", sort=False):
        figure.add_bar(
            x=part["n"], y=part["annotator"], name=status, orientation="h",
            marker_color=STATUS_COLORS.get(status),
        )  # fmt: skip
    return figure


def histogram_figures(data: DashboardData) -> list[go.Figure]:
    """One overlaid histogram per (metric, scorer): before (original) vs after (each kind)."""
    figures = []
    for (metric, scorer), frame in data.histograms.groupby(["metric", "scorer"], sort=False):
        every = int(frame["every"].iloc[0])
        title = f"{metric}{f' ({scorer})' if scorer else ''}: before vs after reflection"
        if every > 1:
            title += f" (every {every}th sample)"
        figure = _figure(
            html.escape(title), barmode="overlay", bargap=0, xaxis_title=html.escape(metric),
            yaxis_title="share of versions",
        )  # fmt: skip
        for version, part in frame.groupby("version", sort=False):
            figure.add_bar(
                x=(part["lo"] + part["hi"]) / 2, y=part["share"], width=part["hi"] - part["lo"],
                name=html.escape(version), opacity=0.6, customdata=part["n"],
                marker_color=VERSION_COLORS.get(version),
                hovertemplate="%{x:.3g}: %{customdata} versions<extra>%{fullData.name}</extra>",
            )  # fmt: skip
        figures.append(figure)
    return figures


def shift_figures(data: DashboardData, metric: str = IFD_METRIC) -> list[go.Figure]:
    """The per-sample change of `metric`: a histogram per kind and original-vs-candidate points."""
    if data.shift.empty:
        return [_empty(f"{metric} shift", f"No sample has {metric} on both versions yet")]
    every = int(data.shift["every"].iloc[0])
    sampled = f" (every {every}th sample)" if every > 1 else ""
    bars = _figure(
        f"{metric} change per sample (candidate minus original){sampled}", barmode="overlay",
        bargap=0, xaxis_title=f"{metric} change", yaxis_title="candidates",
    )  # fmt: skip
    for kind, part in data.shift.groupby("kind", sort=False):
        bars.add_bar(
            x=(part["lo"] + part["hi"]) / 2, y=part["n"], width=part["hi"] - part["lo"],
            name=html.escape(kind), opacity=0.6, marker_color=VERSION_COLORS.get(kind),
        )  # fmt: skip
    bars.add_vline(x=0, line_dash="dot")
    points = data.shift_points
    scatter = _figure(
        f"{metric}: original vs candidate ({len(points):,} candidates shown)",
        xaxis_title="original", yaxis_title="candidate",
    )  # fmt: skip
    for kind, part in points.groupby("kind", sort=False):
        scatter.add_scatter(
            x=part["original"], y=part["candidate"], mode="markers", name=html.escape(kind),
            opacity=0.5, customdata=part["sample_id"], marker_color=VERSION_COLORS.get(kind),
            hovertemplate="sample %{customdata}: %{x:.3g} → %{y:.3g}",
        )  # fmt: skip
    if not points.empty:
        low = float(min(points["original"].min(), points["candidate"].min()))
        high = float(max(points["original"].max(), points["candidate"].max()))
        scatter.add_shape(type="line", x0=low, y0=low, x1=high, y1=high, line_dash="dot")
    return [bars, scatter]


def acceptance_figure(data: DashboardData) -> go.Figure:
    title = "Acceptance rate by version kind"
    if data.acceptance["offered"].sum() == 0:
        return _empty(title, "No decisions yet")
    frame = data.acceptance
    figure = _figure(title, yaxis={"range": [0, 1], "tickformat": ".0%"})
    figure.add_bar(
        x=frame["kind"].map(html.escape), y=frame["rate"],
        marker_color=[VERSION_COLORS.get(kind, "#7f7f7f") for kind in frame["kind"]],
        customdata=frame[["accepted", "offered"]].to_numpy(),
        hovertemplate="%{x}: %{customdata[0]} of %{customdata[1]} decided samples<extra></extra>",
    )  # fmt: skip
    return figure


def flags_figure(data: DashboardData) -> go.Figure:
    title = "Flagged samples"
    if data.flags.empty or data.flags["n"].sum() == 0:
        return _empty(title, "No flags")
    figure = _figure(title, yaxis_title="samples")
    for source, part in data.flags.groupby("from", sort=False):
        figure.add_bar(x=part["flag"].map(html.escape), y=part["n"], name=f"set at {source}")
    return figure


def figures(data: DashboardData, shift_metric: str = IFD_METRIC) -> list[go.Figure]:
    """Every dashboard chart, in page order."""
    return [
        progress_figure(data),
        annotators_figure(data),
        *histogram_figures(data),
        *shift_figures(data, shift_metric),
        acceptance_figure(data),
        flags_figure(data),
    ]
