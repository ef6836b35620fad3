"""A tiny BERT classifier and WordPiece tokenizer, built and saved at test time (no weights in git).

Saved with `save_pretrained`, so the engine loads it through the same `from_pretrained` path as
FinBERT. Its vocabulary is a few words plus every letter and digit as a word and as a `##` piece,
so any lowercase text tokenizes, into more pieces the longer it is.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from pathlib import Path

# The order of ProsusAI/finbert's id2label; a model built here with another order catches an
# engine that maps labels by position.
FINBERT_ORDER: Mapping[int, str] = {0: "positive", 1: "negative", 2: "neutral"}
OTHER_ORDER: Mapping[int, str] = {0: "neutral", 1: "positive", 2: "negative"}

WORDS = ["the", "a", "to", "is", "it", "buy", "sell", "dip", "bull", "bear", "trap", "moon"]
PIECES = [*string.ascii_lowercase, *string.digits, *string.punctuation]


def build_tiny_bert(
    folder: Path,
    id2label: Mapping[int, str] = OTHER_ORDER,
    *,
    seed: int = 0,
    bias: tuple[float, float, float] | None = None,
    hidden: int = 32,
    layers: int = 2,
) -> Path:
    """Save a random BERT classifier to `folder`. With `bias`, the classification head's weights
    are zero, so every text gets the logits `bias` (column i is `id2label[i]`)."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *PIECES]
    vocab += [f"##{piece}" for piece in PIECES]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"))
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=hidden * 2,
        max_position_embeddings=512,
        initializer_range=0.5,  # wide random weights: predictions that differ from text to text
        num_labels=3,
        id2label=dict(id2label),
        label2id={name: i for i, name in id2label.items()},
    )
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config).eval()
    if bias is not None:
        with torch.no_grad():
            model.classifier.weight.zero_()
            model.classifier.bias.copy_(torch.tensor(bias))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def reference_probabilities(folder: Path, text: str) -> dict[str, float]:
    """P(label) of one text, unpadded, straight through transformers (the fp32 reference)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    with torch.no_grad():
        logits = model(**tokenizer([text], return_tensors="pt", truncation=True)).logits[0]
    probabilities = torch.softmax(logits, dim=0).tolist()
    return {model.config.id2label[i]: p for i, p in enumerate(probabilities)}
