"""Dashboard: review progress, annotators, and how reflection moved the scores."""

import streamlit as st

from reflection import ui
from reflection.review import dashboard, experiment, figures, spotcheck
from reflection.store import Store

ui.require_role("read")
ui.page_header("Dashboard", "📊", caption="Every chart follows the dataset picked in the sidebar.")
store = ui.get_store()
dataset = ui.require_dataset(store)


@st.cache_data(show_spinner="Aggregating…", max_entries=32)
def load(_store: Store, path: str, dataset_id: int, version: tuple, metrics: tuple | None):
    """All frames for one dataset; the store's version in the key drops stale entries."""
    return dashboard.dashboard_data(_store, dataset_id, list(metrics) if metrics else None)


version = tuple(sorted(store.version().items()))
picked = st.session_state.get("dash_metrics")
data = load(store, str(store.path), dataset.id, version, tuple(picked) if picked else None)

counts = data.status
columns = st.columns(len(counts) + 1)
columns[0].metric("Samples", f"{sum(counts.values()):,}")
for column, (status, n) in zip(columns[1:], counts.items(), strict=True):
    column.metric(status.capitalize(), f"{n:,}")

left, right = st.columns(2)
left.plotly_chart(figures.progress_figure(data), width="stretch")
right.plotly_chart(figures.annotators_figure(data), width="stretch")

st.subheader("Scores before vs after reflection")
shown = sorted(set(data.histograms["metric"])) if not data.histograms.empty else []
st.multiselect(
    "Metrics", data.metrics, default=picked or shown, key="dash_metrics",
    help="Each histogram shows shares of versions, so kinds with fewer versions compare fairly.",
)  # fmt: skip
histograms = figures.histogram_figures(data)
if not histograms:
    st.caption("No scores yet: score the dataset on the Run page or with `reflection score`.")
for start in range(0, len(histograms), 2):
    for column, figure in zip(st.columns(2), histograms[start : start + 2], strict=False):
        column.plotly_chart(figure, width="stretch")

st.subheader("IFD shift per sample")
for column, figure in zip(st.columns(2), figures.shift_figures(data), strict=False):
    column.plotly_chart(figure, width="stretch")

left, right = st.columns(2)
left.plotly_chart(figures.acceptance_figure(data), width="stretch")
right.plotly_chart(figures.flags_figure(data), width="stretch")

ui.agreement_section(store, dataset.id)

spot_figures = spotcheck.narrowing_figures(store, dataset.id)
if spot_figures:
    st.subheader("Spot-checks: how the estimate narrows as samples are reviewed")
for start in range(0, len(spot_figures), 2):
    for column, figure in zip(st.columns(2), spot_figures[start : start + 2], strict=False):
        column.plotly_chart(figure, width="stretch")

for result in experiment.reports(store, dataset.id):
    st.subheader(f"Prompt experiment {result.name}: {result.size} samples")
    st.dataframe(experiment.arm_rows(result), hide_index=True)
    for line in experiment.report_lines(result)[1 + len(result.arms) :]:
        st.caption(line.strip())
