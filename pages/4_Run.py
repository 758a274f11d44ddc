"""Run: reflect or score a selection of samples in the background, with live progress."""

import streamlit as st

from reflection import config, diff, jobs, ui
from reflection.errors import ReflectionError
from reflection.reflect.settings import DEFAULT_CONCURRENCY, MODES, OracleConfig
from reflection.scoring.settings import ScoringSettings

# The scores a page job offers (the judge needs more settings than a form here: use the CLI).
FAMILIES = {"text": "Text statistics and content checks (fast, no model)",
            "ifd": "IFD (student model)", "rifd": "Reversed IFD (student model)",
            "drift": "Topic drift (MiniLM embeddings)",
            "relevance": "Answer relevance (MiniLM embeddings)"}  # fmt: skip

user = ui.require_role("run")
ui.page_header(
    "Run",
    "⚙️",
    caption="Work runs on an app server, not in this tab: refreshing or closing it stops"
    " nothing, and if that server stops, another one takes the job over.",
)
store = ui.get_store()
dataset = ui.require_dataset(store)
ui.show_flash()

task = st.radio("Task", ["Reflect with an oracle", "Score"], horizontal=True, key="run_task")
if task == "Reflect with an oracle":
    left, right = st.columns(2)
    base_url = left.text_input(
        "Endpoint (OpenAI-compatible base URL)", value=config.base_url() or "", key="run_base_url",
        placeholder="https://api.openai.com/v1 · http://127.0.0.1:8080/v1",
    )  # fmt: skip
    model = right.text_input("Model", value="gpt-4o-mini", key="run_model")
    mode = left.selectbox("Mode", MODES, key="run_mode")
    concurrency = right.number_input(
        "Concurrency", 1, 256, DEFAULT_CONCURRENCY, key="run_concurrency"
    )
    # The key stays in this browser session's memory and the job thread's; never stored.
    st.text_input(
        "API key (kept only in this session)", type="password", key="run_api_key",
        help="Leave empty for local servers, or to use $OPENAI_API_KEY.",
    )  # fmt: skip
    how = st.radio("Samples", jobs.SELECTIONS, horizontal=True, key="run_selection",
                   format_func=lambda h: {"all": "All", "undecided": "Undecided",
                                          "first": "First N", "ids": "Ids"}[h])  # fmt: skip
    first = st.number_input("N", 1, 1_000_000, 20, key="run_first") if how == "first" else 0
    ids = st.text_input("Sample ids, e.g. 3, 7-9", key="run_ids") if how == "ids" else ""
else:
    family = st.selectbox("Scores", list(FAMILIES), key="run_family", format_func=FAMILIES.get)
    limit = st.number_input("At most this many samples (0: all)", 0, 10_000_000, 0, key="run_limit")
    st.caption("Scoring is resumable: versions that already have the score are skipped.")


@ui.guard("run")
def start() -> None:
    try:
        if task == "Reflect with an oracle":
            chosen = jobs.select_samples(store, dataset.id, how, first=first, ids=ids)
            oracle = OracleConfig.from_env(
                model=model.strip(), base_url=base_url.strip(), concurrency=int(concurrency),
                api_key=st.session_state.get("run_api_key"),
            )  # fmt: skip
            spec = jobs.JobSpec("reflect", dataset.id, selection=chosen, mode=mode, oracle=oracle)
        else:
            scoring = ScoringSettings(metrics=(family,), limit=int(limit) or None)
            spec = jobs.JobSpec("score", dataset.id, scoring=scoring)
        run_id = jobs.start_job(ui.db_path(), spec)
        ui.flash("success", f"Job {run_id} started.")
    except ReflectionError as exc:
        ui.flash("error", str(exc))


st.button("Start", type="primary", on_click=start, key="run_start")


@ui.guard("run")
def stop(run_id: int) -> None:
    if not jobs.stop_job(ui.db_path(), run_id, who=user.name):
        ui.flash("warning", f"Job {run_id} is not running.")


# Poll only while some job runs (the Start callback has already started a new one).
polling = any(job.active for job in jobs.jobs(store, dataset.id))


@st.fragment(run_every=1.0 if polling else None)
def job_list() -> None:
    """The newest jobs of this dataset, polled every second while one of them runs."""
    listed = jobs.jobs(store, dataset.id)
    if not listed:
        st.caption("No job on this dataset yet.")
    for job in listed:
        what = job.settings.get("mode") or "+".join(job.settings.get("metrics", []))
        label = f"Job {job.run_id} · {job.task} {what} · {job.status} · {job.done:,}/{job.total:,}"
        left, right = st.columns([5, 1])
        left.progress(job.fraction, text=label)
        if job.active:
            right.button("Stop", key=f"run_stop_{job.run_id}", on_click=stop, args=(job.run_id,))
        if job.owner:  # which server runs it, and whether it was taken over
            left.caption(diff.escape_markdown(jobs.where(job)))
        if job.error:
            left.error(job.error)
        counters = {
            k: v for k, v in job.counters.items() if k not in ("heartbeat", "done", "total")
        }
        if counters:
            left.caption(" · ".join(f"{k}: {v}" for k, v in counters.items()))


st.subheader("Jobs")
job_list()
