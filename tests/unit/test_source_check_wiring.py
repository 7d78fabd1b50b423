"""SOURCE_CHECK over the pipeline: each generation is looked at once, a variant whose source did not survive is
flagged (warn) or generated once more with a new seed (retry), and every attempt is paid and counted."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from PIL import Image, ImageDraw

from reframe_pipeline.application import generation_checks
from reframe_pipeline.application.object_metadata import META_SOURCE_BOX, META_SOURCE_MATCH
from reframe_pipeline.domain.errors import ProviderTransientError
from reframe_pipeline.domain.local_engine import extend_canvas, fitted_box
from reframe_pipeline.domain.resolutions import Size
from reframe_pipeline.settings import Settings, SettingsError
from tests.unit.fakes import FakeProvider, MemoryBudget
from tests.unit.images import saved
from tests.unit.orchestration_harness import OUT, PRICE, SOURCE, TARGETS, Harness
from tests.unit.test_source_check import scene
from tests.waiting import wait_until

PICTURE = scene((300, 200))


def faithful(size: Size) -> bytes:
    return saved(extend_canvas(PICTURE, size), "PNG")


def repainted(size: Size) -> bytes:
    canvas = extend_canvas(PICTURE, size)
    x, y, w, h = fitted_box(Size(300, 200), size)
    ImageDraw.Draw(canvas).rectangle((x + w * 0.2, y + h * 0.2, x + w * 0.8, y + h * 0.8), fill=(128, 128, 128))
    return saved(canvas, "PNG")


def answers(*makers: Callable[[Size], bytes]) -> Callable[[Size], bytes]:
    """The provider's answers in turn, the last one repeated."""
    turn = itertools.chain(makers, itertools.repeat(makers[-1]))

    def answer(size: Size) -> bytes:
        return next(turn)(size)

    return answer


@pytest.fixture
def make() -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def build(**options: Any) -> Harness:
        made.append(Harness(**options))
        made[-1].upload(body=saved(PICTURE, "PNG"))
        return made[-1]

    yield build
    for harness in made:
        harness.close()


def test_a_faithful_generation_scores_about_one_with_the_box_where_the_source_is(make: Any, counted: list[str]):
    h = make(provider=FakeProvider(image=faithful))
    h.sidecar(targets=TARGETS[:1])
    (record,) = h.handle().records
    assert record.source_match is not None and record.source_match > 0.95
    x, y, w, hh = fitted_box(Size(300, 200), Size(1536, 512))
    box = record.source_box
    assert box is not None
    assert max(abs(box.x - x), abs(box.y - y), abs(box.width - w), abs(box.height - hh)) <= 8
    assert record.warnings == []
    assert "SourceAltered" not in counted
    entry = h.manifest()["variants"][0]
    assert entry["source_match"] == record.source_match and set(entry["source_box"]) == {"x", "y", "width", "height"}


def test_warn_keeps_a_repainted_variant_and_flags_it(make: Any, counted: list[str]):
    h = make(provider=FakeProvider(image=repainted))
    h.sidecar(targets=TARGETS[:1])
    (record,) = h.handle().records
    assert record.status == "created" and record.key in h.storage.keys(OUT)
    assert record.source_match is not None and record.source_match < 0.85
    assert record.warnings == ["source_altered"]
    assert counted.count("SourceAltered") == 1
    assert h.provider.calls == 1 and record.cost_usd == pytest.approx(PRICE)
    assert h.manifest()["variants"][0]["warnings"] == ["source_altered"]


def test_a_flagged_variant_found_existing_keeps_its_warning(make: Any, counted: list[str]):
    """The warning travels in the variant's metadata: the next run, paying nothing, lists it again."""
    h = make(provider=FakeProvider(image=repainted))
    h.sidecar(targets=TARGETS[:1])
    (first,) = h.handle().records
    assert first.key is not None and h.storage.head(first.key).metadata["warnings"] == "source_altered"

    (again,) = h.handle().records

    assert (again.status, again.warnings) == ("existing", ["source_altered"])
    assert h.manifest()["variants"][0]["warnings"] == ["source_altered"]
    assert h.provider.calls == 1 and counted.count("SourceAltered") == 1  # flagged once, when it was made


def test_retry_generates_once_more_with_a_new_seed_and_keeps_the_better(make: Any, counted: list[str]):
    budget = MemoryBudget(limit=10.0)
    h = make(provider=FakeProvider(image=answers(repainted, faithful)), source_check="retry", budget=budget)
    h.sidecar(targets=TARGETS[:1], seed=4242)
    (record,) = h.handle().records
    first, second = h.provider.requests
    assert first.params.seed == 4242 and second.params.seed not in (None, 4242)
    assert record.seed == second.params.seed  # the kept result's seed, so it can be made again
    assert record.source_match is not None and record.source_match > 0.95 and record.warnings == []
    assert record.cost_usd == pytest.approx(2 * PRICE) and record.attempts == 2  # both paid, both counted
    assert budget.spent == pytest.approx(2 * PRICE)
    assert counted.count("SourceCheckRetries") == 1 and "SourceAltered" not in counted


