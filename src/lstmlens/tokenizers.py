"""Word- and character-level tokenizers, saved as JSON inside a model directory.

Id 0 is padding and id 1 the unknown token in every vocabulary; ``bos``/``eos`` ids follow
when asked for (language models, translation).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

from .errors import InputError, ModelFormatError

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
_WORD = re.compile(r"[\w']+|[^\w\s]", re.UNICODE)


@dataclass
class Tokenizer:
    """Maps text to ids and back.

    Parameters
    ----------
    level
        ``"word"`` (words and punctuation marks) or ``"char"``.
    lowercase
        Lower-case text before splitting.
    max_vocab
        Keep the most frequent tokens only (``None``: all seen at least ``min_count`` times).

    Examples
    --------
    >>> tok = Tokenizer("word").fit(["a good film", "a bad film"])
    >>> tok.decode(tok.encode("a good film"))
    'a good film'
    """

    level: str = "word"
    lowercase: bool = True
    max_vocab: int | None = 20000
    min_count: int = 1
    specials: list[str] = field(default_factory=lambda: [PAD, UNK])
    vocab: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.level not in ("word", "char"):
            raise InputError(f"tokenizer level must be 'word' or 'char', got {self.level!r}")
        self._index = {t: i for i, t in enumerate(self.vocab)}

    # -- vocabulary ------------------------------------------------------------------
    def split(self, text: str) -> list[str]:
        """The tokens of ``text`` (before mapping to ids)."""
        if self.lowercase:
            text = text.lower()
        return list(text) if self.level == "char" else _WORD.findall(text)

    def fit(self, texts: Iterable[str]) -> Tokenizer:
        """Build the vocabulary from training texts (most frequent first, ties by token)."""
        counts = Counter(t for text in texts for t in self.split(text))
        kept = sorted((t for t, c in counts.items() if c >= self.min_count and
                       t not in self.specials), key=lambda t: (-counts[t], t))
        if self.max_vocab is not None:
            kept = kept[: max(0, self.max_vocab - len(self.specials))]
        self.vocab = list(self.specials) + kept
        self._index = {t: i for i, t in enumerate(self.vocab)}
        return self

    def __len__(self) -> int:
        return len(self.vocab)

    def id(self, token: str) -> int:
        return self._index.get(token, self._index[UNK])

    @property
    def pad_id(self) -> int:
        return self._index[PAD]

    @property
    def unk_id(self) -> int:
        return self._index[UNK]

    # -- encoding --------------------------------------------------------------------
    def encode(self, text: str, *, max_length: int | None = None, truncate: bool = False,
               add_bos: bool = False, add_eos: bool = False) -> list[int]:
        """Token ids of ``text``.

        Empty text is refused. Longer than ``max_length``: an error unless ``truncate`` (then
        the first ``max_length`` ids are kept) — never a silent cut.
        """
        if not self.vocab:
            raise InputError("the tokenizer has no vocabulary yet; call fit() first")
        if not isinstance(text, str):
            raise InputError(f"text must be a string, got {type(text).__name__}")
        unk = self._index.get(UNK)
        if unk is None:
            ids = [self.id(t) for t in self.split(text)]
        else:  # one dict lookup per token (this runs over whole corpora)
            ids = list(map(self._index.get, self.split(text), repeat(unk)))
        if add_bos:
            ids = [self._index[BOS]] + ids
        if add_eos:
            ids = ids + [self._index[EOS]]
        if not ids:
            raise InputError("the text is empty (no tokens); give at least one word")
        if max_length is not None and len(ids) > max_length:
            if not truncate:
                raise InputError(f"the text has {len(ids)} tokens; this model takes at most "
                                 f"{max_length} (pass truncate=True / --truncate to cut it)")
            ids = ids[:max_length]
        return ids

    def tokens(self, ids: Iterable[int]) -> list[str]:
        return [self.vocab[i] if 0 <= i < len(self.vocab) else UNK for i in ids]

    def decode(self, ids: Iterable[int], skip_specials: bool = True) -> str:
        toks = [t for t in self.tokens(ids) if not (skip_specials and t in self.specials)]
        return "".join(toks) if self.level == "char" else " ".join(toks)

    def unknown_fraction(self, text: str) -> float:
        ids = self.encode(text)
        return sum(i == self.unk_id for i in ids) / len(ids)

    # -- JSON --------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {"type": "lstmlens-tokenizer", "level": self.level, "lowercase": self.lowercase,
                "max_vocab": self.max_vocab, "min_count": self.min_count,
                "specials": self.specials, "vocab": self.vocab}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Tokenizer:
        if not isinstance(doc, dict) or doc.get("type") != "lstmlens-tokenizer":
            raise ModelFormatError("tokenizer.json is not an lstmlens tokenizer")
        try:
            tok = cls(level=doc["level"], lowercase=doc["lowercase"],
                      max_vocab=doc["max_vocab"], min_count=doc["min_count"],
                      specials=list(doc["specials"]), vocab=list(doc["vocab"]))
        except (KeyError, TypeError, InputError) as e:
            raise ModelFormatError(f"tokenizer.json is incomplete or invalid: {e}") from None
        if len(set(tok.vocab)) != len(tok.vocab) or tok.vocab[: len(tok.specials)] != \
                tok.specials or UNK not in tok.specials:
            raise ModelFormatError("tokenizer.json vocabulary is corrupted (duplicates or "
                                   "missing special tokens)")
        return tok
