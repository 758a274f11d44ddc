"""Team review: assignment with overlap, reviewer agreement, adjudication and consensus.

The data model (store/tracks.py, store/assignments.py): an `assignments` row per (dataset,
reviewer, sample); every review falls on a track, a reviewer's own or the shared
adjudication track, and `reviewer_state` caches the decision in force on each. A reviewer's
queue and what they see are their own track only (blind review); `sample_state` of an
assigned sample is settled from the tracks (the adjudication, else the decision all its
reviewers agree on).
"""
