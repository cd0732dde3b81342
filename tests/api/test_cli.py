"""The `kgedit` command line: import, export and clear errors (no model training here)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from api.cli import app
from workers.settings import get_settings

runner = CliRunner()


def test_import_evoke_then_export_round_trip(tmp_path, evoke_paths):
    url = f"sqlite:///{tmp_path / 'kg.sqlite'}"
    out = runner.invoke(app, ["import", "evoke", "--graph", url, "--limit", "5", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["cases_main"] == 5
    dest = tmp_path / "facts.jsonl"
    out = runner.invoke(app, ["export", str(dest), "--graph", url])
    assert out.exit_code == 0, out.output
    rows = [json.loads(line) for line in dest.read_text().splitlines()]
    n_facts = sum(1 for r in rows if r.get("type", "fact") == "fact")
    assert n_facts > 0 and f"wrote {n_facts} facts" in out.output
    again = f"sqlite:///{tmp_path / 'kg2.sqlite'}"
    out = runner.invoke(app, ["import", str(dest), "--graph", again])
    assert out.exit_code == 0, out.output
    out = runner.invoke(app, ["export", str(tmp_path / "again.jsonl"), "--graph", again])
    assert f"wrote {n_facts} facts" in out.output


def test_import_the_synthetic_world(tmp_path):
    url = f"sqlite:///{tmp_path / 'kg.sqlite'}"
    args = ["import", "synthetic", "--graph", url, "--people", "30", "--seed", "5", "--json"]
    out = runner.invoke(app, args)
    assert out.exit_code == 0, out.output
    summary = json.loads(out.output)
    assert summary["entities_by_kind"]["person"] == 30 and summary["seed"] == 5
    assert summary["added"]["facts"] == sum(summary["facts_by_relation"].values()) > 120
    again = json.loads(runner.invoke(app, args).output)
    assert again["added"] == {"entities": 0, "relations": 0, "facts": 0}


@pytest.mark.service
def test_import_and_export_on_a_bolt_graph(tmp_path, monkeypatch, evoke_paths, falkor_server):
    from kg.store import open_store

    sql = f"sqlite:///{tmp_path / 'kg.sqlite'}"
    assert runner.invoke(app, ["import", "evoke", "--graph", sql, "--limit", "3"]).exit_code == 0
    source = tmp_path / "facts.jsonl"
    assert runner.invoke(app, ["export", str(source), "--graph", sql]).exit_code == 0
    bolt = open_store(falkor_server.bolt_url)
    bolt.drop_all()  # the session's server is shared
    monkeypatch.setenv("KGEDIT_GRAPH_URL", falkor_server.bolt_url)
    get_settings.cache_clear()
    try:
        out = runner.invoke(app, ["import", str(source), "--json"])
        assert out.exit_code == 0, out.output
        n_facts = json.loads(out.output)["facts"]
        assert n_facts > 0 and bolt.count_facts() == n_facts
        out = runner.invoke(app, ["export", str(tmp_path / "again.jsonl")])
        assert out.exit_code == 0 and f"wrote {n_facts} facts" in out.output, out.output
    finally:
        bolt.drop_all()
        get_settings.cache_clear()


def test_malformed_jsonl_names_the_line_and_exits_2(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "relation"}\nnot json\n')
    out = runner.invoke(app, ["import", str(bad), "--graph", f"sqlite:///{tmp_path / 'k.sqlite'}"])
    assert out.exit_code == 2
    assert "line 1" in out.output or "line 2" in out.output


def test_missing_file_and_unknown_preset_are_clear_errors(tmp_path):
    url = f"sqlite:///{tmp_path / 'k.sqlite'}"
    out = runner.invoke(app, ["import", str(tmp_path / "nope.jsonl"), "--graph", url])
    assert out.exit_code == 2 and "no such file" in out.output
    out = runner.invoke(app, ["train-model", "--out", str(tmp_path / "m"), "--preset", "huge"])
    assert out.exit_code == 2 and "unknown preset" in out.output


def test_trace_refuses_a_directory_that_is_not_a_model(tmp_path):
    out = runner.invoke(app, ["trace", "--model", str(tmp_path)])
    assert out.exit_code == 2
    assert "config.json" in out.output or "model" in out.output


def test_concept_anchor_override_and_errors(tmp_path):
    from kg.store.sql import SqlGraphStore
    from kg.types import Concept, Entity

    url = f"sqlite:///{tmp_path / 'k.sqlite'}"
    store = SqlGraphStore(url)
    store.add_entities([Entity("p:ada", "Ada"), Entity("p:cy", "Cy")])
    store.add_concept(Concept("forget:ada", "Ada", entities=("p:ada",)))
    args = ["concept-anchor", "forget:ada", "p:cy", "--graph", url, "--who", "eve", "--json"]
    out = runner.invoke(app, [*args, "--reason", "closer kind"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["redirect_to"] == "p:cy"
    assert store.get_concept("forget:ada").redirect_to == "p:cy"
    entry = store.change_log(action="set_concept_redirect")[-1]
    assert entry.who == "eve" and entry.why == "closer kind"
    out = runner.invoke(app, ["concept-anchor", "forget:ada", "--clear", "--graph", url])
    assert out.exit_code == 0, out.output
    assert store.get_concept("forget:ada").redirect_to is None
    out = runner.invoke(app, ["concept-anchor", "forget:nobody", "p:cy", "--graph", url])
    assert out.exit_code == 2 and "forget:nobody" in out.output
    out = runner.invoke(app, ["concept-anchor", "forget:ada", "p:ghost", "--graph", url])
    assert out.exit_code == 2 and "p:ghost" in out.output
    out = runner.invoke(app, ["concept-anchor", "forget:ada", "--graph", url])
    assert out.exit_code == 2 and "exactly one" in out.output
