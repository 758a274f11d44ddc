"""Team review: accounts and roles, what each role may do, paths confined to the data roots,
assignment, agreement, adjudication; everything a team does is written to the audit log.

Library only: the app (`reflection.ui.auth`) and the CLI (`reflection.cli.team`) call these.
"""
