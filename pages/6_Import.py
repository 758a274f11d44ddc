"""Import reflections made elsewhere as candidates, and spot-check a large set statistically."""

import streamlit as st

from reflection import diff, ui
from reflection.errors import ReflectionError
from reflection.ingest import adopt
from reflection.review import spotcheck

ui.require_role("import")
ui.page_header(
    "Import & spot-check",
    "📥",
    caption="Review reflections made elsewhere, or estimate an oracle's quality from a sample.",
)
store = ui.get_store()
dataset = ui.dataset_picker(store)
name = ui.annotator(required=False)
ui.show_flash()
# A keyed, state-tracking tab bar: a rerun (an import, a new spot-check) keeps the tab open.
importing, checking = st.tabs(
    ["Import candidates", "Spot-check"], key="import_tab", on_change="rerun"
)

with importing:
    st.markdown(
        "Four shapes, detected from the first record: **paired** records (original and new"
        " version, e.g. `new_instruct` / `new_answer` / `better_answer`), a second **aligned**"
        " dataset, **raw** oracle replies, and model-vs-model **pairs** (`Answer1` / `Answer2`"
        " with judge scores). Nothing is written unless every record matches."
    )
    source = st.radio("Source", ["Upload a file", "Path on this machine"], horizontal=True)
    if source == "Upload a file":
        upload = st.file_uploader("Reflections file", type=["json", "jsonl", "csv", "parquet"])
        path = ""
    else:
        upload = None
        roots = ", ".join(f"`{root}`" for root in ui.team_settings().data_roots)
        path = st.text_input("Path", placeholder="alpaca_reflected.json",
                             help=f"Inside the data roots: {roots}").strip()  # fmt: skip
    left, right = st.columns(2)
    target = left.text_input(
        "Dataset", value=dataset.name if dataset else "", help="Paired and pairs files create it."
    )
    model = right.text_input("Model that wrote the new versions (optional)")
    with st.expander("Shape, kind, matching and field names"):
        cols = st.columns(3)
        shape = cols[0].selectbox("Shape", ["detect", *adopt.SHAPES])
        kind = cols[1].selectbox("Candidate kind", ["infer", *adopt.KINDS])
        match = cols[2].text_input("Match", placeholder="position, hash or field:NAME")
        fields = st.text_input(
            "Field names", placeholder="new_output=reflected, instruction=prompt"
        )
        judge = st.text_input("Judge (pairs: stored as the scores' scorer)")
    if st.button("Import candidates", type="primary", disabled=not (upload or path)):
        options = {
            "dataset": target.strip() or None,
            "shape": None if shape == "detect" else shape,
            "kind": None if kind == "infer" else kind,
            "match": match.strip() or None,
            "model": model.strip(),
            "judge": judge.strip(),
        }
        try:
            options["fields"] = adopt.parse_fields(fields)
            if upload is not None:
                result = adopt.import_candidates_bytes(
                    store, upload.getvalue(), upload.name, **options
                )
            else:
                result = adopt.import_candidates(store, ui.confined_path(path), **options)
        except ReflectionError as exc:
            ui.show_error(exc)
        else:  # rerun so the dataset picker and the spot-check tab see the new data
            ui.flash("success", adopt.summary(result, upload.name if upload else path))
            st.session_state[ui.DATASET_KEY] = result.dataset
            st.rerun()

with checking:
    if dataset is None:
        st.info("Import a dataset first: a spot-check draws from one.")
        st.stop()
    with st.form("spotcheck"):
        st.markdown(f"Draw a seeded random sample of **{diff.escape_markdown(dataset.name)}**.")
        cols = st.columns(4)
        check_name = cols[0].text_input("Name", value="spot-check")
        size = cols[1].number_input("Samples", min_value=1, value=50, step=10)
        seed = cols[2].number_input("Seed", min_value=0, value=0, step=1)
        good = cols[3].selectbox(
            "Good means", spotcheck.GOOD, help="candidate: an oracle's version was accepted as is"
        )
        cols = st.columns(3)
        stratify = cols[0].selectbox("Stratify by", ["nothing", "kind", "flag", "score"])
        metric = cols[1].selectbox("Score", store.metric_names() or ["(no scores)"])
        edges = cols[2].text_input("Bucket edges", placeholder="0.5, 1.0 (default: quartiles)")
        if st.form_submit_button("Create spot-check", type="primary"):
            how = {"nothing": "", "score": f"score:{metric}"}.get(stratify, stratify)
            try:
                cuts = [float(v) for v in edges.split(",") if v.strip()] or None
                spot = spotcheck.create_spotcheck(
                    store, dataset.id, check_name, size=int(size), seed=int(seed),
                    stratify=how, good=good, edges=cuts, annotator=name,
                )  # fmt: skip
            except (ReflectionError, ValueError) as exc:
                ui.show_error(exc)
            else:
                drawn = min(int(size), spot.population)
                st.success(f"Spot-check created: {drawn:,} drawn of {spot.population:,}.")

    for result in spotcheck.reports(store, dataset.id):
        spot = result.spotcheck
        title = f"{spot.name} · seed {spot.seed} · {spot.stratify or 'not stratified'}"
        st.subheader(diff.escape_markdown(title))
        st.markdown(diff.escape_markdown(result.overall.sentence()))
        if len(result.strata) > 1:
            st.dataframe(
                [{k: v for k, v in s.as_dict().items() if k != "summary"} for s in result.strata],
                hide_index=True,
            )
        curve = spotcheck.narrowing(store, spot.id)
        if not curve.empty:
            figure = spotcheck.narrowing_figure(curve)
            st.plotly_chart(figure, key=f"curve_{spot.id}", width="stretch")
        with st.expander("Queue (review these sample ids on the Review page)"):
            st.dataframe(
                [
                    {"rank": i.rank, "sample": i.sample_id, "stratum": i.stratum,
                     "status": i.status or "undecided"}
                    for i in store.spotcheck_items(spot.id)
                ],
                hide_index=True,
            )  # fmt: skip
