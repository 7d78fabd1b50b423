"""One call per target, in parallel: each variant through the guard (never paid twice), produced in a
thread of the provider-call pool with the source's log keys."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from reframe_pipeline.application.deadline import Deadline
from reframe_pipeline.application.deliverables import delivered
from reframe_pipeline.application.generations import META_GENERATION, META_SEED, Generations
from reframe_pipeline.application.object_metadata import is_current, is_signed, warnings_of
from reframe_pipeline.application.ports import Storage, VariantGuard
from reframe_pipeline.application.source_image import SourceImage
from reframe_pipeline.application.threads import ContextPool
from reframe_pipeline.application.values import ObjectInfo, VariantWork
from reframe_pipeline.application.variant_job import VariantJob
from reframe_pipeline.application.variants import VariantProducer
from reframe_pipeline.domain.manifest import Rendition, VariantRecord
from reframe_pipeline.domain.planning import PlannedVariant
from reframe_pipeline.observability import count, logger


@dataclass(frozen=True)
class FolderContents:
    """What the source's output folder holds for this run (OutputFolder.contents) and its kept generations."""

    existing: dict[str, ObjectInfo]  # current variants by name (their first deliverable): nothing to do
    replaced: dict[str, str]  # the generation of each outdated rendition, by name
    generations: Generations
    out: Storage  # where this run's deliverables go (OUTPUT_BUCKET)
    path: str  # the source key below INPUT_PREFIX: the key template's {path}
    renditions: dict[str, list[Rendition]]  # the deliverables of each current variant


class FanOut:
    def __init__(
        self, producer: VariantProducer, guard: VariantGuard, max_parallel_calls: int, io: ContextPool
    ) -> None:
        self.producer = producer
        self.guard = guard
        # One pool per process: MAX_PARALLEL_CALLS is the number of provider calls in flight.
        self._calls = ContextPool(max_parallel_calls, thread_name_prefix="reframe-call")
        self._io = io  # the pipeline's, for S3 work beside the calls

    def close(self) -> None:
        self._calls.shutdown()

    def run(
        self,
        storage: Storage,
        info: ObjectInfo,
        source: SourceImage,
        out_dir: str,
        variants: list[PlannedVariant],
        outputs: FolderContents,
        deadline: Deadline,
    ) -> list[VariantRecord]:
        existing, replaced = outputs.existing, outputs.replaced
        records: dict[str, VariantRecord] = {}
        futures = {}
        jobs: list[VariantJob] = []
        for v in variants:
            if v.name in existing:
                records[v.name] = self._existing(v, existing[v.name], outputs.renditions[v.name])
                continue
            gen_id = outputs.generations.id_for(v, info)
            job = VariantJob(
                storage,
                info,
                source,
                out_dir,
                v,
                deadline,
                outputs.generations,
                gen_id,
                work_id=_work_id(storage, info, gen_id),
                out=outputs.out,
                path=outputs.path,
                previous_generation=replaced.get(v.name),
            )
            futures[v.name] = self._calls.submit(self._produce_in_context, job)
            jobs.append(job)
        self._prepare_checks(source, jobs, outputs.generations)
        records |= {name: future.result() for name, future in futures.items()}
        self.producer.let_go(jobs, records)
        return [records[v.name] for v in variants]

    def _prepare_checks(self, source: SourceImage, jobs: list[VariantJob], generations: Generations) -> None:
        """The source check's thumbnail, made while the provider works, not after its first answer; a kept
        generation carries its check in its metadata and needs none."""
        if self.producer.source_check.on and any(not generations.listed(job.gen_id) for job in jobs):
            self._io.submit(source.thumbnail)

    def _existing(self, v: PlannedVariant, head: ObjectInfo, renditions: list[Rendition]) -> VariantRecord:
        """The record of a variant already made for this source version and these parameters."""
        count("VariantsExisting")
        renditions = self.producer.writer.publisher.with_urls(renditions)
        return VariantRecord(
            name=v.name,
            key=head.key,
            status="existing",
            width=v.final_size.width,
            height=v.final_size.height,
            resolution=str(v.resolution),
            provider=self.producer.provider.name,
            seed=_seed(v, head),
            param_hash=v.param_hash,
            rendering_speed=v.rendering_speed,
            provenance=self.producer.provenance.model_copy(update={"signed": is_signed(head)}),
            generation=head.metadata.get(META_GENERATION),
            warnings=warnings_of(head),
            **delivered(renditions),
        )

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
                    and is_current(
                        job.out.head(record.key),
                        job.origin,
                        job.variant.param_hash,
                        # A fallback made after a paid verdict (unsafe, the wrong size) is remembered with it.
                        fallback_ok=record.fallback_reason is not None,
                    )
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


def _work_id(storage: Storage, origin: ObjectInfo, gen_id: str) -> str:
    """What is paid for is a generation: renditions of one share its journal entry."""
    identity = {"bucket": storage.bucket, "key": origin.key, "version": origin.version, "generation": gen_id}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def _seed(variant: PlannedVariant, written: ObjectInfo) -> int | None:
    """The seed the variant was made with, as its metadata keeps it (a retried generation's, the sidecar's
    notwithstanding: the same the manifest said when it was created), else the sidecar's."""
    seed = written.metadata.get(META_SEED)
    return int(seed) if seed and seed.isdigit() else variant.seed
