"""Producing one variant: provider call, exact-size crop, format conversion, verification, upload."""

from __future__ import annotations

import hashlib
import io
import random
import threading
import time
from dataclasses import dataclass, replace
from time import perf_counter
from typing import Any, Literal, NamedTuple
from urllib.parse import quote

from PIL import Image

from reframe_pipeline.application.generations import LONGEST_NAME, META_GENERATION, META_SEED, Generations
from reframe_pipeline.application.ports import (
    Budget,
    ContentSigner,
    Deadline,
    FreeMeter,
    GenerationParams,
    Journal,
    ObjectInfo,
    ParentImage,
    ReframeProvider,
    ReframeRequest,
    ReframeResult,
    Refund,
    SourceImage,
    Storage,
    Ticket,
)
from reframe_pipeline.domain.cropping import Box, crop_for
from reframe_pipeline.domain.errors import (
    AccountError,
    BudgetExceededError,
    DeadlineError,
    OutputLimitError,
    PermanentError,
    ProviderError,
    SourceChangedError,
    VariantInProgressError,
)
from reframe_pipeline.domain.imaging import (
    FORMATS,
    XMP_INSERTABLE,
    ImageCheckError,
    encode,
    fit_exact,
    insert_xmp,
    sniff,
    verify,
)
from reframe_pipeline.domain.manifest import SOURCE_ALTERED, SOURCE_CROPPED, SourceBox, VariantRecord
from reframe_pipeline.domain.planning import PlannedVariant
from reframe_pipeline.domain.pricing import PriceTable, estimate
from reframe_pipeline.domain.provenance import Provenance, provenance_for, xmp_packet
from reframe_pipeline.domain.resolutions import Size
from reframe_pipeline.domain.source_check import check
from reframe_pipeline.observability import MetricUnit, count, logger, measure, traced

META_SOURCE_KEY = "source-key"
META_SOURCE_ETAG = "source-etag"
META_PARAMS = "params-hash"
# Present on a variant signed with C2PA Content Credentials: an `existing` variant's manifest entry says so too.
META_CREDENTIALS = "content-credentials"
# Present on a variant made by the fallback provider (its name): never current, so a later run tries the provider.
META_FALLBACK = "fallback"
# On a kept generation: its source check, so a later run's renditions of it need not look again.
META_SOURCE_MATCH = "source-match"
META_SOURCE_BOX = "source-box"
# On a flagged variant: its warnings (comma-separated), so a later run that finds it existing lists them too.
META_WARNINGS = "warnings"
_ALL_WARNINGS = (SOURCE_ALTERED, SOURCE_CROPPED)  # the longest metadata the warnings can take
_LONGEST_CHECK = {META_SOURCE_MATCH: "0.0000", META_SOURCE_BOX: "99999,99999,99999,99999"}
OUTPUT_EXTENSIONS = tuple(sorted({spec.ext for spec in FORMATS.values()} | {"jpeg"}))
# S3's own limits: a write over them fails after the provider was paid, so they are checked before.
MAX_KEY_BYTES = 1024
MAX_METADATA_BYTES = 2048
_LONGEST_SUFFIX = max(len(f".{ext}") for ext in OUTPUT_EXTENSIONS)
_LARGEST_SEED = 2**31 - 1  # the providers' seeds are 32-bit: the longest metadata a seed can take


def source_key_tag(key: str) -> str:
    """The source key as S3 metadata (ASCII only, 2 KB for all of it): percent-encoded when short, else
    its SHA-256 (a 240-character CJK key percent-encodes to over 2 KB)."""
    quoted = quote(key)
    return quoted if len(quoted) <= 512 else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def check_output_limits(key: str, metadata: dict[str, str]) -> None:
    """Refuse an output that S3 would refuse, before anything is paid for it."""
    key_bytes = len(key.encode())
    if key_bytes > MAX_KEY_BYTES:
        raise OutputLimitError(
            f"the output key would be {key_bytes} bytes, over S3's limit of {MAX_KEY_BYTES}: "
            "shorten the source key or the target name"
        )
    meta_bytes = sum(len(name.encode()) + len(value.encode()) for name, value in metadata.items())
    if meta_bytes > MAX_METADATA_BYTES:
        raise OutputLimitError(f"the output's metadata would be {meta_bytes} bytes, over S3's limit of 2 KB")


