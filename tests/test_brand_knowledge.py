"""Brand knowledge: chunking, hybrid retrieval, incremental re-indexing, offline embeddings."""

from __future__ import annotations

import itertools
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.errors import BadInput
from agent.settings import load_settings
from tools.brand import (
    BM25,
    CHUNK_CHARS,
    CHUNK_OVERLAP,
    DEMO_DOCS,
    BrandKnowledge,
    chunk_markdown,
    reciprocal_rank_fusion,
)
from tools.deps import ToolDeps
from tools.embeddings import HashingEmbeddingFunction, MistralEmbeddingFunction, embedder_for
from tools.registry import REGISTRY, all_tools, to_langchain


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    """A private copy of the demo brand documents (tests change files in it)."""
    target = tmp_path / "brand"
    shutil.copytree(DEMO_DOCS, target)
    return target


@pytest.fixture
def store(tmp_path: Path) -> BrandKnowledge:
    return BrandKnowledge(tmp_path / "home" / "chroma", HashingEmbeddingFunction())


def _stored_sources(store: BrandKnowledge) -> dict[str, int]:
    raw = store._collection.get(include=["metadatas"])
    counts: dict[str, int] = {}
    for meta in raw["metadatas"] or []:
        counts[meta["source"]] = counts.get(meta["source"], 0) + 1
    return counts


def test_demo_documents_exist_in_both_languages() -> None:
    for language in ("de", "en"):
        names = {p.name for p in (DEMO_DOCS / language).glob("*.md")}
        assert len(names) == 4, names
    do_not_say = (DEMO_DOCS / "de" / "verbotene-begriffe.md").read_text()
    for term in ("garantiert", "100% wasserdicht", "bester Preis"):
        assert term in do_not_say


def test_ingest_then_exact_terms_are_found(docs: Path, store: BrandKnowledge) -> None:
    report = store.ingest(docs)
    md_files = sorted(p.relative_to(docs).as_posix() for p in docs.rglob("*.md"))
    assert report.files_seen == len(md_files)
    assert report.files_indexed == md_files
    assert report.chunks_embedded == store.count() > len(md_files)

    hits = store.search("garantiert", k=3)
    assert hits[0].source == "de/verbotene-begriffe.md"
    assert "garantiert" in hits[0].text
    assert hits[0].doc_type == "do-not-say" and hits[0].language == "de"

    english = store.search("best price", k=3, language="en")
    assert all(h.language == "en" for h in english)
    assert english[0].source == "en/do-not-say.md"
    assert "best price" in english[0].text

    # A rare exact term that occurs in one passage only comes back first.
    hohenstein = store.search("Hohenstein", k=2, language="de")
    assert hohenstein[0].source == "de/erlaubte-aussagen.md" and "Hohenstein" in hohenstein[0].text


def test_reingest_unchanged_embeds_nothing_and_a_changed_file_only_itself(docs: Path,
                                                                          store: BrandKnowledge) -> None:
    store.ingest(docs)
    before = _stored_sources(store)
    again = store.ingest(docs)
    assert again.chunks_embedded == 0 and again.files_indexed == []
    assert again.files_unchanged == again.files_seen

    changed = docs / "en" / "sale-playbooks.md"
    changed.write_text(changed.read_text() + "\n## Spring hike week\n\nFeature the Zirbelkamm trail bundle.\n")
    report = store.ingest(docs)
    assert report.files_indexed == ["en/sale-playbooks.md"]
    assert report.chunks_deleted == before["en/sale-playbooks.md"]
    after = _stored_sources(store)
    assert {s: n for s, n in after.items() if s != "en/sale-playbooks.md"} == {
        s: n for s, n in before.items() if s != "en/sale-playbooks.md"}
    assert store.search("Zirbelkamm", k=1)[0].source == "en/sale-playbooks.md"

    (docs / "de" / "sale-playbooks.md").unlink()
    removed = store.ingest(docs)
    assert removed.files_removed == ["de/sale-playbooks.md"]
    assert "de/sale-playbooks.md" not in _stored_sources(store)


def test_a_store_reopened_from_disk_keeps_its_index(docs: Path, store: BrandKnowledge, tmp_path: Path) -> None:
    store.ingest(docs)
    reopened = BrandKnowledge(tmp_path / "home" / "chroma", HashingEmbeddingFunction())
    assert reopened.count() == store.count()
    assert reopened.ingest(docs).chunks_embedded == 0


