"""``reframe report s3://BUCKET/PREFIX``: the review gallery of a deployed bucket as one static HTML file.

PREFIX may be the folder a user uploads to (under INPUT_PREFIX), the outputs' folder (under OUTPUT_PREFIX) or
nothing (the whole output prefix): the manifests are always read where the pipeline writes them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from reframe_pipeline.settings import Settings

from . import gallery
from .backfill import parse_s3_url


@dataclass(frozen=True)
class Place:
    bucket: str
    asked: str  # the prefix as given
    outputs: str  # where that folder's manifests are

    def describe(self) -> str:
        shown = f"s3://{self.bucket}/{self.asked}"
        return shown if self.asked == self.outputs else f"{shown} (its outputs: s3://{self.bucket}/{self.outputs})"


def outputs_prefix(prefix: str, settings: Settings) -> str:
    """The output folder that holds the manifests of ``prefix``: an input folder (``uploads/shoot/``) maps to
    its output folder (``reframed/shoot/``), the bucket's root to the whole output prefix; anything else (an
    output folder, say) is read as given."""
    inputs, outputs = settings.input_prefix, settings.output_prefix
    if not prefix or prefix == inputs.rstrip("/"):
        return outputs
    if prefix.startswith(inputs):
        return outputs + prefix.removeprefix(inputs)
    return prefix


def where(url: str, settings: Settings) -> Place:
    bucket, prefix = parse_s3_url(url)
    return Place(bucket, prefix, outputs_prefix(prefix, settings))


def write(
    url: str, output: TextIO, err: TextIO, *, expires_s: int, s3: Any | None = None, now: str | None = None
) -> gallery.Totals:
    """The gallery of every manifest of ``url``'s folder as one static page, its images (the variants and
    their sources) by presigned URL valid ``expires_s``. Progress on ``err``."""
    import boto3

    settings = Settings.from_env()
    place = where(url, settings)
    client = s3 if s3 is not None else boto3.client("s3")
    manifests = gallery.load_manifests(client, place.bucket, place.outputs, progress=err)
    if not manifests:
        err.write(
            f"no manifest under s3://{place.bucket}/{place.outputs}: outputs are written under OUTPUT_PREFIX"
            f" ({settings.output_prefix}) for uploads under INPUT_PREFIX ({settings.input_prefix})\n"
        )
    stamp = now or datetime.now(UTC).isoformat(timespec="seconds")
    notice = (
        f"{place.describe()}, read {stamp}. Images are presigned URLs valid {gallery.expiry_text(expires_s)}"
        " from then: run the report again for fresh links."
    )
    url_of = gallery.presigner(client, place.bucket, expires_s)
    output.write(
        gallery.render(
            manifests,
            url_of,
            title="Reframe review",
            notice=notice,
            source_url=url_of,
            match_min=settings.source_match_min,
        )
    )
    return gallery.totals(manifests)
