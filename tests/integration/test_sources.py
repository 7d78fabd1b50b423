"""Any photo users upload (issue: source preparation) and variants that follow their source."""

from __future__ import annotations

import pillow_heif
from PIL import Image, ImageChops, ImageStat

from reframe_local import servers
from reframe_pipeline.adapters.s3_storage import S3Storage
from reframe_pipeline.application.deadline import Deadline
from reframe_pipeline.composition import build_pipeline
from reframe_pipeline.domain.events import ObjectEvent
from reframe_pipeline.settings import Settings

from .conftest import BUCKET, Stack, s3_event
from .images import encoded, gradient, png_header_only

ONE = {"version": 1, "targets": [{"resolution": "1024x1024"}]}


def centre(image: Image.Image, box: tuple[int, int]) -> Image.Image:
    left, top = (image.width - box[0]) // 2, (image.height - box[1]) // 2
    return image.crop((left, top, left + box[0], top + box[1]))


def difference(a: Image.Image, b: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).mean) / 3


def test_exif_rotated_jpeg_gives_upright_variants(stack: Stack):
    stored = gradient((300, 200))
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90° clockwise
    stack.put("uploads/phone.jpg", encoded(stored, "JPEG", quality=95, exif=exif.tobytes()))
    stack.put("uploads/phone.jpg.reframe.json", ONE)

    stack.invoke(s3_event("uploads/phone.jpg"))

    manifest = stack.read_json("reframed/phone.jpg/manifest.json")
    assert manifest["source"]["prepared"] == {"reasons": ["exif-orientation"]}
    assert stack.stats()["calls"][0]["source_size"] == [200, 300]  # the provider saw it upright
    prepared = stack.image("reframed/phone.jpg/_prepared.png")
    assert prepared.size == (200, 300) and 0x0112 not in prepared.getexif()

    variant = stack.image("reframed/phone.jpg/1024x1024.png")
    upright = stored.transpose(Image.Transpose.ROTATE_270).resize((683, 1024))
    sideways = stored.resize((683, 1024))
    inner = centre(variant, (683, 1024))
    assert difference(inner, upright) < 8
    assert difference(inner, upright) < difference(inner, sideways) / 3


def test_forty_megapixels_are_downscaled_before_the_call(stack: Stack):
    stack.emulator_config(max_source_pixels=4096 * 4096)
    big = gradient((8000, 5000))
    stack.put("uploads/camera.png", encoded(big, "PNG", compress_level=1))
    stack.put("uploads/camera.png.reframe.json", ONE)

    stack.invoke(s3_event("uploads/camera.png"))

    manifest = stack.read_json("reframed/camera.png/manifest.json")
    assert "too-many-pixels" in manifest["source"]["prepared"]["reasons"]
    assert manifest["variants"][0]["status"] == "created"
    stats = stack.stats()
    assert 0 < stats["largest_source_pixels"] <= 4096 * 4096
    prepared = stack.image("reframed/camera.png/_prepared.png")
    assert abs(prepared.width / prepared.height - 1.6) < 0.01  # aspect kept


def test_heic_upload_end_to_end(stack: Stack):
    pillow_heif.register_heif_opener()
    stack.put("uploads/iphone.heic", encoded(gradient((400, 300)), "HEIF"))
    stack.put("uploads/iphone.heic.reframe.json", {"version": 1, "targets": [{"aspect_ratio": "16:9"}]})

    stack.invoke(s3_event("uploads/iphone.heic"))

    manifest = stack.read_json("reframed/iphone.heic/manifest.json")
    assert manifest["source"]["prepared"] == {"reasons": ["format-heic"]}
    assert manifest["variants"][0]["status"] == "created"
    assert stack.image("reframed/iphone.heic/1312x736.png").size == (1312, 736)


def test_decompression_bomb_is_refused_without_decoding(stack: Stack):
    stack.put("uploads/bomb.png", png_header_only(100_000, 100_000))
    stack.put("uploads/bomb.png.reframe.json", ONE)

    result = stack.invoke(s3_event("uploads/bomb.png"))

    assert result["results"][0]["action"] == "invalid"
    manifest = stack.read_json("reframed/bomb.png/manifest.json")
    assert "decompression bomb" in manifest["error"]["message"]
    assert "10000 megapixels" in manifest["error"]["message"]
    assert stack.stats()["requests"] == 0


def test_overwrite_regenerates_and_delete_removes_everything(stack: Stack):
    stack.put_image("uploads/hero.jpg", "rocket.jpg")
    stack.put(
        "uploads/hero.jpg.reframe.json", {"version": 1, "targets": [{"resolution": "1024x1024"}, {"size": "64x64"}]}
    )
    stack.invoke(s3_event("uploads/hero.jpg"))
    first_etag = stack.read_json("reframed/hero.jpg/manifest.json")["source"]["etag"]

    stack.put_image("uploads/hero.jpg", "chelsea.png")  # same key, new content
    stack.invoke(s3_event("uploads/hero.jpg"))

    manifest = stack.read_json("reframed/hero.jpg/manifest.json")
    assert manifest["source"]["etag"] != first_etag
    assert [v["status"] for v in manifest["variants"]] == ["created", "created"]
    # 64x64 is square too: both targets are rendered from one generation per source version.
    assert [v["rendered_from_generation"] for v in manifest["variants"]] == [False, True]
    assert stack.stats()["billed"] == 2
    head = stack.s3.head_object(Bucket=BUCKET, Key="reframed/hero.jpg/1024x1024.png")
    assert head["Metadata"]["source-etag"] == manifest["source"]["etag"]

    stack.s3.delete_object(Bucket=BUCKET, Key="uploads/hero.jpg")
    result = stack.invoke(s3_event("uploads/hero.jpg", "ObjectRemoved:Delete"))
    assert result["results"][0]["action"] == "removed"
    assert stack.keys("reframed/hero.jpg/") == []


