"""The README's "Learning from reviewers" walk, run as written on the demo data.

The commands are read from the README's bash blocks and run in order with click's CliRunner,
in a folder whose `data/` is the checkout's; the app's steps in between go through the library
calls the Review page makes (a ReviewSession's save_edit and decide). Only the oracle is
swapped: the README's local SmolLM2 server becomes the test oracle. A README whose commands
stop working, or whose printed outputs stop matching, fails here.
"""

from __future__ import annotations

import json
import re
import shlex

import pytest
from click.testing import CliRunner
from conftest import ROOT
from statsmodels.stats.proportion import proportion_confint

from reflection.cli import main
from reflection.review import dashboard
from reflection.review import experiment as ex
from reflection.review import queue as review
from reflection.store import Store

ADDED = {1: "Today there are several hundred recognised breeds.", 2: "Long heat waves kill reefs."}


def readme_steps() -> list[tuple[list[str], list[str]]]:
    """(argv, the output lines the README shows after it) for each command of the section."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Learning from reviewers\n", 1)[1].split("\n## ", 1)[0]
    steps: list[tuple[list[str], list[str]]] = []
    for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.startswith("# ") and steps:
                steps[-1][1].append(line[2:])
            elif line.strip():
                argv = [a for a in shlex.split(line, comments=True) if a != "&"]
                assert argv[0] == "reflection", line
                steps.append((argv[1:], []))
    return steps


def edit_first_two(db: str) -> None:
    """Step 1 in the app: E on samples 1 and 2 of the Review queue, a sentence added to the
    output of the version shown, saved."""
    with Store(db) as store:
        ds = store.dataset("demo")
        session = review.ReviewSession.open(store, ds.id, review.sort_query("Source order"))
        for sid in (1, 2):
            assert session.current_id == sid
            shown = review.default_candidate(review.load_item(store, sid))
            text = {f: getattr(shown, f) for f in review.FIELDS}
            text["output"] += "\n\n" + ADDED[sid]
            session.save_edit(store, shown, text, annotator="walker")


def review_blind(db: str, name: str) -> tuple[dict[str, int], str]:
    """Step 3 in the app, blind: on the experiment's queue, A on the first six samples (the
    first of them edited first), X on the other four. Returns the versions accepted per
    template and the template of the edited one, which only the store knows."""
    with Store(db) as store:
        spot, experiment = ex.arms_of(store, name)
        arm_of = {a["hash"]: a["name"] for a in experiment["arms"]}
        query = review.sort_query("Source order", statuses=("undecided",), spotcheck=spot.id)
        session = review.ReviewSession.open(store, spot.dataset_id, query)
        accepted, edited = dict.fromkeys(arm_of.values(), 0), ""
        for place in range(10):
            order = ex.blind_order(store, name, session.current_id)
            assert [label for label, _ in order] == ["Version A", "Version B"]
            shown = store.candidate(order[0][1])
            if place == 0:
                text = {f: getattr(shown, f) for f in review.FIELDS}
                session.save_edit(store, shown, {**text, "output": "A checked answer."},
                                  annotator="walker")  # fmt: skip
            elif place < 6:
                session.decide(
                    store, "accept", annotator="walker", candidate_id=shown.id, confirmed=True
                )
            else:
                session.decide(store, "reject", annotator="walker")
            accepted[arm_of[shown.prompt_hash]] += place < 6
            edited = edited or arm_of[shown.prompt_hash]
        assert session.current_id is None  # the queue is finished
    return accepted, edited


def check_revisions(path, db: str) -> None:
    """1. The two edits came out as revision pairs, in CoachLM's chat shape."""
    records = [json.loads(line) for line in path.open(encoding="utf-8")]
    assert len(records) == 2
    with Store(db) as store:
        for record, (sid, added) in zip(records, ADDED.items(), strict=True):
            assert [m["role"] for m in record["messages"]] == ["system", "user", "assistant"]
            assert store.sample(sid).output in record["messages"][1]["content"]
            assert record["messages"][2]["content"].endswith(added)


def check_dashboard(db: str) -> None:
    """2. The decisions made elsewhere are in the Dashboard's data, under their reviewers."""
    with Store(db) as store:
        data = dashboard.dashboard_data(store, store.dataset("demo").id)
    by = {(r.annotator, r.status): r.n for r in data.annotators.itertuples()}
    assert by == {("ana", "accepted"): 2, ("ana", "edited"): 1, ("bob", "accepted"): 1,
                  ("bob", "edited"): 1, ("bob", "rejected"): 1,
                  ("walker", "edited"): 2}  # fmt: skip
    assert {k: data.status[k] for k in ("accepted", "edited", "rejected")} == {
        "accepted": 3, "edited": 4, "rejected": 1,
    }  # fmt: skip
    assert "2026-11-30" in set(data.progress["bucket"])  # the file's day


def check_experiment(db: str, output: str, accepted: dict[str, int], edited: str) -> None:
    """3. Reflected with the README's dialect; `show` reports both arms with Wilson
    intervals and the test between them."""
    with Store(db) as store:
        runs = store.query("SELECT settings FROM runs WHERE kind = 'reflect' ORDER BY id")
    assert [json.loads(r["settings"])["dialect"] for r in runs] == ["llama.cpp", "llama.cpp"]
    report = json.loads(output)
    arms = {a["name"]: a for a in report["arms"]}
    assert set(arms) == {"brief", "detailed"} and sum(accepted.values()) == 6
    for name, arm in arms.items():
        assert (arm["decided"], arm["accepted"]) == (10, accepted[name])
        assert arm["edited"] == (name == edited)
        wilson = proportion_confint(accepted[name], 10, alpha=0.05, method="wilson")
        assert arm["interval"] == pytest.approx(list(wilson))
    (comparison,) = report["comparisons"]
    assert comparison["p_value"] is not None and comparison["needed_per_arm"] > 0


def test_readme_learning_walk(tmp_path, monkeypatch, fake_oracle):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").symlink_to(ROOT / "data")
    runner = CliRunner()
    steps = readme_steps()
    assert [" ".join(argv[:2]) for argv, _ in steps] == [
        "demo --db",
        "export --db",
        "import-reviews --db",
        "oracle serve",
        "experiment create",
        "experiment show",
    ]
    db = "demo.db"
    for argv, shown in steps:
        if argv[0] == "demo":
            argv = [*argv, "--build-only"]  # the README leaves the app running
        elif argv[:2] == ["oracle", "serve"]:
            continue  # the test oracle stands in for the local SmolLM2 server
        elif argv[0] == "export":
            edit_first_two(db)
        elif argv[:2] == ["experiment", "create"]:
            argv = [fake_oracle.base_url if a.startswith("http://") else a for a in argv]
        elif argv[:2] == ["experiment", "show"]:
            accepted, edited = review_blind(db, argv[-1])
            argv = [*argv, "--json"]
        result = runner.invoke(main, argv, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        for line in shown:  # what the README says the command prints, where it is exact
            if "..." not in line:
                assert line in result.output.splitlines(), (line, result.output)
        if argv[0] == "export":
            check_revisions(tmp_path / argv[argv.index("--out") + 1], db)
        elif argv[0] == "import-reviews":
            check_dashboard(db)
        elif argv[:2] == ["experiment", "show"]:
            check_experiment(db, result.output, accepted, edited)
