"""Home: which database and dataset, how far the review has come, and where to go next."""

import streamlit as st

from reflection import ui

ui.require_role("read")
ui.page_header(
    "Reflection Studio", caption="Recycle instruction data with an oracle, then review it."
)
store = ui.get_store()
st.markdown(f"Database: `{ui.db_label(ui.db_path())}`")
dataset = ui.dataset_picker(store)
ui.annotator(required=False)

if dataset is None:
    st.info(
        "This database has no dataset yet.\n\n"
        "- Try the demo: `reflection demo` (64 samples with reflections and scores).\n"
        "- Or import your own: `reflection import alpaca.json --dataset mine`, then "
        "`reflection app --db reflection.db`."
    )
    st.stop()

overview = ui.dataset_overview(store, dataset.id)
cols = st.columns(4)
cols[0].metric("Samples", f"{overview['samples']:,}")
cols[1].metric("Candidates", f"{overview['candidates']:,}")
cols[2].metric("Scores", f"{overview['scored']:,}")
cols[3].metric("Decided", f"{overview['decided']:,}", f"{overview['progress']:.0%} done")
st.progress(overview["progress"], text=f"Review progress of dataset {dataset.name}")
st.dataframe(
    [{"status": status, "samples": n} for status, n in overview["statuses"].items()],
    hide_index=True,
)

st.subheader("Next step")
step = overview["next_step"]
st.info(step["text"])
# One key from here too: N opens the next step's page.
page = ui.page_for(step["step"])
if page and st.button(step["label"], icon=":material/arrow_forward:", type="primary", shortcut="N"):
    st.switch_page(page)

st.subheader("Pages")
ui.page_links()
st.caption(
    "Keyboard: N opens the next step. On the Review page: A accept candidate · "
    "O accept original · G follow the suggestion · E edit · X reject · S skip · U undo · "
    "N next · P previous (keys do nothing while you type in a field)."
)