def variant_metadata(
    origin: ObjectInfo,
    param_hash: str,
    gen_id: str,
    seed: int | None,
    signed: bool = False,
    warnings: tuple[str, ...] = (),
) -> dict[str, str]:
    """What a variant says of itself: its source version, parameters, generation, the seed used (so a
    variant people liked can be generated again), whether it carries Content Credentials and its warnings."""
    return {
        META_SOURCE_KEY: source_key_tag(origin.key),
        META_SOURCE_ETAG: origin.etag,
        META_PARAMS: param_hash,
        META_GENERATION: gen_id,
        **({META_SEED: str(seed)} if seed is not None else {}),
        **({META_CREDENTIALS: "c2pa"} if signed else {}),
        **({META_WARNINGS: ",".join(warnings)} if warnings else {}),
    }


def warnings_of(head: ObjectInfo) -> list[str]:
    """The warnings a variant was written with (its metadata)."""
    return [warning for warning in head.metadata.get(META_WARNINGS, "").split(",") if warning]


def is_signed(head: ObjectInfo) -> bool:
    return head.metadata.get(META_CREDENTIALS) == "c2pa"


def generation_metadata(origin: ObjectInfo, variant: PlannedVariant, provider: str) -> dict[str, str]:
    """What a kept generation says of itself: its source version and what the provider was asked."""
    return {
        META_SOURCE_KEY: source_key_tag(origin.key),
        META_SOURCE_ETAG: origin.etag,
        META_PARAMS: variant.generation_hash,
        "provider": provider,
        "resolution": str(variant.resolution),
        "rendering-speed": variant.rendering_speed,
    }


def is_current(head: ObjectInfo | None, origin: ObjectInfo, param_hash: str, *, fallback_ok: bool = False) -> bool:
    """An output made from this version of the source with these parameters (nothing to pay). A fallback
    variant is not, unless ``fallback_ok``: the provider is owed another try (a run, ``--retry-fallbacks``)."""
    return (
        head is not None
        and head.metadata.get(META_SOURCE_ETAG) == origin.etag
        and head.metadata.get(META_PARAMS) == param_hash
        and (fallback_ok or META_FALLBACK not in head.metadata)
    )


def is_fallback(head: ObjectInfo) -> bool:
    return META_FALLBACK in head.metadata


# Failures that are not the provider failing to make this variant: the work is not this run's to finish
# (the source changed, another invocation holds it), or a fallback would fail the same way (S3's limits),
# or the provider is still at it (a deadline, a job pending: collected on the redelivery).
_NO_FALLBACK = (SourceChangedError, OutputLimitError, DeadlineError, VariantInProgressError)


def falls_back(exc: Exception) -> bool:
    """The provider failed for this variant in this run and will not make it now: refused it (unsafe, 4xx,
    the wrong size twice), the budget refused it, the account is wrong, or its retries are used up."""
    if isinstance(exc, _NO_FALLBACK):
        return False
    return isinstance(exc, ProviderError | BudgetExceededError | AccountError)


@dataclass(frozen=True)
class VariantJob:
    storage: Storage
    origin: ObjectInfo  # the uploaded object (the source sent may be a prepared copy of it)
    source: SourceImage
    out_dir: str
    variant: PlannedVariant
    deadline: Deadline
    generations: Generations  # the source's kept generations in this run
    gen_id: str  # the generation this variant is rendered from (generation_id)
    work_id: str  # the generation's identity in the journal: what is paid for
    previous_generation: str | None = None  # the generation of the rendition this one replaces

    def key(self, ext: str) -> str:
        return f"{self.out_dir}{self.variant.name}.{ext}"


