"""Scores for every version of a sample, and the store runs that compute them.

- `ifd`: IFD and reversed IFD with a student model (the seed's definitions), `templates` the
  prompts it sees;
- `judge`: an LLM judge (1-10 ratings; pairwise comparisons in both orders);
- `text`: instant text statistics; `drift`: instruction similarity with a sentence embedder;
- `runner`: resumable store runs; `fields`: scores as export fields.

Heavy dependencies (torch, transformers, openai) load only when a scorer that needs them runs.
"""
