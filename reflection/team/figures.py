"""The Dashboard's agreement figures and tables, drawn from an `Agreement` (no store here).

Reviewer names come from people: plotly renders labels as HTML, so they are escaped.
"""

from __future__ import annotations

import html

import pandas as pd
import plotly.graph_objects as go

from .agreement import Agreement


def _figure(title: str, **layout) -> go.Figure:
    figure = go.Figure()
    figure.update_layout(title=title, margin={"t": 50, "b": 40, "l": 60, "r": 20}, **layout)
    return figure


def overall_figure(result: Agreement) -> go.Figure:
    """Percent agreement, Fleiss' kappa and Krippendorff's alpha, with 95% intervals."""
    figure = _figure(
        f"Agreement over all reviewers ({result.n_items:,} samples)",
        height=320,
        yaxis={"range": [-1, 1.05], "title": "value"},
    )
    rows = [
        ("percent agreement", result.percent, None),
        ("Fleiss' kappa", result.fleiss_kappa, result.fleiss_kappa_ci),
        ("Krippendorff's alpha", result.krippendorff_alpha, result.krippendorff_alpha_ci),
    ]
    shown = [(name, value, ci) for name, value, ci in rows if value is not None]
    figure.add_bar(
        x=[name for name, _, _ in shown],
        y=[value for _, value, _ in shown],
        error_y={
            "type": "data",
            "symmetric": False,
            "array": [(ci[1] - value) if ci else 0 for _, value, ci in shown],
            "arrayminus": [(value - ci[0]) if ci else 0 for _, value, ci in shown],
        },
        text=[f"{value:.2f}" for _, value, _ in shown],
        marker_color="#1565c0",
    )
    return figure


def kappa_figure(result: Agreement) -> go.Figure:
    """Cohen's kappa for each pair of reviewers, as a symmetric heatmap."""
    names = sorted({p["a"] for p in result.cohen_kappa} | {p["b"] for p in result.cohen_kappa})
    index = {name: n for n, name in enumerate(names)}
    values: list[list[float | None]] = [[None] * len(names) for _ in names]
    counts = [[0] * len(names) for _ in names]
    for pair in result.cohen_kappa:
        a, b = index[pair["a"]], index[pair["b"]]
        values[a][b] = values[b][a] = pair["kappa"]
        counts[a][b] = counts[b][a] = pair["n"]
    labels = [html.escape(name) for name in names]
    figure = _figure("Cohen's kappa per pair of reviewers", height=max(320, 40 * len(names)))
    figure.add_heatmap(
        z=values,
        x=labels,
        y=labels,
        zmin=-1,
        zmax=1,
        colorscale="RdBu",
        customdata=counts,
        hovertemplate="%{y} / %{x}: kappa %{z:.2f} on %{customdata} samples<extra></extra>",
    )
    return figure


def reviewer_table(result: Agreement) -> pd.DataFrame:
    """Per reviewer: samples compared with the consensus, and the share that agree."""
    rows = [
        {
            "reviewer": reviewer,
            "samples": table["n"],
            "agree": table["agree"],
            "share": table["agree"] / table["n"] if table["n"] else 0.0,
        }
        for reviewer, table in result.confusion.items()
    ]
    return pd.DataFrame(rows, columns=["reviewer", "samples", "agree", "share"])


def confusion_frame(result: Agreement, reviewer: str) -> pd.DataFrame:
    """One reviewer's confusion table: their decisions (rows) against the consensus's."""
    table = result.confusion[reviewer]
    return pd.DataFrame(
        table["matrix"],
        index=[f"{reviewer}: {label}" for label in table["labels"]],
        columns=[f"consensus: {label}" for label in table["labels"]],
    )
