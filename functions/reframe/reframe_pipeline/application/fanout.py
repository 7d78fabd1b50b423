"""One call per target, in parallel: each variant through the guard (never paid twice), produced in a
thread of the provider-call pool with the source's log keys."""

from __future__ import annotations

import contextvars
import hashlib
import json
from concurrent.futures import ThreadPoolExecutor

from reframe_pipeline.application.ports import (
    Deadline,
    ObjectInfo,
    SourceImage,
    Storage,
    VariantGuard,
    VariantWork,
)
from reframe_pipeline.application.variants import VariantJob, VariantProducer, is_current, is_signed
from reframe_pipeline.domain.manifest import VariantRecord
from reframe_pipeline.domain.planning import PlannedVariant
from reframe_pipeline.observability import count, logger


class FanOut:
    def __init__(self, producer: VariantProducer, guard: VariantGuard, max_parallel_calls: int) -> None:
        self.producer = producer
        self.guard = guard
        # One pool per process: MAX_PARALLEL_CALLS is the number of provider calls in flight.
        self._calls = ThreadPoolExecutor(max_parallel_calls, thread_name_prefix="reframe-call")

    def close(self) -> None:
        self._calls.shutdown()

    def run(
        self,
        storage: Storage,
        info: ObjectInfo,
        source: SourceImage,
        out_dir: str,
        variants: list[PlannedVariant],
        existing: dict[str, ObjectInfo],
        deadline: Deadline,
    ) -> list[VariantRecord]:
        records: dict[str, VariantRecord] = {}
        futures = {}
        for v in variants:
            if v.name in existing:
                count("VariantsExisting")
                records[v.name] = VariantRecord(
                    name=v.name,
                    key=existing[v.name].key,
                    status="existing",
                    width=v.final_size.width,
                    height=v.final_size.height,
                    resolution=str(v.resolution),
                    provider=self.producer.provider.name,
                    seed=v.seed,
                    rendering_speed=v.rendering_speed,
                    provenance=self.producer.provenance.model_copy(update={"signed": is_signed(existing[v.name])}),
                )
                continue
            job = VariantJob(storage, info, source, out_dir, v, deadline, work_id=_work_id(storage, info, v))
            context = contextvars.copy_context()  # carries the source's log keys into the thread
            futures[v.name] = self._calls.submit(context.run, self._produce_in_context, job)
        for name, future in futures.items():
            records[name] = future.result()
        return [records[v.name] for v in variants]

    def _produce_in_context(self, job: VariantJob) -> VariantRecord:
        logger.thread_safe_append_keys(target=job.variant.name, param_hash=job.variant.param_hash)
        # A record of a variant made earlier is trusted only while the bucket still holds that variant for
        # this source version and these parameters (it may have been deleted, or overwritten by a run for
        # other parameters: seed 100 -> 200 -> 100 must not serve the seed-200 image).
        return self.guard.run(
            VariantWork(
                _identity(job.storage, job.origin, job.variant),
                job.deadline,
                produce=lambda: self.producer.produce(job),
                still_valid=lambda record: (
                    record.key is not None
                    and is_current(job.storage.head(record.key), job.origin, job.variant.param_hash)
                ),
            )
        )


def _identity(storage: Storage, origin: ObjectInfo, variant: PlannedVariant) -> dict[str, str]:
    """Who a variant is: never the message, always the object version and the parameters."""
    return {
        "bucket": storage.bucket,
        "key": origin.key,
        "version": origin.version,
        "etag": origin.etag,
        "variant": variant.name,
        "params": variant.param_hash,
    }


def _work_id(storage: Storage, origin: ObjectInfo, variant: PlannedVariant) -> str:
    return hashlib.sha256(json.dumps(_identity(storage, origin, variant), sort_keys=True).encode()).hexdigest()