@dataclass(frozen=True)
class SourceCheckPolicy:
    """SOURCE_CHECK and SOURCE_MATCH_MIN: look at each generation or not; below ``minimum``, flag the variant
    (``warn``) or generate it once more with a new seed and keep the better of the two (``retry``)."""

    mode: Literal["off", "warn", "retry"] = "warn"
    minimum: float = 0.85


@dataclass(frozen=True)
class SourceFound:
    """A generation's source check: its score and the source's box in the generation's pixels."""

    score: float
    box: SourceBox

    def metadata(self) -> dict[str, str]:
        b = self.box
        return {META_SOURCE_MATCH: f"{self.score:.4f}", META_SOURCE_BOX: f"{b.x},{b.y},{b.width},{b.height}"}

    @classmethod
    def from_metadata(cls, metadata: dict[str, str]) -> SourceFound | None:
        try:
            x, y, w, h = (int(part) for part in metadata[META_SOURCE_BOX].split(","))
            return cls(float(metadata[META_SOURCE_MATCH]), SourceBox(x=x, y=y, width=w, height=h))
        except (KeyError, ValueError):
            return None


def look_for_source(source: SourceImage, body: bytes) -> SourceFound:
    """Locate the source in a generation's bytes and score it (the source's thumbnail is made once per run)."""
    started = perf_counter()
    with traced("source check"), Image.open(io.BytesIO(body)) as image:
        image.draft("L", (image.width // 4, image.height // 4))  # a JPEG decodes at a quarter: plenty here
        scale_x, scale_y = 1.0, 1.0
        full = image.size
        image.load()
        if image.size != full:  # draft decoded it smaller: boxes are reported in the generation's own pixels
            scale_x, scale_y = full[0] / image.width, full[1] / image.height
        found = check(source.thumbnail(), image)
    measure("SourceCheckTime", (perf_counter() - started) * 1000, MetricUnit.Milliseconds)
    b = found.box
    box = SourceBox(
        x=round(b.x * scale_x), y=round(b.y * scale_y), width=round(b.width * scale_x), height=round(b.height * scale_y)
    )
    return SourceFound(round(found.score, 4), box)


@dataclass(frozen=True)
class _Made:
    result: ReframeResult
    key: str
    size: int
    latency_ms: int
    resumed: bool
    rerendered: bool  # rendered from a kept generation: nothing paid
    generation_key: str | None
    signed: bool
    note: str | None = None
    found: SourceFound | None = None  # the source check of the generation (None: off, or it failed)
    seed: int | None = None  # the seed of a retried generation (SOURCE_CHECK=retry), the sidecar's notwithstanding
    warnings: tuple[str, ...] = ()  # as written in the variant's metadata


class VariantMeter:
    """One variant's money and progress: each paid attempt reserved on its day, refunds for attempts
    that provably cost nothing, and the provider's ticket journaled before waiting for the result."""

    def __init__(self, budget: Budget, cost: float, journal: Journal, work_id: str) -> None:
        self._budget = budget
        self._cost = cost
        self._journal = journal
        self._work_id = work_id
        self._lock = threading.Lock()
        self.spent = 0.0
        self.paid_attempts = 0

    def charge(self) -> Refund:
        reservation = self._budget.reserve(self._cost)
        with self._lock:
            self.spent += self._cost
            self.paid_attempts += 1

        def refund() -> None:
            self._budget.refund(reservation)
            with self._lock:
                self.spent -= self._cost

        return refund

    def submitted(self, ticket: Ticket | None) -> None:
        self._journal.hold(self._work_id, ticket)


def _seed(variant: PlannedVariant, result: ReframeResult) -> int | None:
    """The sidecar's seed, or the one the provider says it used."""
    return variant.seed if variant.seed is not None else result.seed


def _check_source(job: VariantJob) -> None:
    """A source overwritten or deleted while the provider worked wins: this result describes a version
    that is gone, and must not replace (or outlive) what the newer event makes."""
    current = job.storage.head(job.origin.key)
    if current is None or current.etag != job.origin.etag:
        raise SourceChangedError("the source was overwritten or deleted meanwhile: result not written")


class Finished(NamedTuple):
    body: bytes
    fmt: str  # a FORMATS key
    source_cropped: bool  # the exact-size crop had to cut into the source's box


def finish_image(body: bytes, variant: PlannedVariant, xmp: bytes, source_box: Box | None = None) -> Finished:
    """Crop to exact sizes (toward the target's focus, around ``source_box`` when known) and convert
    formats only when asked, and mark with ``xmp``: inserted into a JPEG or PNG kept as it is (pixels
    untouched), encoded with the image otherwise."""
    fmt = sniff(body[:32]) or "png"
    target = fmt if variant.output.format == "original" else variant.output.format
    if not variant.needs_crop and target == fmt and fmt in XMP_INSERTABLE:
        return Finished(insert_xmp(body, fmt, xmp), fmt, False)
    cropped = False
    with Image.open(io.BytesIO(body)) as image:
        icc = image.info.get("icc_profile")
        if not variant.needs_crop:
            result = image.copy()
        elif variant.focus == "center" and source_box is None:
            result = fit_exact(image, variant.final_size)
        else:
            crop = crop_for(Size(*image.size), variant.final_size, variant.focus, source_box)
            result, cropped = fit_exact(image, variant.final_size, crop.window), crop.source_cropped
    return Finished(encode(result, target, variant.output.quality, icc, xmp), target, cropped)


class VariantProducer:
    def __init__(
        self,
        provider: ReframeProvider,
        prices: PriceTable,
        presign_expiry_s: int,
        min_remaining_ms: int,
        budget: Budget,
        journal: Journal,
        signer: ContentSigner | None = None,
        fallback: ReframeProvider | None = None,
        source_check: SourceCheckPolicy | None = None,
    ) -> None:
        self.provider = provider
        self.source_check = source_check or SourceCheckPolicy(mode="off")
        self.provenance = provenance_for(provider.name)
        self.fallback = fallback  # None: FALLBACK_PROVIDER=none
        self.fallback_provenance = provenance_for(fallback.name) if fallback else None
        self.signer = signer  # None: C2PA_SIGNING=off
        self.budget = budget
        self.journal = journal
        self.prices = prices
        self.presign_expiry_s = presign_expiry_s
        self.min_remaining_ms = min_remaining_ms

    def _params(self, job: VariantJob) -> GenerationParams:
        v = job.variant
        urls = tuple(
            ref if ref.startswith("https://") else job.storage.presign_get(ref, self.presign_expiry_s)
            for ref in v.style_references
        )
        return GenerationParams(
            rendering_speed=v.rendering_speed,
            seed=v.seed,
            style_codes=v.style_codes,
            style_reference_urls=urls,
            color_palette=v.color_palette,
        )

    def _write(
        self,
        job: VariantJob,
        result: ReframeResult,
        provenance: Provenance | None = None,
        fallback: str | None = None,
        seed: int | None = None,
        found: SourceFound | None = None,
    ) -> tuple[str, int, bool, tuple[str, ...]]:
        """Finish (an exact-size crop around the source's box when the check ``found`` it), mark, sign, check
        and store the variant; ``fallback`` names the fallback provider that made it. Returns the key, the
        size, whether it is signed and its warnings (kept in its metadata too)."""
        v = job.variant
        provenance = provenance or self.provenance
        box = Box(found.box.x, found.box.y, found.box.width, found.box.height) if found else None
        body, fmt, cropped = finish_image(result.body, v, xmp_packet(provenance, job.source.credits), box)
        warnings = self._warnings(found, cropped)
        _check_source(job)  # before signing, which reads the source as the variant's parent
        signed = self._signed(job, body, fmt, provenance)
        body = signed or body
        try:  # every output is changed by its marking at least: checked again
            verify(body, v.final_size)
        except ImageCheckError as exc:  # our own output: a bug, not the user's input
            raise PermanentError(f"output check failed: {exc}", code="output_check") from None
        key = job.key(FORMATS[fmt].ext)
        with traced("upload"):
            metadata = variant_metadata(
                job.origin, v.param_hash, job.gen_id, seed or _seed(v, result), signed is not None, warnings
            )
            if fallback:  # not rendered from the provider's generation, and not current for a later run
                del metadata[META_GENERATION]
                metadata[META_FALLBACK] = fallback
            job.storage.write(key, body, FORMATS[fmt].mime, metadata)
        return key, len(body), signed is not None, warnings

    def _warnings(self, found: SourceFound | None, cropped: bool) -> tuple[str, ...]:
        """The source looks altered (its check scored below SOURCE_MATCH_MIN); the crop cut into it."""
        altered = found is not None and found.score < self.source_check.minimum
        return tuple(w for w, flagged in ((SOURCE_ALTERED, altered), (SOURCE_CROPPED, cropped)) if flagged)

    def _signed(self, job: VariantJob, body: bytes, fmt: str, provenance: Provenance) -> bytes | None:
        """``body`` with Content Credentials, after its XMP (the signature binds every byte); None when signing
        is off or failed."""
        if self.signer is None:
            return None
        parent = ParentImage(title=job.origin.key.rsplit("/", 1)[-1], load=job.source.load)
        with traced("sign"):
            return self.signer.sign(body, FORMATS[fmt].mime, parent, provenance)

    def produce(self, job: VariantJob) -> VariantRecord:
        """Call the provider (or collect a generation paid for earlier) and write the checked result;
        never raises (failures become records)."""
        v = job.variant
        base = {
            "resolution": str(v.resolution),
            "provider": self.provider.name,
            "seed": v.seed,
            "param_hash": v.param_hash,
            "rendering_speed": v.rendering_speed,
        }
        if job.deadline.remaining_ms() < self.min_remaining_ms:
            count("VariantsDeferred")
            return self._failed(
                v, DeadlineError("not started: too little time left in this invocation"), base, time.monotonic()
            )
        cost = estimate(self.prices, self.provider.name, v.rendering_speed)
        meter = VariantMeter(self.budget, cost, self.journal, job.work_id)
        started = time.monotonic()
        try:
            made = self._make(job, meter, started)
        except Exception as exc:
            fields = {**base, "cost_usd": meter.spent, "attempts": meter.paid_attempts}
            rescued = self._fall_back(job, exc, fields, started) if self.fallback and falls_back(exc) else None
            return rescued or self._failed(v, exc, fields, started)
        finally:
            measure("EstimatedCostUSD", meter.spent, MetricUnit.NoUnit)
        return self._created(job, made, meter, cost, base)

    def _created(
        self, job: VariantJob, made: _Made, meter: VariantMeter, cost: float, base: dict[str, Any]
    ) -> VariantRecord:
        v = job.variant
        # A generation collected from an earlier attempt's ticket was paid for then; a kept one, earlier still.
        cost_usd = meter.spent + (cost if made.resumed and meter.paid_attempts == 0 else 0.0)
        count("VariantsCreated")
        found = made.found
        if found is not None and SOURCE_ALTERED in made.warnings:
            count("SourceAltered")
            logger.warning(
                "the source looks altered in the generated variant",
                extra={"variant_key": made.key, "source_match": found.score, "minimum": self.source_check.minimum},
            )
        if made.rerendered:
            count("VariantsRerendered")
        measure("BytesWritten", made.size, MetricUnit.Bytes)
        logger.info(
            "variant created",
            extra={
                "variant_key": made.key,
                "latency_ms": made.latency_ms,
                "attempts": meter.paid_attempts,
                "resumed": made.resumed,
                "rendered_from_generation": made.rerendered,
                "cost_usd": cost_usd,
                **made.result.provider_meta,
            },
        )
        return VariantRecord(
            name=v.name,
            key=made.key,
            status="created",
            width=v.final_size.width,
            height=v.final_size.height,
            cost_usd=cost_usd,
            latency_ms=made.latency_ms,
            attempts=meter.paid_attempts,
            provenance=self.provenance.model_copy(update={"signed": made.signed}),
            generation=job.gen_id,
            generation_key=made.generation_key,
            rendered_from_generation=made.rerendered,
            note=made.note,
            source_match=found.score if found else None,
            source_box=found.box if found else None,
            warnings=list(made.warnings),
            **{**base, "seed": made.seed or _seed(v, made.result)},
        )

    def _make(self, job: VariantJob, meter: VariantMeter, started: float) -> _Made:
        """The steps of a variant's life after its reservation: submitted, generated (or found kept),
        written. Renditions of one generation take turns, so the first pays and the others render."""
        v = job.variant
        gen_metadata = generation_metadata(job.origin, v, self.provider.name)
        longest_key = job.key("x" * (_LONGEST_SUFFIX - 1))
        signing = self.signer is not None
        longest = variant_metadata(job.origin, v.param_hash, job.gen_id, _LARGEST_SEED, signing, _ALL_WARNINGS)
        check_output_limits(longest_key, longest)
        checking = self.source_check.mode != "off"
        check_output_limits(job.out_dir + LONGEST_NAME, {**gen_metadata, **(_LONGEST_CHECK if checking else {})})
        found: SourceFound | None = None
        retry_seed: int | None = None
        with job.generations.exclusive(job.gen_id):
            kept = job.generations.load(job.gen_id)
            resume = None
            if kept is None:
                resume = self.journal.load(job.work_id)
                result = self._generate(job, meter, resume, self._params(job))
                latency_ms = int((time.monotonic() - started) * 1000)  # the provider's time, not the check's
                found = self._look(job, result) if checking else None
                if found is not None and found.score < self.source_check.minimum and self.source_check.mode == "retry":
                    result, found, retry_seed = self._retry(job, meter, result, found)
                checked = found.metadata() if found else {}
                generation_key = job.generations.store(job.gen_id, result, {**gen_metadata, **checked})
                job.generations.checks[job.gen_id] = (found, retry_seed)
            else:
                result, generation_key = kept
                latency_ms = int((time.monotonic() - started) * 1000)
                if checking:
                    found, retry_seed = job.generations.checks.get(job.gen_id, (None, None))
                    if found is None:  # kept by an earlier run: its check travels in its metadata
                        found = SourceFound.from_metadata(job.generations.metadata(job.gen_id))
                    if found is None:
                        found = self._look(job, result)
                        job.generations.checks[job.gen_id] = (found, retry_seed)
        if kept is None:
            measure("ProviderLatency", latency_ms, MetricUnit.Milliseconds)
        key, size, signed, warnings = self._write(job, result, seed=retry_seed, found=found)
        self.journal.advance(job.work_id, "written")
        note = None
        if kept is None and job.previous_generation == job.gen_id:
            again = (
                "collected again from the provider" if meter.paid_attempts == 0 else "generated (and paid for) again"
            )
            note = f"its kept generation had expired or was deleted: {again}"
        return _Made(
            result,
            key,
            size,
            latency_ms,
            resume is not None,
            kept is not None,
            generation_key,
            signed,
            note,
            found,
            retry_seed,
            warnings,
        )

    def _generate(
        self, job: VariantJob, meter: VariantMeter, resume: Ticket | None, params: GenerationParams
    ) -> ReframeResult:
        request = ReframeRequest(job.source, job.variant.resolution, params, job.deadline, meter, resume)
        with traced("provider call"):
            result = self.provider.reframe(request)
        self.journal.advance(job.work_id, "generated")
        _check_source(job)
        return result

    def _look(self, job: VariantJob, result: ReframeResult) -> SourceFound | None:
        """The generation's source check; None when it could not be made (logged: the variant is not held up)."""
        try:
            return look_for_source(job.source, result.body)
        except Exception as exc:
            logger.warning("source check not made", extra={"error": f"{type(exc).__name__}: {exc}"})
            return None

    def _retry(
        self, job: VariantJob, meter: VariantMeter, first: ReframeResult, found: SourceFound
    ) -> tuple[ReframeResult, SourceFound, int | None]:
        """SOURCE_CHECK=retry: generate once more with a new seed (paid and counted like any attempt) and keep
        the second result only when its source check is better; any failure of the retry keeps the first."""
        seed = random.randint(100, 999_999)  # noqa: S311 - a seed, not a secret
        count("SourceCheckRetries")
        try:
            if job.deadline.remaining_ms() < self.min_remaining_ms:
                raise DeadlineError("too little time left for a second generation")
            second = self._generate(job, meter, None, replace(self._params(job), seed=seed))
        except SourceChangedError:
            raise
        except Exception as exc:
            logger.warning("source check retry failed: the first result is kept", extra={"error": str(exc)})
            return first, found, None
        again = self._look(job, second)
        logger.info(
            "source check retried with a new seed",
            extra={"first": found.score, "second": again.score if again else None, "seed": seed},
        )
        if again is None or again.score <= found.score:
            return first, found, None
        return replace(second, seed=second.seed if second.seed is not None else seed), again, seed

    def _fall_back(
        self, job: VariantJob, exc: Exception, fields: dict[str, Any], started: float
    ) -> VariantRecord | None:
        """The variant made by the fallback provider after the provider failed it with ``exc``, written beside
        the others but never as a kept generation (those are the provider's); None when the fallback fails too.
        The record keeps the provider's failure: its code and message, and whether the record goes back to
        SQS (a transient or account failure: the redelivery tries the provider again)."""
        assert self.fallback is not None and self.fallback_provenance is not None
        v = job.variant
        failure = VariantRecord.failure(v.name, exc)
        params = GenerationParams(rendering_speed=v.rendering_speed, seed=v.seed)
        try:
            with traced("fallback"):
                result = self.fallback.reframe(
                    ReframeRequest(job.source, v.resolution, params, job.deadline, FreeMeter())
                )
            key, _size, signed, _ = self._write(job, result, self.fallback_provenance, fallback=self.fallback.name)
        except Exception as fallback_exc:
            logger.error(
                "fallback failed too",
                extra={
                    "error_code": failure.error.code if failure.error else None,
                    "fallback_error": str(fallback_exc),
                },
            )
            return None
        (logger.error if failure.retryable else logger.warning)(
            "variant made by the fallback provider",
            extra={
                "variant_key": key,
                "fallback": self.fallback.name,
                "error_code": failure.error.code if failure.error else None,
                "error": str(exc),
                "retryable": failure.retryable,
            },
        )
        count("VariantsFallback")
        _count_refusal(exc)
        return VariantRecord(
            name=v.name,
            key=key,
            status="created",
            width=v.final_size.width,
            height=v.final_size.height,
            latency_ms=int((time.monotonic() - started) * 1000),
            provenance=self.fallback_provenance.model_copy(update={"signed": signed}),
            fallback_reason=failure.error,
            retryable=failure.retryable,
            **{**fields, "provider": self.fallback.name, "seed": _seed(v, result)},
        )

    @staticmethod
    def _failed(v: PlannedVariant, exc: Exception, base: dict[str, Any], started: float) -> VariantRecord:
        record = VariantRecord.failure(v.name, exc, **base, latency_ms=int((time.monotonic() - started) * 1000))
        log = logger.error if record.retryable else logger.warning
        log(
            "variant failed",
            extra={
                "error_code": record.error.code if record.error else None,
                "error": str(exc),
                "retryable": record.retryable,
            },
        )
        count("VariantsFailed")
        _count_refusal(exc)
        return record


def _count_refusal(exc: Exception) -> None:
    """What needs a person, counted whether or not a fallback stood in: the account, or the budget."""
    if isinstance(exc, AccountError):
        count("AccountErrors")
    if isinstance(exc, BudgetExceededError):
        count("BudgetRefusals")
