"""Team review: accounts and roles, what each role may do, paths confined to the data roots,
assignment with overlap, reviewer agreement, adjudication and consensus; everything a team
does is written to the audit log.

The assignment model (store/tracks.py, store/assignments.py): an `assignments` row per (dataset,
reviewer, sample); every review falls on a track, a reviewer's own or the shared
adjudication track, and `reviewer_state` caches the decision in force on each. A reviewer's
queue and what they see are their own track only (blind review); `sample_state` of an
assigned sample is settled from the tracks (the adjudication, else the decision all its
reviewers agree on).

Library only: the app (`reflection.ui.auth`, `reflection.ui.team_widgets`) and the CLI
(`reflection.cli.team`, `reflection.cli.team_review`) call these.
"""
