"""An edit request's forms survive the job codec and the API schema, and bad forms are refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from api.schemas.requests import EditRequestIn
from contracts.types import EditRequest
from workers.errors import InvalidInputError
from workers.jobs.codec import from_plain, to_plain

FORMS = ("Where was {} born? Answer:", "The birthplace of {} is")


def test_forms_round_trip_through_the_codec_and_the_schema() -> None:
    request = EditRequest("Ada", "{} was born in", "Rome", "London", forms=FORMS)
    assert from_plain(EditRequest, to_plain(request)) == request
    plain = {"subject": "Ada", "prompt": "{} was born in", "target_new": "Rome"}
    assert EditRequestIn(**plain, forms=list(FORMS)).to_request().forms == FORMS
    assert EditRequestIn(**plain).to_request().forms == ()


def test_a_form_without_one_subject_slot_is_refused_at_every_door() -> None:
    plain = {"subject": "Ada", "prompt": "{} was born in", "target_new": "Rome"}
    with pytest.raises(ValidationError, match="form"):
        EditRequestIn(**plain, forms=["Ada lives in"])
    with pytest.raises(InvalidInputError, match="forms"):
        from_plain(EditRequest, {**plain, "forms": ["{} and {}"]})
