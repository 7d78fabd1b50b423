"""Which folder's manifests ``reframe report`` reads: the one a user names, wherever the pipeline wrote them."""

from __future__ import annotations

import pytest

from reframe_cli.errors import UserError
from reframe_cli.report import where
from reframe_cli.words import counted
from reframe_pipeline.settings import Settings

SETTINGS = Settings.from_env({"INPUT_PREFIX": "in/", "OUTPUT_PREFIX": "out/"})


@pytest.mark.parametrize(
    ("url", "outputs", "shown"),
    [
        ("s3://b/in/shoot/", "out/shoot/", "s3://b/in/shoot/ (its outputs: s3://b/out/shoot/)"),
        ("s3://b/in/shoot", "out/shoot", "s3://b/in/shoot (its outputs: s3://b/out/shoot)"),
        ("s3://b/in/", "out/", "s3://b/in/ (its outputs: s3://b/out/)"),
        ("s3://b/in", "out/", "s3://b/in (its outputs: s3://b/out/)"),
        ("s3://b", "out/", "s3://b/ (its outputs: s3://b/out/)"),
        ("s3://b/", "out/", "s3://b/ (its outputs: s3://b/out/)"),
        ("s3://b/out/shoot/", "out/shoot/", "s3://b/out/shoot/"),
        ("s3://b/elsewhere/", "elsewhere/", "s3://b/elsewhere/"),  # another deployment's OUTPUT_PREFIX, say
    ],
)
def test_an_input_folder_is_read_where_its_outputs_are(url, outputs, shown):
    place = where(url, SETTINGS)
    assert (place.bucket, place.outputs, place.describe()) == ("b", outputs, shown)


def test_not_an_s3_url_is_refused():
    with pytest.raises(UserError, match="is not an S3 location"):
        where("https://b/in/", SETTINGS)


def test_counts_are_singular_for_one():
    assert [counted(n, "source") for n in (0, 1, 2)] == ["0 sources", "1 source", "2 sources"]
