"""The real-width benchmark's corpus and results block (the run itself is the benchmark)."""

from __future__ import annotations

from bench.real_width import PeakRss, docs_paragraphs, markdown, requests


def test_the_corpus_is_the_prose_of_docs() -> None:
    paragraphs = docs_paragraphs()
    assert len(paragraphs) > 100
    assert not any(p.startswith(("|", "#", "<!--", "```")) for p in paragraphs)
    assert all(len(p.split()) >= 8 and "\n" not in p for p in paragraphs)


def test_steps_record_time_and_peak_memory_and_the_block_names_them() -> None:
    meter = PeakRss(interval=0.001)
    with meter.step("grow", note="x") as row:
        block = bytearray(64 << 20)  # 64 MiB touched while the step runs
        block[::4096] = b"\1" * len(block[::4096])
        row["size"] = len(block)
    meter.close()
    (step,) = meter.rows
    assert step["peak_rss_mib"] >= 64 and step["seconds"] >= 0 and step["note"] == "x"
    preset = {"row": "gpt2-medium", "note": "recognised"}
    corpus = {"samples": 5, "available": 9}
    data = {
        "date": "2026-12-03", "machine": "m", "load_before": "1.0", "load_after": "2.0",
        "parameters": 354_823_168, "omp_threads": "1", "steps": meter.rows,
        "results": {
            "rome": {"preset": preset, "corpus": corpus,
                     "hparams": {"layer": 8, "v_num_grad_steps": 20}},
            "memit": {"preset": preset, "corpus": corpus, "hparams": {"layers": [6, 7, 8]}},
        },
    }  # fmt: skip
    text = markdown(data)
    assert "2026-12-03" in text and "load before the run: 1.0, after: 2.0" in text
    assert "| grow |" in text and "note x, size 67108864" in text
    assert [r.subject for r in requests(3)] == ["Marie Curie", "Ada Lovelace", "Alan Turing"]