def test_retry_keeps_the_first_when_the_second_is_no_better_and_flags_it(make: Any, counted: list[str]):
    h = make(
        provider=FakeProvider(image=answers(repainted, lambda size: saved(Image.new("RGB", tuple(size)), "PNG"))),
        source_check="retry",
    )
    h.sidecar(targets=TARGETS[:1])
    (record,) = h.handle().records
    assert h.provider.calls == 2
    assert record.seed == 4242  # the first generation's
    assert record.warnings == ["source_altered"] and record.cost_usd == pytest.approx(2 * PRICE)
    assert h.storage.body(record.key) is not None


def test_a_failed_retry_keeps_the_first_result(make: Any):
    provider = FakeProvider([None, ProviderTransientError("busy")], image=repainted)
    h = make(provider=provider, source_check="retry", max_attempts=1)
    h.sidecar(targets=TARGETS[:1])
    (record,) = h.handle().records
    assert record.status == "created" and record.warnings == ["source_altered"]


def test_renditions_of_one_generation_are_checked_once_and_a_later_run_reads_the_check_from_it(
    make: Any, monkeypatch: pytest.MonkeyPatch
):
    looks: list[int] = []
    real = generation_checks.look_for_source
    monkeypatch.setattr(
        generation_checks, "look_for_source", lambda source, body: looks.append(1) or real(source, body)
    )
    h = make(provider=FakeProvider(image=faithful), max_parallel_calls=1)
    h.sidecar(targets=[{"size": "1000x500", "name": "wide"}, {"size": "2000x1000", "name": "wider"}])
    records = h.handle().records
    assert h.provider.calls == 1 and len(looks) == 1
    assert records[0].source_match == records[1].source_match is not None
    generation = next(k for k in h.storage.keys(OUT) if "_generation-" in k)
    assert {META_SOURCE_MATCH, META_SOURCE_BOX} <= set(h.storage.head(generation).metadata)

    h.sidecar(targets=[{"size": "1200x600", "name": "wide"}])  # a new rendition of the kept generation
    again, wider = h.handle().records
    assert (wider.name, wider.status) == ("wider", "unconfigured")  # its file stays, listed, until pruned
    assert again.rendered_from_generation and again.source_match == records[0].source_match
    assert len(looks) == 1


def test_off_looks_at_nothing(make: Any):
    h = make(provider=FakeProvider(image=repainted), source_check="off")
    h.sidecar(targets=TARGETS[:1])
    (record,) = h.handle().records
    assert record.source_match is None and record.source_box is None and record.warnings == []


def test_the_settings_are_validated():
    assert Settings.from_env({}).source_check == "warn"
    assert Settings.from_env({"SOURCE_CHECK": "RETRY"}).source_check == "retry"
    assert Settings.from_env({"SOURCE_MATCH_MIN": "0.7"}).source_match_min == 0.7
    with pytest.raises(SettingsError, match="SOURCE_CHECK"):
        Settings.from_env({"SOURCE_CHECK": "strict"})
    with pytest.raises(SettingsError, match="SOURCE_MATCH_MIN"):
        Settings.from_env({"SOURCE_MATCH_MIN": "1.5"})


def test_the_sources_thumbnail_is_made_once_and_reuses_bytes_a_provider_loaded():
    from reframe_pipeline.application.source_image import SourceImage

    reads: list[int] = []
    body = saved(scene((2400, 1600)), "JPEG", quality=90)

    def loader() -> bytes:
        reads.append(1)
        return body

    fresh = SourceImage("unused", loader)
    first = fresh.thumbnail()
    assert fresh.thumbnail() is first and len(reads) == 1
    assert max(first.size) == 128 and first.mode == "L"
    loaded = SourceImage("unused", loader)
    loaded.load()
    loaded.thumbnail()
    assert len(reads) == 2  # the provider's load, and no other


def test_the_sources_thumbnail_is_made_while_the_provider_works(make: Any, counted: list[str]) -> None:
    def during(_: Any) -> None:  # mid-call: the source has been read whole (for its thumbnail) meanwhile
        wait_until(lambda: (SOURCE, None) in h.storage.reads, 5, "the source read for its thumbnail")

    h = make(provider=FakeProvider(image=faithful, during=during))
    h.sidecar(targets=TARGETS[:2])
    records = h.handle().records
    assert [r.status for r in records] == ["created", "created"]
    assert all(r.source_match is not None and r.source_match > 0.95 for r in records)
    assert [key for key, length in h.storage.reads if length is None].count(SOURCE) == 1  # once for every variant


def test_a_rendition_of_a_kept_generation_does_not_read_the_source(make: Any, counted: list[str]) -> None:
    h = make(provider=FakeProvider(image=faithful))
    h.sidecar(targets=TARGETS[:1])
    h.handle()
    h.sidecar(targets=TARGETS[:1], output={"format": "jpeg"})  # re-rendered from the kept generation, its check kept
    h.storage.reads.clear()
    (record,) = h.handle().records
    assert record.rendered_from_generation and record.source_match is not None and record.source_match > 0.95
    assert (SOURCE, None) not in h.storage.reads
