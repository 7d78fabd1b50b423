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
    variants = [attrs["data-variant"] for tag, attrs in tags.tags if tag == "figure"]
    assert sorted(variants) == sorted(["1536x640", "thumb"] * 2 + ["1x1"])
    images = [attrs["src"] for tag, attrs in tags.tags if tag == "img"]
    assert len(images) == 4
    for src in images:
        assert src and "Expires=" in src and "Signature=" in src
        response = requests.get(src, timeout=10)
        assert response.status_code == 200 and response.content[:4] in (b"\x89PNG", b"\xff\xd8\xff\xe0", b"RIFF")
    assert "Images are presigned URLs valid 1 h from then" in page
    totals = re.sub("<[^>]+>", "", re.search(r'<p class="totals">(.*?)</p>', page).group(1))  # type: ignore[union-attr]
    # Four variants made at Segmind's DEFAULT price; the invalid sidecar's source rejected, its target failed.
    assert totals == "3 sources, 5 variants (4 created, 1 failed); 1 failed, 0 flagged, 1 sources rejected; cost $0.300"
    assert "<form" not in page and "http-equiv" not in page  # a static page: nothing to post, no reload
    assert f"{out}: 3 sources, 5 variants, 1 failed, 0 flagged, cost $0.300" in captured.out


def test_report_of_a_missing_bucket_is_one_line(stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["report", "s3://no-such-bucket/reframed/", "-o", str(tmp_path / "r.html")]) == 2
    assert "reframe report: AWS:" in capsys.readouterr().err
