"""Brand knowledge: brand guidelines, do-not-say lists, claims and playbooks, searchable by the planner.

A folder of Markdown files is chunked by heading (with overlap inside long sections) into a Chroma
``PersistentClient`` under the adpilot home. Search is hybrid: dense vectors from Chroma and Okapi
BM25 over the same chunk texts, fused by reciprocal rank fusion, so an exact term such as
"garantiert" is found even when the embedding does not rank it. Re-ingesting re-embeds only files
whose content hash changed and drops the chunks of files that disappeared.

The store mirrors one folder: ``ingest(folder)`` makes the collection match that folder.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from agent.errors import BadInput
from agent.settings import Settings
from tools.deps import ToolDeps
from tools.embeddings import HashingEmbeddingFunction, MistralEmbeddingFunction, embedder_for, words
from tools.registry import tool

DEMO_DOCS = Path(__file__).resolve().parent / "brand_docs"
CHUNK_CHARS = 900
CHUNK_OVERLAP = 150
# Part of every file's hash: changing the chunker re-indexes everything on the next ingest.
CHUNKER_VERSION = f"v1-{CHUNK_CHARS}-{CHUNK_OVERLAP}"
RRF_K = 60
LANGUAGES = ("de", "en")

Embedder = HashingEmbeddingFunction | MistralEmbeddingFunction
Language = Literal["de", "en"]

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


@dataclass(frozen=True)
class Chunk:
    """One piece of a document, with the heading path it sits under."""

    heading: str
    text: str


def _front_matter(text: str) -> tuple[dict[str, str], str]:
    """``---`` delimited ``key: value`` lines at the top of a file, and the rest."""
    if not text.startswith("---\n"):
        return {}, text
    end = text.find("\n---", 4)
    if end < 0:
        return {}, text
    meta = {}
    for line in text[4:end].splitlines():
        key, sep, value = line.partition(":")
        if sep:
            meta[key.strip().lower()] = value.strip()
    return meta, text[end + 4:].lstrip("\n")


def _windows(text: str, size: int, overlap: int) -> list[str]:
    """Split ``text`` into pieces of at most ``size`` characters at paragraph / sentence / word boundaries,
    each starting with (up to) the last ``overlap`` characters of the previous one."""
    if len(text) <= size:
        return [text]
    pieces: list[str] = []
    start = 0
    while start < len(text):
        end = min(len(text), start + size)
        if end < len(text):
            window = text[start:end]
            cut = max(window.rfind("\n\n"), window.rfind(". "), window.rfind("\n"))
            if cut < size // 2:
                cut = window.rfind(" ")
            if cut > 0:
                end = start + cut + 1
        pieces.append(text[start:end].strip())
        if end >= len(text):
            break
        # Step back by the overlap, to a word boundary, but always move forward.
        back = text.rfind(" ", start + 1, max(start + 1, end - overlap))
        start = back + 1 if back > start else end
    return [p for p in pieces if p]


def chunk_markdown(text: str, *, size: int = CHUNK_CHARS, overlap: int = CHUNK_OVERLAP) -> list[Chunk]:
    """Chunks of a Markdown document: one per section, long sections split with overlap.

    Each chunk's text starts with its heading path ("Title > Section"), so the words of the headings
    count for both the dense and the BM25 search.
    """
    _, body = _front_matter(text)
    path: list[tuple[int, str]] = []
    sections: list[tuple[str, list[str]]] = [("", [])]
    for line in body.splitlines():
        match = _HEADING.match(line)
        if match:
            level = len(match.group(1))
            path = [(lv, t) for lv, t in path if lv < level] + [(level, match.group(2).strip())]
            sections.append((" > ".join(t for _, t in path), []))
        else:
            sections[-1][1].append(line)
    chunks = []
    for heading, lines in sections:
        content = "\n".join(lines).strip()
        if not content:
            continue
        # A runaway heading must not crowd out the text: the prefix is at most a third of a chunk.
        prefix = heading if len(heading) <= size // 3 else heading[:size // 3 - 1] + "…"
        budget = size - len(prefix) - 2
        for piece in _windows(content, budget, overlap):
            chunks.append(Chunk(heading=heading, text=f"{prefix}\n\n{piece}" if prefix else piece))
    return chunks


class BM25:
    """Okapi BM25 (k1 = 1.5, b = 0.75) over tokenised documents."""

    def __init__(self, docs: list[list[str]], k1: float = 1.5, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.tfs = [Counter(d) for d in docs]
        self.lengths = [len(d) for d in docs]
        self.avg = (sum(self.lengths) / len(docs)) if docs else 0.0
        df: Counter[str] = Counter()
        for tf in self.tfs:
            df.update(tf.keys())
        n = len(docs)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}

    def scores(self, query: list[str]) -> list[float]:
        """The BM25 score of every document for ``query``."""
        out = []
        for tf, length in zip(self.tfs, self.lengths, strict=True):
            score = 0.0
            norm = self.k1 * (1 - self.b + self.b * length / self.avg) if self.avg else self.k1
            for term in query:
                f = tf.get(term)
                if f:
                    score += self.idf[term] * f * (self.k1 + 1) / (f + norm)
            out.append(score)
        return out


def reciprocal_rank_fusion(rankings: list[list[str]], k: int = RRF_K) -> dict[str, float]:
    """RRF: each id scores the sum of 1 / (k + rank) over the rankings it appears in (rank from 1)."""
    fused: dict[str, float] = {}
    for ranking in rankings:
        for rank, doc_id in enumerate(ranking, start=1):
            fused[doc_id] = fused.get(doc_id, 0.0) + 1.0 / (k + rank)
    return fused


class IngestReport(BaseModel):
    """What an ingest changed."""

    files_seen: int = Field(description="Markdown files in the folder.")
    files_indexed: list[str] = Field(description="New or changed files, (re-)embedded.")
    files_unchanged: int = Field(description="Files whose content hash was already indexed.")
    files_removed: list[str] = Field(description="Files no longer in the folder; their chunks were deleted.")
    chunks_embedded: int = Field(description="Chunks embedded in this ingest.")
    chunks_deleted: int = Field(description="Old chunks deleted.")


class BrandChunk(BaseModel):
    """A passage of the brand documents."""

    text: str = Field(description="The passage, starting with its heading path.")
    source: str = Field(description="File it comes from, relative to the brand folder.")
    heading: str = Field(description="Heading path of the section.")
    language: str = Field(description="de or en.")
    doc_type: str = Field(description="guidelines, do-not-say, claims, playbook...")
    score: float = Field(description="Fused relevance (reciprocal rank fusion); higher is better.")


class BrandKnowledge:
    """The brand knowledge store (one Chroma collection per embedding space)."""

    def __init__(self, path: Path, embedder: Embedder) -> None:
        import chromadb

        path.mkdir(parents=True, exist_ok=True)
        # No telemetry: brand documents and queries are the customer's business.
        self._client = chromadb.PersistentClient(path=str(path),
                                                 settings=chromadb.Settings(anonymized_telemetry=False))
        self.embedder = embedder
        # Vectors from different embedders live in different spaces (and sizes): never one collection.
        self._collection = self._client.get_or_create_collection(
            f"brand-{embedder.label()}", embedding_function=embedder, configuration={"hnsw": {"space": "cosine"}})

    def count(self) -> int:
        """Number of stored chunks."""
        return self._collection.count()

    def _indexed(self) -> dict[str, tuple[str, int]]:
        """Source -> (content hash, chunk count) of what is stored."""
        stored = self._collection.get(include=["metadatas"])
        out: dict[str, tuple[str, int]] = {}
        for meta in stored["metadatas"] or []:
            source, digest = str(meta["source"]), str(meta["content_hash"])
            out[source] = (digest, out.get(source, (digest, 0))[1] + 1)
        return out

    def ingest(self, folder: Path) -> IngestReport:
        """Make the store match the Markdown files under ``folder``, embedding only what changed."""
        folder = Path(folder)
        if not folder.is_dir():
            raise BadInput(f"brand documents folder not found: {folder}")
        files = sorted(p for p in folder.rglob("*.md") if p.is_file())
        indexed = self._indexed()
        changed: list[str] = []
        embedded = deleted = unchanged = 0
        for file in files:
            source = file.relative_to(folder).as_posix()
            raw = file.read_bytes()
            digest = hashlib.sha256(CHUNKER_VERSION.encode() + b"\0" + raw).hexdigest()
            if indexed.get(source, ("", 0))[0] == digest:
                unchanged += 1
                continue
            if source in indexed:
                self._collection.delete(where={"source": source})
                deleted += indexed[source][1]
            text = raw.decode("utf-8")
            meta, _ = _front_matter(text)
            chunks = chunk_markdown(text)
            if chunks:
                language = meta.get("language") or (source.split("/")[0] if "/" in source else "und")
                doc_type = meta.get("type") or file.stem
                self._collection.add(
                    ids=[f"{source}#{i}" for i in range(len(chunks))],
                    documents=[c.text for c in chunks],
                    metadatas=[{"source": source, "heading": c.heading, "language": language, "doc_type": doc_type,
                                "content_hash": digest, "chunk_index": i} for i, c in enumerate(chunks)])
            if chunks or source in indexed:  # an empty new file has nothing to index, now or next time
                changed.append(source)
            embedded += len(chunks)
        present = {f.relative_to(folder).as_posix() for f in files}
        removed = sorted(s for s in indexed if s not in present)
        for source in removed:
            self._collection.delete(where={"source": source})
            deleted += indexed[source][1]
        return IngestReport(files_seen=len(files), files_indexed=changed, files_unchanged=unchanged,
                            files_removed=removed, chunks_embedded=embedded, chunks_deleted=deleted)

    def search(self, query: str, k: int = 5, language: str | None = None) -> list[BrandChunk]:
        """The ``k`` best passages for ``query``: dense and BM25 rankings fused by reciprocal rank fusion."""
        if not query.strip():
            raise BadInput("empty brand knowledge query")
        if language is not None and language not in LANGUAGES:
            raise BadInput(f"language must be one of {', '.join(LANGUAGES)}")
        where: dict[str, Any] | None = {"language": language} if language else None
        stored = self._collection.get(where=where, include=["documents", "metadatas"])
        ids: list[str] = list(stored["ids"])
        if not ids:
            return []
        docs = dict(zip(ids, stored["documents"] or [], strict=True))
        metas = dict(zip(ids, stored["metadatas"] or [], strict=True))
        depth = min(len(ids), max(4 * k, 20))
        dense = self._collection.query(query_texts=[query], n_results=depth, where=where, include=[])
        dense_ranking = list(dense["ids"][0])
        # BM25 over the same candidate set; only documents that contain a query term are ranked.
        bm25 = dict(zip(ids, BM25([words(docs[i]) for i in ids]).scores(words(query)), strict=True))
        lexical = sorted((i for i in ids if bm25[i] > 0), key=lambda i: (-bm25[i], i))[:depth]
        fused = reciprocal_rank_fusion([dense_ranking, lexical])
        best = sorted(fused, key=lambda i: (-fused[i], i))[:k]
        return [BrandChunk(text=docs[i], source=str(metas[i]["source"]), heading=str(metas[i]["heading"]),
                           language=str(metas[i]["language"]), doc_type=str(metas[i]["doc_type"]),
                           score=round(fused[i], 6)) for i in best]


def open_brand_knowledge(settings: Settings) -> BrandKnowledge:
    """The store under the home; on first use it is filled with the demo shop's documents.

    A shop with its own documents ingests them (``BrandKnowledge.ingest``) and the demo set is
    never added again, because the store is no longer empty.
    """
    store = BrandKnowledge(settings.chroma_path, embedder_for(settings))
    if store.count() == 0:
        store.ingest(DEMO_DOCS)
    return store


class SearchBrandKnowledgeArgs(BaseModel):
    """Arguments of search_brand_knowledge."""

    query: str = Field(min_length=2, max_length=500,
                       description="What to look up: a term, a claim, a question about tone or a sale playbook.")
    k: int = Field(default=5, ge=1, le=20, description="How many passages to return (1-20).")
    language: Language | None = Field(default=None, description="Only documents in this language (de or en).")


class BrandSearchResult(BaseModel):
    """Passages from the brand documents, best first."""

    passages: list[BrandChunk] = Field(description="The best passages.")


@tool("read")
def search_brand_knowledge(deps: ToolDeps, args: SearchBrandKnowledgeArgs) -> BrandSearchResult:
    """Search the brand guidelines, do-not-say list, allowed claims and sale playbooks (German and English).

    Hybrid search: exact words (e.g. a forbidden term) and related wording both count.
    """
    return BrandSearchResult(passages=deps.brand.search(args.query, k=args.k, language=args.language))
