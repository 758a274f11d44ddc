"""Several processes writing to one database at once: nothing lost, no lock errors."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from reflection.records import Sample
from reflection.store import Store

WRITER = textwrap.dedent(
    """
    import sys
    from reflection.records import Candidate, Review
    from reflection.store import Store

    path, who, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with Store(path) as store:
        ids = store.sample_ids(store.dataset("d").id)
        for n in range(count):
            sid = ids[n % len(ids)]
            if n % 10 == 0:
                cid = store.add_candidate(Candidate(sample_id=sid, kind="edit", output=who, annotator=who))
                store.add_review(Review(sample_id=sid, decision="edit", candidate_id=cid, annotator=who))
            elif n % 7 == 0:
                store.undo(sid, annotator=who)
            else:
                store.add_review(Review(sample_id=sid, decision="accept", annotator=who, note=str(n)))
    """
)


def test_concurrent_writers_lose_nothing(tmp_path):
    path = tmp_path / "shared.db"
    with Store(path) as store:
        ds = store.ensure_dataset("d")
        store.add_samples(
            ds.id, [Sample(instruction=f"q{n}", output="a", position=n) for n in range(20)]
        )
    writers, per_writer = 4, 150
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), f"w{n}", str(per_writer)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(writers)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert "locked" not in err
    with Store(path) as store:
        assert store.scalar("SELECT count(*) FROM reviews") == writers * per_writer
        for n in range(writers):
            assert (
                store.scalar("SELECT count(*) FROM reviews WHERE annotator = ?", [f"w{n}"])
                == per_writer
            )
        assert store.scalar("SELECT count(*) FROM candidates") == writers * (per_writer // 10)
        # The cached states agree with a replay of the whole interleaved log.
        before = store.query("SELECT * FROM sample_state ORDER BY sample_id")
        store.rebuild_states()
        assert store.query("SELECT * FROM sample_state ORDER BY sample_id") == before
