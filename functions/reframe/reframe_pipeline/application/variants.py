"""Producing one variant: its money reserved, the provider called (or a kept generation reused), the source
checked, and the result written; the record it leaves, whatever happened."""

from __future__ import annotations

import time

from reframe_pipeline.application.deliverables import Optimizer, Publisher
from reframe_pipeline.application.fallback import Fallback, falls_back
from reframe_pipeline.application.generation_checks import Check, GenerationChecks
from reframe_pipeline.application.held_generations import HeldGeneration, HeldGenerations
from reframe_pipeline.application.metering import VariantMeter, retry_work_id
from reframe_pipeline.application.object_metadata import (
    generation_metadata,
)
from reframe_pipeline.application.options import PipelineOptions
from reframe_pipeline.application.ports import Budget, ContentSigner, Journal, ReframeProvider
from reframe_pipeline.application.source_matching import SourceCheckPolicy
from reframe_pipeline.application.values import GenerationParams, ReframeRequest, ReframeResult, Ticket
from reframe_pipeline.application.variant_job import VariantJob
from reframe_pipeline.application.variant_records import Made, created_record, failed_record
from reframe_pipeline.application.variant_writer import VariantWriter
from reframe_pipeline.domain.errors import DeadlineError
from reframe_pipeline.domain.manifest import VariantRecord
from reframe_pipeline.domain.pricing import PriceTable, estimate
from reframe_pipeline.domain.provenance import provenance_for
from reframe_pipeline.observability import MetricUnit, count, measure, traced


