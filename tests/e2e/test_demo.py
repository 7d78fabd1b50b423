"""`reframe demo` end to end and offline: the sample images go S3 -> SQS -> poller -> handler."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import jsonschema
import pytest
from PIL import Image

from reframe_cli.samples import SIDECARS, UPLOADS
from reframe_pipeline.domain.planning import plan
from reframe_pipeline.domain.sidecar import parse_sidecar

from .conftest import Receiver, clean_env

NOTICE_SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "notice.schema.json").read_text())

# The settings' defaults (DEFAULT_RENDERING_SPEED, STYLE_PREFIX).
PLAN = {"default_speed": "DEFAULT", "style_prefix": "styles/"}
# Which example sidecar configures each upload (the nearest one; see examples/sidecars/README.md).
CONFIGS = {
    "astronaut.png": "astronaut.png.reframe.json",
    "rocket.jpg": "rocket.jpg.reframe.json",
    "gallery/chelsea.png": "gallery/_reframe.json",
    "gallery/coffee.png": "gallery/_reframe.json",
    "phone/rocket-phone.jpg": "_reframe.json",
}


def expected_sizes(source: str) -> dict[str, tuple[int, int]]:
    sidecar = parse_sidecar((SIDECARS / CONFIGS[source]).read_bytes(), max_bytes=65536, max_targets=20)
    return {v.name: tuple(v.final_size) for v in plan(sidecar, provider="local", **PLAN)}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> tuple[Path, str]:
    output = tmp_path_factory.mktemp("demo") / "out"
    result = subprocess.run(
        [sys.executable, "-m", "reframe_cli.cli", "demo", "--output", str(output), "--webhook", receiver.url],
        env=clean_env(),
        check=False,  # the assertion below shows the output
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return output, result.stdout


def test_uploads_cover_every_target_kind() -> None:
    assert set(CONFIGS) == set(UPLOADS.values())
    targets = [
        target for name in set(CONFIGS.values()) for target in json.loads((SIDECARS / name).read_text())["targets"]
    ]
    for kind in ("resolution", "aspect_ratio", "size", "preset"):
        assert any(kind in target for target in targets), kind
    presets = {target.get("preset") for target in targets}
    assert {"instagram-story", "linkedin-banner"} <= presets


@pytest.mark.slow
def test_every_variant_is_created_with_its_exact_size(demo: tuple[Path, str]) -> None:
    output, _ = demo
    for source, config in CONFIGS.items():
        manifest = json.loads((output / "reframed" / source / "manifest.json").read_text())
        assert manifest["source"]["key"] == f"uploads/{source}"
        assert manifest["config"]["from"] == ("object" if config.endswith(".reframe.json") else "folder")
        sizes = expected_sizes(source)
        assert [v["name"] for v in manifest["variants"]] == list(sizes)
        for variant in manifest["variants"]:
            assert variant["status"] == "created", variant
            assert variant["provider"] == "local"
            path = output / variant["key"]
            assert path.parent == output / "reframed" / source
            with Image.open(path) as image:
                assert image.size == sizes[variant["name"]], path
                assert (variant["width"], variant["height"]) == image.size
    # The presets and exact sizes, spelled out.
    assert expected_sizes("astronaut.png")["instagram-story"] == (1080, 1920)
    assert expected_sizes("rocket.jpg")["linkedin-banner"] == (1584, 396)
    assert expected_sizes("rocket.jpg")["og"] == (1200, 628)
    with Image.open(output / "reframed/rocket.jpg/og.jpg") as image:
        assert image.format == "JPEG"  # the sidecar's output format


@pytest.mark.slow
def test_the_phone_photo_is_prepared_upright(demo: tuple[Path, str]) -> None:
    output, _ = demo
    folder = output / "reframed/phone/rocket-phone.jpg"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["source"]["prepared"] == {"reasons": ["exif-orientation"]}
    with Image.open(folder / "_prepared.png") as prepared:
        assert prepared.size == (640, 427)  # stored 427x640 with orientation 6


@pytest.mark.slow
def test_contact_sheet_and_table(demo: tuple[Path, str]) -> None:
    output, stdout = demo
    with Image.open(output / "contact-sheet.png") as sheet:
        assert sheet.format == "PNG"
        sheet.verify()
        width, height = sheet.size
    # A row of 200-pixel thumbnails with labels per source; the widest row holds a 4:1 banner.
    assert len(CONFIGS) * 200 < height < len(CONFIGS) * 400
    assert 1000 < width < 4000
    table = [line.split() for line in stdout.splitlines()]
    rows = [line for line in table if len(line) == 5 and line[3] == "created"]
    assert len(rows) == sum(len(expected_sizes(source)) for source in CONFIGS)
    assert ["rocket.jpg", "linkedin-banner", "1584x396", "created"] in [row[:4] for row in rows]
    assert re.search(r"^done in \d+\.\d s$", stdout, re.MULTILINE)


@pytest.mark.slow
def test_static_gallery_beside_the_downloaded_variants(demo: tuple[Path, str]) -> None:
    output, stdout = demo
    page = (output / "gallery.html").read_text()
    assert f"review gallery: {output / 'gallery.html'}" in stdout
    sources = re.findall(r'<section class="[^"]*" data-source="([^"]+)"', page)
    assert sorted(sources) == sorted(f"uploads/{source}" for source in CONFIGS)
    images = re.findall(r'<img loading="lazy" src="([^"]+)"', page)
    assert len(images) == sum(len(expected_sizes(source)) for source in CONFIGS)
    for src in images:  # relative links to the files the demo downloaded
        assert (output / src).is_file(), src
    originals = re.findall(r'<img class="source" loading="lazy" src="file://([^"]+)"', page)
    assert sorted(Path(unquote(path)).name for path in originals) == sorted(Path(source).name for source in CONFIGS)
    assert all(Path(unquote(path)).is_file() for path in originals)  # each source beside its variants


@pytest.mark.slow
def test_logs_are_json_with_correlation_keys_and_moto_is_gone(demo: tuple[Path, str]) -> None:
    output, stdout = demo
    lines = [json.loads(line) for line in (output / "logs.jsonl").read_text().splitlines()]
    logs = [line for line in lines if "level" in line]
    metrics = [line for line in lines if "_aws" in line]
    assert logs and metrics
    done = [line for line in logs if line["message"] == "source done"]
    assert {line["key"] for line in done} == {f"uploads/{source}" for source in CONFIGS}
    for line in done:
        assert line["bucket"] == "reframe-local"
        assert re.fullmatch(r"[0-9a-f]{16}", line["correlation_id"])
        assert line["function_request_id"]
    pid = int(re.search(r"\(pid (\d+)\)", stdout).group(1))  # type: ignore[union-attr]
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.mark.slow
def test_each_source_is_announced_once_on_the_bus_and_by_the_signed_webhook(
    demo: tuple[Path, str], receiver: Receiver
) -> None:
    output, stdout = demo
    notices = [json.loads(line) for line in (output / "notices.jsonl").read_text().splitlines()]
    for notice in notices:
        jsonschema.validate(notice["detail"], NOTICE_SCHEMA)
        assert (notice["source"], notice["detail-type"]) == ("reframe.pipeline", "Reframe Variants Ready")
    details = {notice["detail"]["source"]["key"]: notice["detail"] for notice in notices}
    assert len(notices) == len(details) == len(CONFIGS)
    for source in CONFIGS:
        detail = details[f"uploads/{source}"]
        assert detail["status"] == "completed"
        assert detail["counts"]["created"] == len(expected_sizes(source))
    assert f"notices (EventBridge events, one per outcome): 5 in {output / 'notices.jsonl'}" in stdout
    # The same notices, POSTed to the local receiver and verified with the secret the demo printed.
    posted = receiver.verified(stdout)
    assert sorted(p["data"]["event_id"] for p in posted) == sorted(d["event_id"] for d in details.values())
    assert {p["type"] for p in posted} == {"reframe.variants.ready"}
