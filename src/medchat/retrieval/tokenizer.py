"""The WordPiece tokenizer of all-MiniLM-L6-v2, shipped as package data (see model_data/NOTICE)."""

from __future__ import annotations

from importlib import resources

from tokenizers import Tokenizer

from medchat.retrieval.lazy import Lazy

MAX_MODEL_TOKENS = 256
"""all-MiniLM-L6-v2 was trained on sequences up to 256 tokens, [CLS] and [SEP] included."""


def _read_tokenizer() -> Tokenizer:
    data = resources.files("medchat.retrieval").joinpath("model_data/tokenizer.json").read_text(encoding="utf-8")
    return Tokenizer.from_str(data)


def _model_input_tokenizer() -> Tokenizer:
    tokenizer = _read_tokenizer()
    tokenizer.enable_truncation(max_length=MAX_MODEL_TOKENS)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 - a token, not a password
    return tokenizer


def _counting_tokenizer() -> Tokenizer:
    tokenizer = _read_tokenizer()
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


model_input_tokenizer = Lazy(_model_input_tokenizer)
"""Truncates to 256 tokens and pads each batch to its longest member."""

_counter = Lazy(_counting_tokenizer)


def count_tokens(texts: list[str]) -> list[int]:
    """Model tokens in each text, without [CLS]/[SEP] and without truncation."""
    if not texts:
        return []
    return [len(encoding.ids) for encoding in _counter.get().encode_batch(texts, add_special_tokens=False)]


def is_known_word(word: str) -> bool:
    """True when the model's vocabulary holds the (lowercase) word whole, not split into pieces."""
    return _counter.get().token_to_id(word) is not None
