"""Review: the queue and its decisions, spot-checks, and the dashboard's figures."""
