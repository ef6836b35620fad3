"""FinBERT engine speed, label agreement and memory against a plain transformers pipeline.

No FinBERT weights on this host, so the model is FinBERT-shaped and built here: a BERT-base body
(random initialisation; 12 layers, 768 wide, 30,522-token WordPiece vocabulary trained on the
texts below) with a classification head fitted briefly (logistic regression on the pooled output)
on Twitter Financial News training texts (`../shared/data/sentiment`, MIT; read in place, nothing
copied). It runs on the shipped Reddit posts, read as the sentiment agent reads them.

Reported: the model's class distribution on the benchmark texts; sentences/s of the baseline
(`transformers.pipeline("text-classification", truncation=True, max_length=L)`, default batching)
and of the engine per runtime at the same L (target ≥ 3×); label agreement with the fp32 pipeline
overall and where its top-two margin exceeds 0.2 (target ≥ 99 %), with a histogram of margins;
the peak resident memory of a separate process that loads each runtime and scores the texts
(target ≤ 700 MB). Bounded: `--texts` posts (default 240), `--fit-texts` training texts.

Run on demand: `.venv/bin/python benchmarks/finbert_speed.py [--texts 300] [--max-length 128]`.
The built model and the converted ones are kept in `--work` (default a folder in /tmp) for reruns.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import gzip
import itertools
import json
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from intel.config import FinBertConfig
from intel.sentiment.base import SentimentScore
from intel.sentiment.finbert import FinBertEngine
from intel.sentiment.lexicon import LexiconEngine

ROOT = Path(__file__).resolve().parent.parent
POSTS = ROOT / "intel" / "data" / "replay" / "reddit" / "posts.csv.gz"
TFN = ROOT.parent / "shared" / "data" / "sentiment" / "twitter_financial_news" / "sent_train.csv"
TFN_LABELS = {"0": "negative", "1": "positive", "2": "neutral"}  # Bearish, Bullish, Neutral
FINBERT_ID2LABEL = {0: "positive", 1: "negative", 2: "neutral"}  # ProsusAI/finbert's order
FINBERT_ID2LABEL_INV = {v: k for k, v in FINBERT_ID2LABEL.items()}
RUNTIMES = ("torch", "torch_int8", "onnx", "onnx_int8")
MARGIN = 0.2
LOGIT_STD = 2.0


def reddit_texts(count: int) -> list[str]:
    with gzip.open(POSTS, "rt", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    texts = list(dict.fromkeys(f"{r['title']}. {r['excerpt']}".strip() for r in rows))
    random.Random(11).shuffle(texts)
    return texts[:count]


def tfn_rows() -> list[tuple[str, str]]:
    with TFN.open(encoding="utf-8") as handle:
        return [(row["text"], TFN_LABELS[row["label"]]) for row in csv.DictReader(handle)]


def build_model(folder: Path, fit_texts: int, max_length: int) -> None:
    """Save the FinBERT-shaped model to `folder` (skipped when it is there already)."""
    if (folder / "config.json").is_file():
        return
    import torch
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    rows = tfn_rows()
    folder.mkdir(parents=True, exist_ok=True)
    wordpiece = BertWordPieceTokenizer(lowercase=True)
    wordpiece.train_from_iterator([t for t, _ in rows] + reddit_texts(3000), vocab_size=30522)
    wordpiece.save_model(str(folder))
    tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"))
    config = BertConfig(
        num_labels=3,
        id2label=FINBERT_ID2LABEL,
        label2id={v: k for k, v in FINBERT_ID2LABEL.items()},
    )
    torch.manual_seed(0)
    model = BertForSequenceClassification(config).eval()
    sample = random.Random(5).sample(rows, fit_texts)
    started = time.perf_counter()
    features = pooled(model, tokenizer, [t for t, _ in sample], min(max_length, 64))
    weights, bias = fit_head(features, [FINBERT_ID2LABEL_INV[label] for _, label in sample])
    with torch.no_grad():
        model.classifier.weight.copy_(torch.from_numpy(weights))
        model.classifier.bias.copy_(torch.from_numpy(bias))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    took = time.perf_counter() - started
    print(f"built the model: head fitted on {fit_texts} training texts in {took:.0f} s")


def pooled(model, tokenizer, texts: list[str], max_length: int) -> np.ndarray:
    import torch

    out = []
    with torch.inference_mode():
        for i in range(0, len(texts), 16):
            batch = tokenizer(
                texts[i : i + 16],
                truncation=True,
                max_length=max_length,
                padding=True,
                return_tensors="pt",
            )
            out.append(model.bert(**batch).pooler_output.numpy())
    return np.concatenate(out)


def fit_head(features: np.ndarray, labels: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Class-balanced, L2-regularised multinomial logistic regression on standardised features
    (gradient descent, 400 steps), then scaled so its logits spread as FinBERT's do (standard
    deviation LOGIT_STD over the fitting texts: a random body's features differ little from text
    to text, and an unscaled fit over-amplifies them). Returns weight (3, d), bias (3,)."""
    mean, std = features.mean(axis=0), features.std(axis=0) + 1e-6
    x = (features - mean) / std
    y = np.eye(3)[labels]
    class_weight = len(labels) / (3 * np.maximum(y.sum(axis=0), 1))
    w, b = np.zeros((x.shape[1], 3)), np.zeros(3)
    for _ in range(400):
        logits = x @ w + b
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        grad = (p - y) * (y @ class_weight)[:, None] / len(labels)
        w -= 0.5 * (x.T @ grad + 1e-2 * w)
        b -= 0.5 * grad.sum(axis=0)
    scale = LOGIT_STD / float((x @ w + b).std())
    w, b = w * scale, b * scale
    weight = (w / std[:, None]).T
    return weight.astype(np.float32), (b - (mean / std) @ w).astype(np.float32)