def test_chunks_follow_headings_and_overlap_in_long_sections() -> None:
    sentence = "Die Nordkamm Fjord Jacke ist leicht und hält Wind und Regen ab. "
    text = "---\nlanguage: de\n---\n# Titel\n\nKurz.\n\n## Lang\n\n" + sentence * 40
    chunks = chunk_markdown(text)
    assert chunks[0].heading == "Titel" and chunks[0].text == "Titel\n\nKurz."
    long_chunks = [c for c in chunks if c.heading == "Titel > Lang"]
    assert len(long_chunks) >= 3
    assert all(len(c.text) <= CHUNK_CHARS for c in chunks)
    for first, second in itertools.pairwise(long_chunks):
        body_first = first.text.split("\n\n", 1)[1]
        body_second = second.text.split("\n\n", 1)[1]
        shared = body_second[:CHUNK_OVERLAP // 2]
        assert shared in body_first, "consecutive chunks overlap"
    assert "language:" not in " ".join(c.text for c in chunks)


def test_bm25_and_reciprocal_rank_fusion_by_hand() -> None:
    docs = [["a", "b"], ["a", "c", "c"], ["d"]]
    scores = BM25(docs).scores(["c"])
    n, df = 3, 1
    idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
    avg = 2.0
    expected = idf * 2 * 2.5 / (2 + 1.5 * (1 - 0.75 + 0.75 * 3 / avg))
    assert scores[0] == 0 and scores[2] == 0
    assert scores[1] == pytest.approx(expected)
    fused = reciprocal_rank_fusion([["x", "y"], ["y", "z"]], k=60)
    assert fused == pytest.approx({"x": 1 / 61, "y": 1 / 62 + 1 / 61, "z": 1 / 62})


def test_hashing_embedding_is_deterministic_across_processes_and_unit_length() -> None:
    ef = HashingEmbeddingFunction()
    vector = np.asarray(ef(["wasserdichte Regenjacke"])[0])
    assert vector.shape == (512,)
    assert float(np.linalg.norm(vector)) == pytest.approx(1.0, abs=1e-5)
    code = ("import json; from tools.embeddings import HashingEmbeddingFunction as H; "
            "print(json.dumps([float(x) for x in H()(['wasserdichte Regenjacke'])[0]]))")
    other = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                      cwd=Path(__file__).resolve().parent.parent).stdout)
    assert np.allclose(vector, other)
    rebuilt = HashingEmbeddingFunction.build_from_config(ef.get_config())
    assert np.allclose(np.asarray(rebuilt(["x"])[0]), np.asarray(ef(["x"])[0]))
    close, far = (np.asarray(v) for v in ef(["wasserdichte Jacke", "Stirnlampe mit Akku"]))
    assert float(vector @ close) > float(vector @ far)


def test_embedder_choice_follows_the_key() -> None:
    assert isinstance(embedder_for(load_settings()), HashingEmbeddingFunction)
    mistral = embedder_for(load_settings(mistral_api_key="test-key-not-real", mistral_base_url="http://localhost:1"))
    assert isinstance(mistral, MistralEmbeddingFunction)
    config = mistral.get_config()
    assert config == {"model": "mistral-embed", "base_url": "http://localhost:1"}
    assert "test-key-not-real" not in json.dumps(config)


def test_search_rejects_bad_input(docs: Path, store: BrandKnowledge) -> None:
    store.ingest(docs)
    with pytest.raises(BadInput):
        store.search("   ")
    with pytest.raises(BadInput, match="language"):
        store.search("Preis", language="fr")
    with pytest.raises(BadInput, match="not found"):
        store.ingest(docs / "missing")


def test_search_tool_on_a_fresh_home_uses_the_demo_documents(demo_runtime: Any) -> None:
    deps = ToolDeps.from_runtime(demo_runtime)
    all_tools()
    result = REGISTRY.get("search_brand_knowledge").invoke(deps, {"query": "100% wasserdicht", "language": "de"})
    assert result.passages and all(p.language == "de" for p in result.passages)
    assert any(p.source == "de/verbotene-begriffe.md" for p in result.passages[:2])
    assert (demo_runtime.settings.chroma_path).is_dir()
    text: Any = to_langchain(REGISTRY.get("search_brand_knowledge"), deps).invoke({"query": "x", "k": 3})
    assert text.startswith("error: search_brand_knowledge: query")
    # Deps are rebuilt per planner step; the store (and its Chroma client) is the runtime's, opened once.
    assert ToolDeps.from_runtime(demo_runtime).brand is deps.brand is demo_runtime.brand_knowledge


def test_mistral_embeddings_path_with_an_in_process_api(docs: Path, tmp_path: Path) -> None:
    """The Mistral client as shipped, its HTTP served in-process: request shape, auth, batching, re-use."""
    import httpx

    local = HashingEmbeddingFunction(dim=64)
    requests: list[dict[str, Any]] = []

    def serve(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/embeddings"
        assert request.headers["authorization"] == "Bearer test-key-not-real"
        body = json.loads(request.content)
        requests.append(body)
        vectors = [[float(x) for x in v] for v in local(body["input"])]
        return httpx.Response(200, json={"id": "emb-1", "object": "list", "model": body["model"],
                                         "data": [{"object": "embedding", "index": i, "embedding": v}
                                                  for i, v in enumerate(vectors)],
                                         "usage": {"prompt_tokens": 1, "total_tokens": 1}})

    ef = MistralEmbeddingFunction(model="mistral-embed", base_url="https://mistral.invalid/v1",
                                  api_key="test-key-not-real", transport=httpx.MockTransport(serve))
    store = BrandKnowledge(tmp_path / "chroma", ef)
    report = store.ingest(docs)
    assert report.chunks_embedded == sum(len(r["input"]) for r in requests)
    assert {r["model"] for r in requests} == {"mistral-embed"}
    embedded = len(requests)
    assert store.search("garantiert", k=1)[0].source == "de/verbotene-begriffe.md"
    assert len(requests) == embedded + 1 and requests[-1]["input"] == ["garantiert"]
    assert store.ingest(docs).chunks_embedded == 0
    assert len(requests) == embedded + 1


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(["Nordkamm", "wasserdicht", "garantiert", "Zelt", "leicht", "#", "##", "\n",
                                 "\n\n", ".", "Regenjacke", "x" * 40, "\n#", "\n##"]), max_size=400))
def test_chunking_keeps_every_word_within_the_size(tokens: list[str]) -> None:
    text = " ".join(tokens)
    chunks = chunk_markdown(text)
    assert all(len(c.text) <= CHUNK_CHARS for c in chunks)
    body_words = set()
    for line in text.splitlines():
        if not re.match(r"^#{1,6}\s+\S", line):
            body_words.update(line.split())
    chunked = " ".join(c.text for c in chunks).split()
    assert body_words <= set(chunked)
