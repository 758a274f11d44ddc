"""Export: the curated set in a chosen format, previewed first, downloaded or written to a path."""

import tempfile
from pathlib import Path

import streamlit as st

from reflection import ui
from reflection.errors import ReflectionError
from reflection.export import curated as export
from reflection.formats import FORMATS, SUFFIXES
from reflection.team.consensus import CONSENSUS_MODES

ui.require_role("export")
ui.page_header(
    "Export", "📦", caption="Accepted versions (and edits) go out; rejected samples never do."
)
store = ui.get_store()
dataset = ui.require_dataset(store)
ui.show_flash()

POLICY_HELP = {
    "skip": "leave undecided samples out",
    "original": "keep their original",
    "suggested": "keep what the selection rules suggest (the original where none)",
}
left, middle, right = st.columns(3)
fmt = left.selectbox("Format", FORMATS, key="export_format")
consensus = left.selectbox(
    "Several reviewers", [None, *CONSENSUS_MODES], key="export_consensus",
    format_func=lambda mode: mode or "the decision in force",
    help="Where several reviewers decided a sample, what counts.",
)  # fmt: skip
undecided = middle.radio(
    "Undecided samples", export.UNDECIDED_POLICIES, key="export_undecided",
    format_func=lambda p: f"{p}: {POLICY_HELP[p]}",
)  # fmt: skip
provenance = right.checkbox(
    "Provenance", key="export_provenance",
    help="Each record says which sample and version it is, and who decided it and when.",
)  # fmt: skip


@st.cache_data(show_spinner="Counting…", max_entries=16)
def preview(_store, path: str, dataset_id: int, version: tuple, fmt, undecided, provenance,
            consensus):  # fmt: skip
    """The first records and the counts, until the store changes (its version is the key)."""
    return export.export_records(
        _store, dataset_id, fmt, undecided=undecided, provenance=provenance, limit=5,
        consensus=consensus,
    )  # fmt: skip


try:
    version = tuple(sorted(store.version().items()))
    records, counts = preview(
        store, str(store.path), dataset.id, version, fmt, undecided, provenance, consensus
    )
except ReflectionError as exc:
    ui.show_error(exc)
    st.stop()

columns = st.columns(len(counts))
for column, (reason, n) in zip(columns, counts.items(), strict=True):
    column.metric(reason.replace("-", " ").capitalize(), f"{n:,}")
st.caption(f"The first {len(records)} of {counts.get('written', 0):,} records:")
for record in records:
    st.json(record, expanded=False)


def write_to(path: Path) -> export.ExportResult:
    return export.export_dataset(
        store, dataset.id, path, fmt, undecided=undecided, provenance=provenance,
        consensus=consensus,
    )  # fmt: skip


@ui.guard("export")
def prepare_download() -> None:
    """Export to a temporary file and keep its bytes for the download button."""
    try:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"{dataset.name}{SUFFIXES[fmt]}"
            result = write_to(path)
            st.session_state["export_file"] = (path.name, path.read_bytes(), result.written)
    except ReflectionError as exc:
        ui.flash("error", str(exc))


st.subheader("Download")
if fmt == "hf":
    st.caption("A Hugging Face dataset is a folder: write it to a path below.")
else:
    st.button("Prepare the file", on_click=prepare_download, key="export_prepare")
    prepared = st.session_state.get("export_file")
    if prepared and prepared[0] == f"{dataset.name}{SUFFIXES[fmt]}":
        name, data, written = prepared
        st.download_button(
            f"Download {name} ({written:,} records)", data, file_name=name, key="export_download"
        )

st.subheader("Write to a path on this machine")
roots = ", ".join(f"`{root}`" for root in ui.team_settings().data_roots)
target = st.text_input("Path", placeholder=f"{dataset.name}_curated{SUFFIXES.get(fmt, '')}",
                       key="export_path", help=f"Inside the data roots: {roots}")  # fmt: skip


@ui.guard("paths")
def write_path() -> None:
    try:
        result = write_to(ui.confined_path(target))
        ui.flash(
            "success", f"Wrote {result.written:,} records to {result.path} (run {result.run_id})."
        )
    except ReflectionError as exc:
        ui.flash("error", str(exc))


st.button("Write", on_click=write_path, disabled=not target.strip(), key="export_write")
