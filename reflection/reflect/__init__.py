"""Reflect: prompts, the oracle client, reply parsing, the resumable pipeline, the Batch API
and cost estimates.

The package itself imports nothing: `openai` takes seconds to load, and the stages that only
need a prompt or the parser should not pay for it."""