def baseline(
    folder: Path, texts: list[str], max_length: int, threads: int
) -> tuple[float, list[dict]]:
    import torch
    from transformers import pipeline

    # The engine's thread count: on a busy 2-core host torch's default (one per core) was
    # measured 4-6× slower than one thread, which would flatter the engine.
    torch.set_num_threads(threads)
    pipe = pipeline(
        "text-classification", model=str(folder), truncation=True, max_length=max_length
    )
    pipe(texts[:2], top_k=None)  # warm up
    started = time.perf_counter()
    results = pipe(texts, top_k=None)
    took = time.perf_counter() - started
    return len(texts) / took, [{r["label"]: r["score"] for r in row} for row in results]


def engine_config(runtime: str, work: Path, max_length: int, threads: int) -> FinBertConfig:
    return FinBertConfig(
        runtime=runtime,  # type: ignore[arg-type]
        cache_dir=work / "converted",
        max_length=max_length,
        threads=threads,
        cache_size=0,  # every text scored: the model's speed, not the cache's
    )


async def engine_run(
    folder: Path, texts: list[str], config: FinBertConfig
) -> tuple[float, float, list[SentimentScore]]:
    engine = FinBertEngine(str(folder), config, LexiconEngine(), strict=True)
    started = time.perf_counter()
    await asyncio.to_thread(engine.score, texts[:2])  # loads (and converts, once)
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    scores = await asyncio.to_thread(engine.score, texts)
    took = time.perf_counter() - started
    await engine.close()
    return load_s, len(texts) / took, scores


def margin(probabilities: dict[str, float]) -> float:
    top, second = sorted(probabilities.values(), reverse=True)[:2]
    return top - second


def agreement(reference: list[dict], scores: list[SentimentScore]) -> tuple[float, float, int]:
    ref_labels = [max(r, key=r.__getitem__) for r in reference]
    same = [s.label == label for s, label in zip(scores, ref_labels, strict=True)]
    confident = [ok for ok, r in zip(same, reference, strict=True) if margin(r) > MARGIN]
    share = sum(confident) / len(confident) if confident else float("nan")
    return sum(same) / len(same), share, len(confident)


def histogram(reference: list[dict]) -> None:
    edges = [0.0, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0001]
    margins = [margin(r) for r in reference]
    print("fp32 top-two margin histogram:")
    for low, high in itertools.pairwise(edges):
        count = sum(low <= m < high for m in margins)
        bar = "#" * round(60 * count / len(margins))
        print(f"  {low:4.2f}–{min(high, 1.0):4.2f} {count:5d} {bar}")


def peak_rss_mb(runtime: str, folder: Path, work: Path, texts_file: Path, args) -> float:
    """Peak RSS of a fresh process that loads `runtime` and scores the texts."""
    command = [sys.executable, __file__, "--child", runtime, "--model", str(folder)]
    command += ["--work", str(work), "--texts-file", str(texts_file)]
    command += ["--max-length", str(args.max_length), "--threads", str(args.threads)]
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=900)
    return float(done.stdout.strip().splitlines()[-1])


def child(args) -> None:
    texts = json.loads(Path(args.texts_file).read_text(encoding="utf-8"))
    if args.child == "pipeline":
        baseline(Path(args.model), texts, args.max_length, args.threads)
    else:
        config = engine_config(args.child, Path(args.work), args.max_length, args.threads)
        asyncio.run(engine_run(Path(args.model), texts, config))
    print(peak_rss_self_mb())


def peak_rss_self_mb() -> float:
    """This process's peak resident memory, VmHWM (ru_maxrss would include the parent's peak
    from before `exec`, inherited at fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=240)
    parser.add_argument("--fit-texts", type=int, default=256)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1, help="the engine's threads")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "finbert-bench")
    parser.add_argument("--runtimes", nargs="+", choices=RUNTIMES, default=list(RUNTIMES))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--texts-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    folder = args.work / "model"
    build_model(folder, args.fit_texts, args.max_length)
    texts = reddit_texts(args.texts)
    texts_file = args.work / "texts.json"
    texts_file.write_text(json.dumps(texts), encoding="utf-8")
    print(f"{len(texts)} Reddit texts, max_length {args.max_length}, engine threads {args.threads}")

    base_rate, reference = baseline(folder, texts, args.max_length, args.threads)
    distribution = Counter(max(r, key=r.__getitem__) for r in reference)
    print(f"fp32 class distribution on these texts: {dict(distribution)}")
    histogram(reference)
    print(f"baseline pipeline: {base_rate:6.1f} sentences/s")
    print(
        f"{'runtime':<11} {'load s':>7} {'sent/s':>7} {'× base':>7} {'agree':>7} "
        f"{'agree m>0.2':>12} {'peak RSS MB':>12}"
    )
    for runtime in args.runtimes:
        config = engine_config(runtime, args.work, args.max_length, args.threads)
        load_s, rate, scores = asyncio.run(engine_run(folder, texts, config))
        overall, confident, n = agreement(reference, scores)
        rss = peak_rss_mb(runtime, folder, args.work, texts_file, args)
        print(
            f"{runtime:<11} {load_s:7.1f} {rate:7.1f} {rate / base_rate:7.2f} "
            f"{overall:7.1%} {confident:8.1%} n={n:<3d} {rss:8.0f}"
        )
    rss = peak_rss_mb("pipeline", folder, args.work, texts_file, args)
    print(f"baseline pipeline peak RSS: {rss:.0f} MB")


if __name__ == "__main__":
    main()