def test_prune_removes_variants_of_targets_gone_from_the_config(stack: Stack):
    stack.put_image("uploads/p.jpg")
    stack.put(
        "uploads/p.jpg.reframe.json", {"version": 1, "prune": True, "targets": [{"size": "64x64"}, {"size": "96x64"}]}
    )
    stack.invoke(s3_event("uploads/p.jpg"))
    assert stack.outputs("reframed/p.jpg/") == [
        "reframed/p.jpg/64x64.png",
        "reframed/p.jpg/96x64.png",
        "reframed/p.jpg/manifest.json",
    ]
    kept = stack.s3.head_object(Bucket=BUCKET, Key="reframed/p.jpg/64x64.png")["Metadata"]["generation"]
    assert len(stack.keys("reframed/p.jpg/_generation-")) == 2

    stack.put("uploads/p.jpg.reframe.json", {"version": 1, "prune": True, "targets": [{"size": "64x64"}]})
    stack.invoke(s3_event("uploads/p.jpg.reframe.json"))
    assert stack.outputs("reframed/p.jpg/") == ["reframed/p.jpg/64x64.png", "reframed/p.jpg/manifest.json"]
    assert stack.keys("reframed/p.jpg/_generation-") == [f"reframed/p.jpg/_generation-{kept}.png"]
    assert stack.stats()["billed"] == 2  # the kept variant was not paid again


def test_square_only_provider_with_padding(stack: Stack):
    stack.emulator_config(square_only=True)
    stack.put_image("uploads/wide.jpg")  # 640x427
    stack.put("uploads/wide.jpg.reframe.json", ONE)

    stack.invoke(s3_event("uploads/wide.jpg"))
    refused = stack.read_json("reframed/wide.jpg/manifest.json")["variants"][0]
    assert refused["status"] == "failed" and refused["error"]["code"] == "http_400"

    stack.configure(SQUARE_SOURCE="pad")
    stack.invoke(s3_event("uploads/wide.jpg"))
    manifest = stack.read_json("reframed/wide.jpg/manifest.json")
    assert manifest["source"]["prepared"] == {"reasons": ["not-square"]}
    assert manifest["variants"][0]["status"] == "created"
    assert stack.image("reframed/wide.jpg/_prepared.png").size == (640, 640)


def test_fast_path_reads_only_the_header(stack: Stack, aws_env: str):
    stack.configure(SOURCE_CHECK="off")  # the source check reads the source once: see test_source_check.py
    noisy = Image.effect_noise((2000, 1500), 60).convert("RGB")
    body = encoded(noisy, "JPEG", quality=95)
    assert len(body) > 1_000_000
    stack.put("uploads/big.jpg", body)
    stack.put("uploads/big.jpg.reframe.json", ONE)
    storage = S3Storage(BUCKET, servers.client("s3", aws_env))
    settings = Settings.from_env()
    pipeline = build_pipeline(settings, lambda bucket: storage)

    outcome = pipeline.handle(ObjectEvent(BUCKET, "uploads/big.jpg", "created"), Deadline())

    assert outcome.records[0].status == "created"
    assert storage.bytes_read <= 64 * 1024 + 1024  # the header, and the small sidecar
    assert stack.stats()["largest_source_bytes"] == len(body)  # the provider fetched it whole


def test_prepared_copy_is_remade_when_what_it_needs_changes(stack: Stack):
    stored = gradient((300, 200))
    exif = Image.Exif()
    exif[0x0112] = 6
    stack.put("uploads/turn.jpg", encoded(stored, "JPEG", quality=95, exif=exif.tobytes()))
    stack.put("uploads/turn.jpg.reframe.json", ONE)
    stack.invoke(s3_event("uploads/turn.jpg"))
    assert stack.image("reframed/turn.jpg/_prepared.png").size == (200, 300)  # upright only

    stack.configure(SQUARE_SOURCE="pad")
    stack.put(
        "uploads/turn.jpg.reframe.json",
        {"version": 1, "targets": [{"resolution": "1024x1024"}, {"aspect_ratio": "16:9"}]},
    )
    stack.invoke(s3_event("uploads/turn.jpg.reframe.json"))

    assert stack.image("reframed/turn.jpg/_prepared.png").size == (300, 300)  # upright and padded
    generations = [call for call in stack.stats()["calls"] if call["resolution"]]  # not the async API's polls
    assert generations[-1]["source_size"] == [300, 300]
    manifest = stack.read_json("reframed/turn.jpg/manifest.json")
    assert manifest["source"]["prepared"] == {"reasons": ["exif-orientation", "not-square"]}
