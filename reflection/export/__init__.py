"""Export: the curated training set, with provenance."""
