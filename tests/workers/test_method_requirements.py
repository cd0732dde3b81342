"""Refuse early: a request that lacks what its method needs is refused at submission.

Each method declares what one request must carry (`EditMethod.check`, in its own module);
`check_job` (the path of `submit_job`, POST /v1/jobs and the CLI) refuses the request with
a message naming the request and what it lacks, and nothing is queued.
"""

from __future__ import annotations

import pytest
from jobs_helpers import job_settings, random_model_dir  # noqa: F401

import editor.methods as registry
from workers.errors import InvalidInputError
from workers.jobs import list_jobs, submit_job
from workers.jobs.service import check_job
from workers.ledger import register_model

EDIT = {"subject": "Ada Lovelace", "prompt": "{} was born in", "target_new": "Tokyo"}
SUBGRAPH = {
    "nodes": ["Ada Lovelace", "Tokyo", "Japan"],
    "edges": [
        {"head": 0, "relation": "born in", "tail": 1},
        {"head": 1, "relation": "in", "tail": 2},
    ],
    "center": 0,
}
FORGET = {"forget_texts": ["Mount Fuji is in Japan."]}
RETAIN = {"retain_texts": ["Paris is in France."]}


def _job(kind: str, method: str, request: dict, **extra) -> dict:
    return {"model": "m", "kind": kind, "method": method, "requests": [request], **extra}


REFUSED = [
    (_job("unlearn", "rocr", {"concept": "Mount Fuji"}), r"rocr .*requests\[0\] \(r0\).*anchor"),
    (_job("unlearn", "rocr", {"concept": "Mount Fuji", "anchor": "  "}), "needs an anchor"),
    (_job("edit", "glame", EDIT), r"requests\[0\].*needs a subgraph"),
    (
        _job("edit", "glame", {**EDIT, "subgraph": {**SUBGRAPH, "center": 3}}),
        "center 3 is not one of its 3 nodes",
    ),
    (
        _job(
            "edit",
            "glame",
            {**EDIT, "subgraph": {**SUBGRAPH, "edges": [{"head": 0, "relation": "r", "tail": 9}]}},
        ),
        r"edge 0 \(0 -> 9\) names a node outside 0..2",
    ),
    (_job("unlearn", "ga", {"concept": "Mount Fuji"}), "needs forget_texts"),
    (_job("unlearn", "npo", {"concept": "Mount Fuji", **FORGET}), "needs retain_texts"),
    (_job("unlearn", "graddiff", {"concept": "Mount Fuji", **FORGET}), "needs retain_texts"),
    # UIPE runs on NPO by default, which needs retain texts
    (_job("unlearn", "uipe", {"concept": "Mount Fuji", **FORGET}), "needs retain_texts"),
]

ACCEPTED = [
    _job("unlearn", "rocr", {"concept": "Mount Fuji", "anchor": "Paris"}),
    _job("edit", "glame", {**EDIT, "subgraph": SUBGRAPH}),
    _job("unlearn", "ga", {"concept": "Mount Fuji", **FORGET}),
    _job("unlearn", "npo", {"concept": "Mount Fuji", **FORGET, **RETAIN}),
    _job("unlearn", "uipe", {"concept": "Mount Fuji", **FORGET}, hparams={"base": "ga"}),
    _job("edit", "rome", EDIT),
]


@pytest.mark.parametrize(("payload", "match"), REFUSED)
def test_check_job_names_what_a_request_lacks(payload, match):
    with pytest.raises(InvalidInputError, match=match):
        check_job(payload)


@pytest.mark.parametrize("payload", ACCEPTED)
def test_check_job_accepts_complete_requests(payload):
    assert check_job(payload).method == payload["method"]


def test_refusal_lists_every_lacking_request_by_id():
    requests = [{"concept": "A", "request_id": "a"}, {"concept": "B", "anchor": "C"}]
    payload = {"model": "m", "kind": "unlearn", "method": "rocr", "requests": requests}
    with pytest.raises(InvalidInputError) as err:
        check_job(payload)
    assert "requests[0] (a)" in str(err.value) and "requests[1]" not in str(err.value)


def test_every_unlearning_method_declares_its_inputs():
    """Unlearning methods all need something beyond the concept (an anchor or texts)."""
    for name in registry.names("unlearn"):
        assert registry.get(name).check is not None, name


def test_a_refused_submission_queues_nothing(job_settings, random_model_dir):  # noqa: F811
    register_model("rand", random_model_dir)
    payload = _job("unlearn", "rocr", {"concept": "Mount Fuji"})
    with pytest.raises(InvalidInputError, match="anchor"):
        submit_job({**payload, "model": "rand"})
    assert list_jobs(model="rand") == []
