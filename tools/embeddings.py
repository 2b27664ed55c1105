"""Embedding functions for brand knowledge: Mistral when a key is configured, a local one otherwise.

Chroma's default embedding function downloads an ONNX model on first use, which fails offline and
would ship data to nobody-knows-where; adpilot always passes one of these instead.

The local embedding is a deterministic feature hash of words and character n-grams (numpy only).
It is no semantic model, but it is stable across machines and runs, needs no download, and makes
morphological variants ("wasserdicht" / "wasserdichte") land close together, which together with
BM25 in the hybrid search is enough for guideline look-ups.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from typing import Any

import httpx
import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings

from agent.settings import Settings

WORD = re.compile(r"\w+", re.UNICODE)
DEFAULT_MISTRAL_ENDPOINT = "https://api.mistral.ai/v1"


def normalise(text: str) -> str:
    """Lower-case, NFC-normalised text (so a decomposed "ü" equals a composed one)."""
    return unicodedata.normalize("NFC", text).casefold()


def words(text: str) -> list[str]:
    """The word tokens of ``text`` (shared by the hashing embedding and BM25)."""
    return WORD.findall(normalise(text))


def _bucket(feature: str, dim: int) -> tuple[int, float]:
    # blake2b, not hash(): Python salts str hashes per process, which would change every vector.
    digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
    value = int.from_bytes(digest, "little")
    return value % dim, (1.0 if (value >> 63) & 1 else -1.0)


class HashingEmbeddingFunction(EmbeddingFunction[Documents]):
    """Local, deterministic embedding: signed feature hashing of words and character n-grams."""

    def __init__(self, dim: int = 512, ngram: int = 3) -> None:
        if dim < 16 or ngram < 2:
            raise ValueError("dim must be >= 16 and ngram >= 2")
        self.dim = dim
        self.ngram = ngram

    def _vector(self, text: str) -> np.ndarray:
        vec = np.zeros(self.dim, dtype=np.float32)
        for word in words(text):
            index, sign = _bucket(f"w:{word}", self.dim)
            vec[index] += 2.0 * sign
            padded = f"<{word}>"
            for i in range(max(1, len(padded) - self.ngram + 1)):
                index, sign = _bucket(f"c:{padded[i:i + self.ngram]}", self.dim)
                vec[index] += sign
        # Sub-linear term frequency, then unit length: cosine similarity is a dot product.
        vec = np.sign(vec) * np.log1p(np.abs(vec))
        norm = float(np.linalg.norm(vec))
        return vec / norm if norm else vec

    def __call__(self, input: Documents) -> Embeddings:
        """Embed each document."""
        return [self._vector(text) for text in input]

    @staticmethod
    def name() -> str:
        """Chroma's identifier of this embedding function."""
        return "adpilot-hashing"

    def get_config(self) -> dict[str, Any]:
        """The parameters that determine the vectors."""
        return {"dim": self.dim, "ngram": self.ngram}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> HashingEmbeddingFunction:
        """Rebuild from ``get_config()``."""
        return HashingEmbeddingFunction(dim=int(config.get("dim", 512)), ngram=int(config.get("ngram", 3)))

    def default_space(self) -> Any:
        """Vectors are unit length: cosine distance."""
        return "cosine"

    def label(self) -> str:
        """A collection-name-safe label of the vector space (vectors of different spaces never mix)."""
        return f"hash{self.dim}n{self.ngram}"


def _char_tokenizer() -> Any:
    """A one-token-per-character tokenizer built locally.

    ``MistralAIEmbeddings`` otherwise downloads the Mixtral tokenizer from Hugging Face just to size its
    request batches; counting characters over-estimates tokens, which only makes batches smaller.
    """
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers

    tokenizer = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    return tokenizer


class MistralEmbeddingFunction(EmbeddingFunction[Documents]):
    """Mistral embeddings (``mistral-embed`` or the configured model) through langchain-mistralai."""

    def __init__(self, model: str = "mistral-embed", base_url: str | None = None, api_key: str | None = None,
                 max_retries: int = 4, transport: httpx.BaseTransport | None = None) -> None:
        """``transport`` replaces the HTTP transport (tests serve the API in-process)."""
        from langchain_mistralai import MistralAIEmbeddings

        self.model = model
        self.base_url = base_url
        endpoint = (base_url or DEFAULT_MISTRAL_ENDPOINT).rstrip("/") + "/"
        options: dict[str, Any] = {"model": model, "max_retries": max_retries, "tokenizer": _char_tokenizer(),
                                   "endpoint": endpoint}
        if api_key:
            options["api_key"] = api_key
        if transport is not None:
            # The same client the library would build, on the given transport.
            key = api_key or os.environ.get("MISTRAL_API_KEY", "")
            options["client"] = httpx.Client(base_url=endpoint, transport=transport, headers={
                "Content-Type": "application/json", "Accept": "application/json", "Authorization": f"Bearer {key}"})
        self._client = MistralAIEmbeddings(**options)

    def __call__(self, input: Documents) -> Embeddings:
        """Embed documents for storage."""
        return [np.asarray(v, dtype=np.float32) for v in self._client.embed_documents(list(input))]

    def embed_query(self, input: Documents) -> Embeddings:
        """Embed search queries."""
        return [np.asarray(self._client.embed_query(text), dtype=np.float32) for text in input]

    @staticmethod
    def name() -> str:
        """Chroma's identifier of this embedding function."""
        return "adpilot-mistral"

    def get_config(self) -> dict[str, Any]:
        """Model and endpoint; never the key (read from the environment when rebuilt)."""
        return {"model": self.model, "base_url": self.base_url}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> MistralEmbeddingFunction:
        """Rebuild from ``get_config()``; the key comes from ``MISTRAL_API_KEY``."""
        return MistralEmbeddingFunction(model=config.get("model", "mistral-embed"), base_url=config.get("base_url"))

    def default_space(self) -> Any:
        """Mistral embeddings are normalised: cosine distance."""
        return "cosine"

    def label(self) -> str:
        """A collection-name-safe label of the vector space."""
        return "mistral-" + re.sub(r"[^a-z0-9]+", "-", self.model.lower()).strip("-")


def embedder_for(settings: Settings) -> HashingEmbeddingFunction | MistralEmbeddingFunction:
    """Mistral embeddings when a key is configured, the local hashing embedding otherwise."""
    if settings.mistral_api_key is not None and settings.mistral_api_key.get_secret_value():
        return MistralEmbeddingFunction(model=settings.embedding_model, base_url=settings.mistral_base_url,
                                        api_key=settings.mistral_api_key.get_secret_value(),
                                        max_retries=settings.max_retries)
    return HashingEmbeddingFunction()
