"""``reframe report`` over moto: the gallery of a bucket's manifests as one static page."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
import requests

from reframe_cli.cli import main

from .conftest import BUCKET, Stack, s3_event

EVIL = "uploads/<script>alert(1)</script>.jpg"
GOOD = "uploads/good.jpg"
BROKEN = "uploads/broken.png"


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_report_shows_every_variant_with_working_presigned_images_and_totals(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    two = {"version": 1, "targets": [{"resolution": "1536x640", "seed": 4242}, {"size": "64x64", "name": "thumb"}]}
    for key in (EVIL, GOOD):
        stack.put_image(key)
        stack.put(key + ".reframe.json", two)
        stack.invoke(s3_event(key))
    stack.put_image(BROKEN, "coffee.png")
    stack.put(BROKEN + ".reframe.json", {"version": 1, "targets": [{"resolution": "1x1"}]})
    stack.invoke(s3_event(BROKEN))
    stack.put("reframed/good.jpg/notes.txt", b"not a manifest")

    out = tmp_path / "report.html"
    assert main(["report", f"s3://{BUCKET}", "-o", str(out), "--expires", "3600"]) == 0
    captured = capsys.readouterr()
    assert "3/3 manifests" in captured.err  # the progress bar, on stderr
    page = out.read_text()

    tags = Tags()
    tags.feed(page)
    assert [t for t, _ in tags.tags if t == "script"] == []
    sources = [attrs["data-source"] for tag, attrs in tags.tags if tag == "section"]
    assert sources == [EVIL, BROKEN, GOOD]  # key order, escaped in the page, read back as the key
    variants = [attrs["data-variant"] for tag, attrs in tags.tags if tag == "figure" and "data-variant" in attrs]
    assert sorted(variants) == sorted(["1536x640", "thumb"] * 2)  # the rejected source: one card, no variant
    rejected = [attrs["data-source"] for tag, attrs in tags.tags if tag == "figure" and attrs["class"] == "rejected"]
    assert rejected == [BROKEN]
    images = [attrs["src"] for tag, attrs in tags.tags if tag == "img"]
    assert len(images) == 4 + 3  # the variants, and each source beside them
    for src in images:
        assert src and "Expires=" in src and "Signature=" in src
        response = requests.get(src, timeout=10)
        assert response.status_code == 200 and response.content[:4] in (b"\x89PNG", b"\xff\xd8\xff\xe0", b"RIFF")
    assert "Images are presigned URLs valid 1 h from then" in page
    totals = re.sub("<[^>]+>", "", re.search(r'<p class="totals">(.*?)</p>', page).group(1))  # type: ignore[union-attr]
    # Four variants made at Segmind's DEFAULT price; the invalid sidecar's source rejected, not a failed variant.
    assert totals == "3 sources, 4 variants (4 created); 0 failed, 0 flagged, 1 source rejected; cost $0.300"
    assert "<form" not in page and "http-equiv" not in page  # a static page: nothing to post, no reload
    assert f"{out}: 3 sources, 4 variants, 0 failed, 0 flagged, 1 source rejected, cost $0.300" in captured.out


def test_report_of_a_missing_bucket_is_one_line(stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["report", "s3://no-such-bucket/reframed/", "-o", str(tmp_path / "r.html")]) == 2
    assert "reframe report: AWS:" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("prefix", "shown"),
    [
        ("uploads/shoot/", ["uploads/shoot/a.jpg", "uploads/shoot/b.jpg"]),  # the folder a user uploads to
        ("uploads/shoot", ["uploads/shoot/a.jpg", "uploads/shoot/b.jpg"]),
        ("reframed/shoot/", ["uploads/shoot/a.jpg", "uploads/shoot/b.jpg"]),  # its outputs' folder
        ("uploads/", ["uploads/other.jpg", "uploads/shoot/a.jpg", "uploads/shoot/b.jpg"]),
        ("", ["uploads/other.jpg", "uploads/shoot/a.jpg", "uploads/shoot/b.jpg"]),  # the bucket's root
    ],
)
def test_report_of_an_uploads_folder_reads_that_folders_manifests(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str], prefix: str, shown: list[str]
) -> None:
    one = {"version": 1, "targets": [{"size": "64x64", "name": "thumb"}]}
    for key in ("uploads/shoot/a.jpg", "uploads/shoot/b.jpg", "uploads/other.jpg"):
        stack.put_image(key)
        stack.put(key + ".reframe.json", one)
        stack.invoke(s3_event(key))
    out = tmp_path / "report.html"
    assert main(["report", f"s3://{BUCKET}/{prefix}", "-o", str(out)]) == 0
    tags = Tags()
    tags.feed(out.read_text())
    assert [attrs["data-source"] for tag, attrs in tags.tags if tag == "section"] == shown
    assert f"{len(shown)} sources, {len(shown)} variants" in capsys.readouterr().out


def test_report_of_a_folder_without_manifests_says_where_they_are_looked_for(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", f"s3://{BUCKET}/uploads/none/", "-o", str(tmp_path / "r.html")]) == 0
    err = capsys.readouterr().err
    assert f"no manifest under s3://{BUCKET}/reframed/none/: outputs are written under OUTPUT_PREFIX" in err