class VariantProducer:
    def __init__(
        self,
        provider: ReframeProvider,
        prices: PriceTable,
        presign_expiry_s: int,
        min_remaining_ms: int,
        budget: Budget,
        journal: Journal,
        publisher: Publisher,
        signer: ContentSigner | None = None,
        fallback: ReframeProvider | None = None,
        source_check: SourceCheckPolicy | None = None,
    ) -> None:
        self.provider = provider
        self.source_check = source_check or SourceCheckPolicy(mode="off")
        self.provenance = provenance_for(provider.name)
        self.writer = VariantWriter(signer, publisher, self.source_check.minimum)
        self.fallback = Fallback(fallback, self.writer) if fallback else None  # None: FALLBACK_PROVIDER=none
        self.budget = budget
        self.journal = journal
        self.prices = prices
        self.presign_expiry_s = presign_expiry_s
        self.min_remaining_ms = min_remaining_ms
        self.held = HeldGenerations()  # for the life of the process: a redelivery to it finds them
        self.checks = GenerationChecks(
            self.source_check, self.journal, min_remaining_ms, presign_expiry_s, self._generate
        )

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
            return failed_record(
                v, DeadlineError("not started: too little time left in this invocation"), base, time.monotonic()
            )
        cost = estimate(self.prices, self.provider.name, v.rendering_speed)
        meter = VariantMeter(self.budget, cost, self.journal, job.work_id)
        started = time.monotonic()
        try:
            made = self._make(job, meter, started)
        except Exception as exc:
            fields = {**base, "cost_usd": meter.cost_usd, "attempts": meter.paid_attempts}
            rescued = self.fallback.make(job, exc, fields, started) if self.fallback and falls_back(exc) else None
            return rescued or failed_record(v, exc, fields, started)
        finally:
            measure("EstimatedCostUSD", meter.spent, MetricUnit.NoUnit)
        return created_record(job, made, meter, base, self.provenance, self.source_check.minimum)

    def let_go(self, jobs: list[VariantJob], records: dict[str, VariantRecord]) -> None:
        """The run is over: what it holds of the generations it made every rendition of is of no more use (a later
        run that needs one pays, or renders a kept one, wherever it runs)."""
        unfinished = {job.work_id for job in jobs if _unfinished(records[job.variant.name])}
        for job in jobs:
            if job.work_id not in unfinished:
                self.held.drop(job.work_id)

    def _make(self, job: VariantJob, meter: VariantMeter, started: float) -> Made:
        """The steps of a variant's life after its reservation: submitted, generated (or found kept),
        written. Renditions of one generation take turns, so the first pays and the others render."""
        gen_metadata = generation_metadata(job.origin, job.variant, self.provider.name)
        self._check_limits(job, gen_metadata)
        with job.generations.exclusive(job.gen_id):
            kept = job.generations.load(job.gen_id)
            resumed = False
            if kept is None:
                result, (found, retry_seed), resumed, latency_ms = self._new_generation(job, meter, started)
                storing = job.generations.store(
                    job.gen_id, result, {**gen_metadata, **(found.metadata() if found else {})}
                )
                job.generations.checks[job.gen_id] = (found, retry_seed)
                measure("ProviderLatency", latency_ms, MetricUnit.Milliseconds)
            else:
                result, storing = kept
                latency_ms = int((time.monotonic() - started) * 1000)
                found, retry_seed = self.checks.kept(job, result)
        try:  # rendered while a new generation is written, which has landed before the variant's record is made
            written = self.writer.write(job, result, self.provenance, seed=retry_seed, found=found)
        finally:
            generation_key = storing.result()
        if generation_key is not None:  # the bucket keeps it
            self.held.drop(job.work_id)
        self.journal.advance(job.work_id, "written")
        note = _note(meter) if kept is None and job.previous_generation == job.gen_id else None
        return Made(
            result,
            written.renditions,
            latency_ms,
            resumed,
            kept is not None,
            generation_key,
            written.signed,
            note,
            found,
            retry_seed,
            written.warnings,
        )

    def _check_limits(self, job: VariantJob, gen_metadata: dict[str, str]) -> None:
        """S3's limits on every key and metadata the variant can write, before anything is paid."""
        job.check_limits(
            gen_metadata,
            self.writer.publisher.longest_key(job.path, job.variant.name),
            signing=self.writer.signer is not None,
            checking=self.source_check.on,
        )

    def _new_generation(
        self, job: VariantJob, meter: VariantMeter, started: float
    ) -> tuple[ReframeResult, Check, bool, int]:
        """A generation the bucket does not keep: held by this process (paid for by an earlier invocation whose
        writes S3 refused), else paid for or collected with its journaled ticket, and checked. Held until the
        bucket takes it. With whether it was paid for earlier, and the provider's time (not the check's)."""
        if (held := self.held.get(job.work_id)) is not None:
            meter.reused(held.cost_usd)
            return held.result, held.check, True, 0
        resume = self.journal.load(job.work_id)
        result = self._generate(job, meter, resume, job.params(self.presign_expiry_s))
        latency_ms = int((time.monotonic() - started) * 1000)
        result, check = self.checks.new(job, meter, result)
        self.held.hold(job.work_id, HeldGeneration(result, check, meter.cost_usd))
        return result, check, resume is not None, latency_ms

    def _generate(
        self, job: VariantJob, meter: VariantMeter, resume: Ticket | None, params: GenerationParams, retry: bool = False
    ) -> ReframeResult:
        """One generation, paid or collected with ``resume``; ``retry``: SOURCE_CHECK=retry's second, journaled
        apart from the first with its seed (``params.seed``)."""
        attempt = meter.retry(params.seed) if retry and params.seed is not None else meter
        request = ReframeRequest(job.source, job.variant.resolution, params, job.deadline, attempt, resume)
        paid = meter.paid_attempts
        with traced("provider call"):
            result = self.provider.reframe(request)
        if resume is not None and meter.paid_attempts == paid:  # paid for by an earlier invocation
            meter.collected()
        self.journal.advance(retry_work_id(job.work_id) if retry else job.work_id, "generated")
        job.check_source()
        return result


def _unfinished(record: VariantRecord) -> bool:
    """A variant the provider's generation has yet to make: failed, or stood in for by the fallback."""
    return record.status == "failed" or record.fallback_reason is not None


def _note(meter: VariantMeter) -> str:
    """Why a rendition whose generation was kept had it made again."""
    again = "collected again from the provider" if meter.paid_attempts == 0 else "generated (and paid for) again"
    return f"its kept generation had expired or was deleted: {again}"


def producer_for(
    options: PipelineOptions,
    provider: ReframeProvider,
    *,
    budget: Budget,
    journal: Journal,
    signer: ContentSigner | None,
    fallback: ReframeProvider | None,
    optimizer: Optimizer,
) -> VariantProducer:
    """The producer of a pipeline with these options."""
    return VariantProducer(
        provider,
        options.price_table,
        options.presign_expiry_s,
        min_remaining_ms=options.min_call_ms,
        budget=budget,
        journal=journal,
        publisher=Publisher(options.delivery, optimizer),
        signer=signer,
        fallback=fallback,
        source_check=options.source_check,
    )
