"""Producing one variant: provider call, exact-size crop, format conversion, verification, upload."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from PIL import Image

from .budget import Budget, BudgetExceededError, Unlimited
from .errors import AccountError, DeadlineError, PermanentError
from .imaging import FORMATS, ImageCheckError, encode, fit_exact, sniff, verify
from .manifest import VariantRecord
from .observability import count, logger
from .planning import PlannedVariant
from .ports import (
    Deadline,
    GenerationParams,
    ObjectInfo,
    ReframeProvider,
    ReframeRequest,
    ReframeResult,
    SourceImage,
    Storage,
)
from .pricing import PriceTable, estimate

META_SOURCE_KEY = "source-key"
META_SOURCE_ETAG = "source-etag"
META_PARAMS = "params-hash"
OUTPUT_EXTENSIONS = tuple(sorted({spec.ext for spec in FORMATS.values()} | {"jpeg"}))


@dataclass(frozen=True)
class VariantJob:
    storage: Storage
    origin: ObjectInfo  # the uploaded object (the source sent may be a prepared copy of it)
    source: SourceImage
    out_dir: str
    variant: PlannedVariant
    deadline: Deadline


def finish_image(body: bytes, variant: PlannedVariant) -> tuple[bytes, str]:
    """Crop to exact sizes and convert formats only when asked; returns (bytes, format key)."""
    fmt = sniff(body[:32]) or "png"
    wanted = variant.output.format
    if not variant.needs_crop and wanted in ("original", fmt):
        return body, fmt
    with Image.open(io.BytesIO(body)) as image:
        icc = image.info.get("icc_profile")
        result = fit_exact(image, variant.final_size) if variant.needs_crop else image.copy()
    target = fmt if wanted == "original" else wanted
    return encode(result, target, variant.output.quality, icc), target


class VariantProducer:
    def __init__(
        self,
        provider: ReframeProvider,
        prices: PriceTable,
        presign_expiry_s: int,
        min_remaining_ms: int,
        budget: Budget | None = None,
    ) -> None:
        self.provider = provider
        self.budget = budget or Unlimited()
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

    def _call(self, job: VariantJob, cost: float) -> ReframeResult:
        """The paid part: reserve the estimated cost, call, give the reservation back on failure."""
        self.budget.reserve(cost)
        try:
            request = ReframeRequest(job.source, job.variant.resolution, self._params(job), job.deadline)
            return self.provider.reframe(request)
        except Exception:
            self.budget.refund(cost)
            raise

    def _write(self, job: VariantJob, result: ReframeResult) -> tuple[str, int]:
        v = job.variant
        body, fmt = finish_image(result.body, v)
        if body is not result.body:  # the provider's bytes arrive verified; check what we changed
            try:
                verify(body, v.final_size)
            except ImageCheckError as exc:  # our own output: a bug, not the user's input
                raise PermanentError(f"output check failed: {exc}", code="output_check") from None
        key = f"{job.out_dir}{v.name}.{FORMATS[fmt].ext}"
        metadata = {
            META_SOURCE_KEY: quote(job.origin.key),  # S3 metadata is ASCII only
            META_SOURCE_ETAG: job.origin.etag,
            META_PARAMS: v.param_hash,
        }
        job.storage.write(key, body, FORMATS[fmt].mime, metadata)
        return key, len(body)

    def produce(self, job: VariantJob) -> VariantRecord:
        """Call the provider and write the checked result; never raises (failures become records)."""
        v = job.variant
        base = {
            "resolution": str(v.resolution),
            "provider": self.provider.name,
            "seed": v.seed,
            "rendering_speed": v.rendering_speed,
        }
        if job.deadline.remaining_ms() < self.min_remaining_ms:
            count("VariantsDeferred")
            return VariantRecord.failure(
                v.name, DeadlineError("not started: too little time left in this invocation"), **base
            )
        cost = estimate(self.prices, self.provider.name, v.rendering_speed)
        started = time.monotonic()
        try:
            result = self._call(job, cost)
            latency_ms = int((time.monotonic() - started) * 1000)
            count("ProviderLatency", latency_ms, "Milliseconds")
            count("EstimatedCostUSD", cost, "None")
            key, size = self._write(job, result)
        except Exception as exc:
            return self._failed(v, exc, base, started)
        count("VariantsCreated")
        count("BytesWritten", size, "Bytes")
        logger.info(
            "variant created",
            extra={
                "variant_key": key,
                "latency_ms": latency_ms,
                "attempts": result.attempts,
                "cost_usd": cost,
                **result.provider_meta,
            },
        )
        return VariantRecord(
            name=v.name,
            key=key,
            status="created",
            width=v.final_size.width,
            height=v.final_size.height,
            cost_usd=cost,
            latency_ms=latency_ms,
            attempts=result.attempts,
            **base,
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
        if isinstance(exc, AccountError):
            count("AccountErrors")
        if isinstance(exc, BudgetExceededError):
            count("BudgetRefusals")
        return record
