"""Loading a FinBERT-style classifier for CPU inference: ONNX Runtime or torch, int8 or fp32.

Everything here blocks and imports the heavy libraries inside functions, so importing this module
costs nothing; the engine (`intel.sentiment.finbert`) calls `load_classifier` on its worker thread.

The model is `from_pretrained`-compatible: a local folder, or a model hub id resolved through the
local hub cache (`HF_HUB_OFFLINE=1` never touches the network). Its labels are read by name from
its own `config.json` `id2label`, never by position. The `onnx_int8` runtime exports the model once
with `torch.onnx.export` (TorchScript exporter), quantizes its weights to int8 with ONNX Runtime's
`quantize_dynamic` (`onnx` skips that step), and caches the result with the tokenizer under
`cache_dir/<key>`, where the key hashes the source files' names, sizes and config; a later load
reads only the cached folder and needs neither torch nor transformers.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from intel.config import FinBertConfig
from intel.errors import ModelUnavailableError
from intel.sentiment.base import Label

__all__ = ["Classifier", "load_classifier", "local_weights_present", "resolve_folder"]

LABELS: frozenset[str] = frozenset({"positive", "negative", "neutral"})
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# Bumped when the cached folder's layout or the conversion changes: old entries are then ignored.
CACHE_FORMAT = 3
_HUB_PATTERNS = ["*.json", "*.txt", "model.safetensors", "pytorch_model.bin"]

IntArray = npt.NDArray[np.int64]
Logits = Callable[[Mapping[str, IntArray]], npt.NDArray[np.float32]]


@dataclass(frozen=True, slots=True)
class Classifier:
    """A loaded model: `tokenizer` (a `tokenizers.Tokenizer` truncating at max length, no
    padding), `labels[i]` the label of logit column i, `logits` one padded batch → (n, 3)."""

    tokenizer: Any
    labels: tuple[Label, ...]
    input_names: tuple[str, ...]
    pad_id: int
    logits: Logits
    runtime: str


def resolve_folder(model: str) -> Path:
    """The local folder holding `model` (a folder path, or a hub id from the hub's cache or a
    download); ModelUnavailableError when there is none or it lacks config or weights."""
    path = Path(model).expanduser()
    if not path.is_dir():
        if _is_path(model):
            raise ModelUnavailableError(f"{model}: no such folder")
        path = _from_hub(model)
    if not (path / "config.json").is_file():
        raise ModelUnavailableError(f"{model}: no config.json in {path}")
    if not any((path / name).is_file() for name in WEIGHT_FILES):
        raise ModelUnavailableError(f"{model}: no weights ({' or '.join(WEIGHT_FILES)}) in {path}")
    return path


def local_weights_present(model: str) -> bool:
    """Whether `model`'s weights are on this host already (a folder, or the hub's cache): a
    cheap check that loads nothing and never touches the network."""
    path = Path(model).expanduser()
    if path.is_dir() or _is_path(model):
        return any((path / name).is_file() for name in WEIGHT_FILES)
    try:
        from huggingface_hub import try_to_load_from_cache

        return any(isinstance(try_to_load_from_cache(model, name), str) for name in WEIGHT_FILES)
    except Exception:  # not installed, or not a valid hub id: nothing of it on this host
        return False


def _is_path(model: str) -> bool:
    """A folder path rather than a hub id ("org/name")."""
    return Path(model).is_absolute() or model.startswith(("~", ".")) or model.count("/") > 1


def _from_hub(model: str) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:
        raise ModelUnavailableError("the finbert extra is not installed") from exc
    try:
        return Path(snapshot_download(model, allow_patterns=_HUB_PATTERNS))
    except Exception as exc:  # offline, unknown id, no network: all mean "no weights here"
        raise ModelUnavailableError(f"{model}: not in the local model cache ({exc})") from exc


def load_classifier(model: str, config: FinBertConfig) -> Classifier:
    """The classifier `config.runtime` names, loaded from `model`; ModelUnavailableError when
    the weights are missing, unreadable or not a positive/negative/neutral classifier."""
    folder = resolve_folder(model)
    try:
        if config.runtime in ("onnx", "onnx_int8"):
            cached = _converted(folder, config)
            return _onnx_classifier(cached, config)
        return _torch_classifier(folder, config, quantize=config.runtime == "torch_int8")
    except ModelUnavailableError:
        raise
    except Exception as exc:  # a truncated or corrupt file fails deep inside the libraries
        raise ModelUnavailableError(f"{model}: cannot load ({type(exc).__name__}: {exc})") from exc


def labels_by_name(id2label: Mapping[Any, str]) -> tuple[Label, ...]:
    """Column i's label from a model config's `id2label` ({0: "positive", ...}), by name."""
    names = [str(id2label[key]).strip().lower() for key in sorted(id2label, key=int)]
    if sorted(names) != sorted(LABELS):
        raise ModelUnavailableError(f"labels {names} are not positive, negative and neutral")
    return tuple(cast(Label, name) for name in names)


def _torch_classifier(folder: Path, config: FinBertConfig, *, quantize: bool) -> Classifier:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.set_num_threads(config.threads)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    if quantize:
        with warnings.catch_warnings():  # torch marks eager quantization as deprecated
            warnings.simplefilter("ignore")
            model = torch.ao.quantization.quantize_dynamic(  # type: ignore[no-untyped-call]
                model, {torch.nn.Linear}, dtype=torch.qint8
            )

    def logits(batch: Mapping[str, IntArray]) -> npt.NDArray[np.float32]:
        with torch.inference_mode():
            inputs = {name: torch.from_numpy(array) for name, array in batch.items()}
            return cast(npt.NDArray[np.float32], model(**inputs).logits.float().numpy())

    return Classifier(
        tokenizer=_plain(tokenizer.backend_tokenizer, config.max_length),
        labels=labels_by_name(model.config.id2label),
        input_names=tuple(tokenizer.model_input_names),
        pad_id=int(tokenizer.pad_token_id or 0),
        logits=logits,
        runtime=config.runtime,
    )


def _onnx_classifier(cached: Path, config: FinBertConfig) -> Classifier:
    import onnxruntime as ort
    from tokenizers import Tokenizer

    meta = json.loads((cached / "meta.json").read_text(encoding="utf-8"))
    options = ort.SessionOptions()
    options.intra_op_num_threads = config.threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        str(cached / "model.onnx"), options, providers=["CPUExecutionProvider"]
    )
    names = tuple(i.name for i in session.get_inputs())

    def logits(batch: Mapping[str, IntArray]) -> npt.NDArray[np.float32]:
        output = session.run(["logits"], {name: batch[name] for name in names})
        return cast(npt.NDArray[np.float32], np.asarray(output[0], dtype=np.float32))

    return Classifier(
        tokenizer=_plain(Tokenizer.from_file(str(cached / "tokenizer.json")), config.max_length),
        labels=labels_by_name(meta["id2label"]),
        input_names=names,
        pad_id=int(meta["pad_id"]),
        logits=logits,
        runtime=config.runtime,
    )


def _plain(tokenizer: Any, max_length: int) -> Any:
    tokenizer.enable_truncation(max_length=max_length)
    tokenizer.no_padding()  # the engine pads each length-sorted batch to its own longest
    return tokenizer


def _cache_key(folder: Path, config: FinBertConfig) -> str:
    digest = hashlib.sha256(f"{CACHE_FORMAT}:{config.runtime}".encode())
    for path in sorted(folder.iterdir()):
        if path.is_file():
            digest.update(f"{path.name}:{path.stat().st_size};".encode())
    digest.update((folder / "config.json").read_bytes())
    return digest.hexdigest()[:20]


def _converted(folder: Path, config: FinBertConfig) -> Path:
    """The cached ONNX int8 conversion of `folder`, made now if it is not there yet."""
    target = config.cache_dir.expanduser() / _cache_key(folder, config)
    if (target / "meta.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".converting-", dir=target.parent))
    try:
        _convert(folder, work, quantize=config.runtime == "onnx_int8")
        try:
            os.replace(work, target)  # atomic: a reader never sees a half-written folder
        except OSError:
            if not (target / "meta.json").is_file():  # not another process that won the race
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _attention_matmuls(path: Path) -> list[str]:
    """The attention blocks' MatMul nodes (by the exporter's module-path names), kept fp32.

    Only the feed-forward MatMuls (two thirds of an encoder layer's weights) become int8; the
    embeddings (Gather), pooler and classifier (Gemm) stay fp32 too. Measured on the benchmark's
    model (benchmarks/finbert_speed.py): every MatMul in int8 changed 2-5 % of the predictions
    whose top-two margin exceeds 0.2; feed-forward only changed none, at about half the gain.
    """
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return [n.name for n in graph.node if n.op_type == "MatMul" and "/attention/" in n.name]


def _convert(folder: Path, out: Path, *, quantize: bool) -> None:
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    labels_by_name(model.config.id2label)  # refuse a model with other labels before the work
    sample = tokenizer(["the price", "buy"], return_tensors="pt", padding=True)
    # Positional inputs in the order `forward` takes them (the tokenizer's own order differs).
    accepted = list(inspect.signature(model.forward).parameters)
    names = sorted(tokenizer.model_input_names, key=accepted.index)
    axes = {name: {0: "batch", 1: "tokens"} for name in names}
    with warnings.catch_warnings():  # the TorchScript exporter warns that it is the old one
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            tuple(sample[name] for name in names),
            str(out / "fp32.onnx"),
            input_names=names,
            output_names=["logits"],
            dynamic_axes={**axes, "logits": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    if quantize:
        quantize_dynamic(
            out / "fp32.onnx",
            out / "model.onnx",
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul"],
            nodes_to_exclude=_attention_matmuls(out / "fp32.onnx"),
        )
        (out / "fp32.onnx").unlink()
    else:
        (out / "fp32.onnx").rename(out / "model.onnx")
    tokenizer.backend_tokenizer.save(str(out / "tokenizer.json"))
    meta = {"id2label": model.config.id2label, "pad_id": tokenizer.pad_token_id or 0}
    (out / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
