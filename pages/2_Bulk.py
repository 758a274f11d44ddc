"""Bulk: one rule decides many samples; the preview comes first, and a run undoes as one."""

import streamlit as st

from reflection import diff, ui
from reflection.errors import ReflectionError
from reflection.records import COMPARISONS, REFLECTED_KINDS, REVIEW_STATUSES, Condition
from reflection.select import bulk

ui.require_role("bulk")
ui.page_header(
    "Bulk decisions",
    "🧹",
    caption="Apply a rule to every sample it matches: see how many and a few examples first.",
)
store = ui.get_store()
dataset = ui.require_dataset(store)
name = ui.annotator()
ui.show_flash()
if store.dataset_assigned(dataset.id):
    st.info(
        "This dataset is assigned to reviewers: a bulk decision is an adjudication. It settles"
        " the samples it matches and leaves every reviewer's own decision as it is."
    )

CUSTOM = "Custom rule"
choice = st.selectbox("Rule", [*bulk.PRESETS, CUSTOM], key="bulk_preset")


def custom_rule() -> bulk.BulkRule:
    """The rule built from the form below the selector."""
    left, middle, right = st.columns(3)
    action = left.radio("Decision", bulk.ACTIONS, horizontal=True, key="bulk_action")
    target = middle.selectbox("Version", bulk.TARGETS, key="bulk_target")
    kind = right.selectbox(
        "Candidate kind", REFLECTED_KINDS,
        key="bulk_kind", disabled=target != "kind",
    )  # fmt: skip
    metrics = store.metric_names()
    conditions = []
    for n in range(2):
        a, b, c, d = st.columns([3, 2, 1, 2])
        metric = a.selectbox(f"Score condition {n + 1}", ["(none)", *metrics], key=f"bulk_m{n}")
        scorer = b.text_input("Scorer (blank: newest)", key=f"bulk_s{n}")
        op = c.selectbox("Op", COMPARISONS, key=f"bulk_op{n}")
        value = d.number_input("Value", value=1.0, key=f"bulk_v{n}", format="%.4f")
        if metric != "(none)":
            conditions.append(Condition(metric, op, value, scorer.strip() or None))
    failed = st.checkbox("Only samples whose every reflection failed to parse", key="bulk_failed")
    statuses = st.multiselect(
        "Only samples that are", REVIEW_STATUSES, default=["undecided"], key="bulk_statuses"
    )
    return bulk.BulkRule(
        action=action, target=target, kind=kind if target == "kind" else None,
        conditions=tuple(conditions), reflection_failed=failed, statuses=tuple(statuses),
    )  # fmt: skip


@st.cache_data(show_spinner="Matching…", max_entries=16)
def preview_of(_store, path: str, dataset_id: int, version: tuple, rule: bulk.BulkRule):
    """What `rule` would decide, until the store changes (its version is the key)."""
    return bulk.preview(_store, dataset_id, rule, examples=5)


try:
    rule = custom_rule() if choice == CUSTOM else bulk.PRESETS[choice]
    version = tuple(sorted(store.version().items()))
    preview = preview_of(store, str(store.path), dataset.id, version, rule)
except ReflectionError as exc:
    ui.show_error(exc)
    st.stop()

st.markdown(f"**Rule:** {diff.escape_markdown(rule.describe())}")
st.metric("Samples this rule decides now", f"{preview.count:,}")
if preview.examples:
    st.caption("The first samples it would decide, and the version it would take:")
    st.dataframe(
        [
            {
                "sample": e.sample_id,
                "version": e.kind,
                "instruction": e.instruction[:200],
                "output": e.output[:200],
                **{k: round(v, 4) for k, v in e.scores.items() if v is not None},
            }
            for e in preview.examples
        ],
        hide_index=True,
        width="stretch",
    )


@ui.guard("bulk")
def apply_rule() -> None:
    try:
        run = bulk.apply(store, dataset.id, rule, annotator=name)
        ui.flash("success", f"Bulk run {run.id}: {run.counters['reviews']:,} samples decided.")
    except ReflectionError as exc:
        ui.flash("error", str(exc))


@ui.guard("bulk")
def undo_run(run_id: int) -> None:
    try:
        undone = bulk.undo(store, run_id, annotator=name)
        ui.flash("success", f"Bulk run {run_id} undone: {undone:,} decisions taken back.")
    except ReflectionError as exc:
        ui.flash("error", str(exc))


st.button(
    f"Apply to {preview.count:,} samples",
    type="primary",
    disabled=preview.count == 0,
    on_click=apply_rule,
    key="bulk_apply",
)

st.subheader("Bulk runs")
runs = bulk.bulk_runs(store, dataset.id)
if not runs:
    st.caption("No bulk run on this dataset yet.")
for info in runs:
    left, right = st.columns([5, 1])
    left.markdown(
        f"**Run {info.id}** · {diff.escape_markdown(info.status)} · {diff.escape_markdown(info.started_at[:19])}"
        f" · {info.reviews:,} decided, {info.in_force:,} still in force  \n"
        f"{diff.escape_markdown(info.description)}"
    )
    right.button(
        "Undo run",
        key=f"bulk_undo_{info.id}",
        disabled=info.in_force == 0,
        on_click=undo_run,
        args=(info.id,),
    )
