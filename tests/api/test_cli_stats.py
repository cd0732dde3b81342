"""`kgedit stats corpus|import`, `kgedit translate-hparams` and `kgedit edit --hparams-yaml`:
one JSON document with --json, one-line errors with status 2, never a traceback."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workers"))
from jobs_helpers import job_settings, random_model_dir  # noqa: F401

from api.cli import app
from editor.loading import weights_sha256
from editor.stats_import import load_imported
from workers.db import JobRow, get_database
from workers.jobs import get_job

runner = CliRunner()


def _one_line_error(out, text: str) -> None:
    assert out.exit_code == 2, out.output
    assert out.stdout == "" and text in out.stderr and "Traceback" not in out.stderr
    assert out.stderr.strip().count("\n") == 0


def test_stats_corpus_describes_a_file_and_refuses_bad_ones(tmp_path, monkeypatch) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text("".join(json.dumps({"text": f"sample {i}"}) + "\n" for i in range(30)))
    out = runner.invoke(app, ["stats", "corpus", str(path), "--samples", "10", "--json"])
    data = json.loads(out.stdout)
    assert (data["samples"], data["available"], data["source"]) == (10, 30, str(path))
    human = runner.invoke(app, ["stats", "corpus", str(path)])
    assert "samples: 30" in human.stdout and "available: 30" in human.stdout
    (tmp_path / "bad.jsonl").write_text('{"text": 3}\n')
    bad = runner.invoke(app, ["stats", "corpus", str(tmp_path / "bad.jsonl"), "--json"])
    _one_line_error(bad, "bad.jsonl line 1: expected an object with a string 'text' field")
    _one_line_error(
        runner.invoke(app, ["stats", "corpus", str(tmp_path / "none.txt")]),
        "statistics corpus not found",
    )
    # no argument: the setting
    monkeypatch.setenv("KGEDIT_STATS_CORPUS", str(path))
    from workers.settings import get_settings

    get_settings.cache_clear()
    try:
        out = runner.invoke(app, ["stats", "corpus", "--json"])
        assert json.loads(out.stdout)["available"] == 30
    finally:
        get_settings.cache_clear()


def test_stats_import_stores_a_released_file_for_the_model(
    job_settings,  # noqa: F811
    random_model_dir,  # noqa: F811
    tmp_path,
) -> None:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(random_model_dir)
    width = config.n_inner or 4 * config.n_embd
    keys = np.random.default_rng(0).standard_normal((100, width)).astype(np.float32)
    npz = tmp_path / "stats.npz"
    np.savez(npz, **{"mom2.mom2": keys.T @ keys, "mom2.count": np.array(100)})
    args = ["stats", "import", str(npz), "--model", str(random_model_dir), "--layer", "1"]
    data = json.loads(runner.invoke(app, [*args, "--json"]).stdout)
    assert (data["width"], data["count"], data["layer"]) == (width, 100, 1)
    stored = load_imported(
        job_settings.cache_dir / "stats", weights_sha256(random_model_dir), data["module"]
    )
    assert stored is not None and stored.count == 100
    np.savez(npz, **{"mom2.mom2": np.eye(width + 1), "mom2.count": np.array(5)})
    _one_line_error(runner.invoke(app, args), f"the model's MLP is {width} wide")
    wrong_layer = [*args[:-1], "9"]
    _one_line_error(runner.invoke(app, wrong_layer), "layer 9 is out of range")
    not_model = ["stats", "import", str(npz), "--model", str(tmp_path), "--layer", "0"]
    assert runner.invoke(app, not_model).exit_code == 2


EASYEDIT = """\
alg_name: "MEMIT"
model_name: "./hugging_cache/gpt2-xl"
layers: [0, 1]
v_lr: 5e-1
mom2_update_weight: 20000
rewrite_module_tmp: "transformer.h.{}.mlp.c_proj"
"""


def test_translate_hparams_and_edit_with_an_easyedit_file(
    job_settings,  # noqa: F811
    random_model_dir,  # noqa: F811
    tmp_path,
) -> None:
    path = tmp_path / "memit.yaml"
    path.write_text(EASYEDIT)
    out = runner.invoke(app, ["translate-hparams", str(path), "--json"])
    data = json.loads(out.stdout)
    assert data["method"] == "memit" and data["overrides"]["v_lr"] == 0.5
    assert set(data["dropped"]) == {"model_name", "rewrite_module_tmp"}
    human = runner.invoke(app, ["translate-hparams", str(path)])
    assert "dropped model_name:" in human.stdout and "method: memit" in human.stdout
    # the module names are checked against a model when one is given
    checked = runner.invoke(app, ["translate-hparams", str(path), "--model", str(random_model_dir)])
    assert checked.exit_code == 0
    llama_yaml = tmp_path / "llama.yaml"
    llama_yaml.write_text(EASYEDIT.replace("transformer.h.{}.mlp.c_proj", "model.layers.{}.mlp"))
    bad = runner.invoke(
        app, ["translate-hparams", str(llama_yaml), "--model", str(random_model_dir)]
    )
    _one_line_error(bad, "does not match this gpt2 model")
    # edit --hparams-yaml: the file's method and overrides go into the job; drops on stderr
    assert runner.invoke(app, ["models", "register", "rand", str(random_model_dir)]).exit_code == 0
    edit = ["edit", "--model", "rand", "--subject", "Ada", "--prompt", "{} was born in",
            "--new", "Rome", "--hparams-yaml", str(path)]  # fmt: skip
    out = runner.invoke(app, [*edit, "--json"])
    assert out.exit_code == 0, out.output
    job = get_job(json.loads(out.stdout)["id"])
    with get_database().session() as session:
        payload = session.get(JobRow, job.id).payload
    assert job.method == "memit" and payload["hparams"]["layers"] == [0, 1]
    assert payload["hparams"]["v_lr"] == 0.5
    assert "dropped model_name" in out.stderr
    clash = runner.invoke(app, [*edit, "--method", "rome"])
    _one_line_error(clash, "--method rome differs from the file's alg_name (memit)")
    path.write_text("alg_name: GRACE\n")
    _one_line_error(runner.invoke(app, edit), "alg_name 'GRACE' is not translated")
