"""A generation's source check: made once per generation (or read from a kept one), and with SOURCE_CHECK=retry
a second generation with a new seed, kept only when its check is better."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace

from reframe_pipeline.application.metering import VariantMeter, retry_work_id
from reframe_pipeline.application.ports import Journal
from reframe_pipeline.application.source_matching import SourceCheckPolicy, SourceFound, look_for_source
from reframe_pipeline.application.values import GenerationParams, ReframeResult, Ticket
from reframe_pipeline.application.variant_job import VariantJob
from reframe_pipeline.domain.errors import DeadlineError, SourceChangedError
from reframe_pipeline.observability import count, logger

# A generation's source check, and the seed of its retry (SOURCE_CHECK=retry) when the retry was kept.
Check = tuple[SourceFound | None, int | None]
# One generation, paid or collected with a ticket (VariantProducer._generate); the last argument: it is the retry.
Generate = Callable[[VariantJob, VariantMeter, Ticket | None, GenerationParams, bool], ReframeResult]


class GenerationChecks:
    def __init__(
        self,
        policy: SourceCheckPolicy,
        journal: Journal,
        min_remaining_ms: int,
        presign_expiry_s: int,
        generate: Generate,
    ) -> None:
        self.policy = policy
        self.journal = journal
        self.min_remaining_ms = min_remaining_ms
        self.presign_expiry_s = presign_expiry_s
        self._generate = generate

    def new(self, job: VariantJob, meter: VariantMeter, result: ReframeResult) -> tuple[ReframeResult, Check]:
        """A new generation's source check; with SOURCE_CHECK=retry and a low score, the better of two generations."""
        found = _look(job, result) if self.policy.on else None
        if found is not None and found.score < self.policy.minimum and self.policy.mode == "retry":
            result, found, retry_seed = self._retry(job, meter, result, found)
            return result, (found, retry_seed)
        return result, (found, None)

    def kept(self, job: VariantJob, result: ReframeResult) -> Check:
        """The source check of a kept generation: made in this run, kept in its metadata, or made now."""
        if not self.policy.on:
            return None, None
        found, retry_seed = job.generations.checks.get(job.gen_id, (None, None))
        if found is None:  # kept by an earlier run: its check travels in its metadata
            found = SourceFound.from_metadata(job.generations.metadata(job.gen_id))
        if found is None:
            found = _look(job, result)
            job.generations.checks[job.gen_id] = (found, retry_seed)
        return found, retry_seed

    def _retry(
        self, job: VariantJob, meter: VariantMeter, first: ReframeResult, found: SourceFound
    ) -> tuple[ReframeResult, SourceFound, int | None]:
        """SOURCE_CHECK=retry: generate once more with a new seed (paid and counted like any attempt) and keep
        the second result only when its source check is better; any failure of the retry keeps the first."""
        resume = self.journal.load(retry_work_id(job.work_id))  # paid for by an invocation that did not finish
        seed = resume.seed if resume is not None else None
        if seed is None:
            seed = random.randint(100, 999_999)  # noqa: S311 - a seed, not a secret
        count("SourceCheckRetries")
        try:
            if job.deadline.remaining_ms() < self.min_remaining_ms:
                raise DeadlineError("too little time left for a second generation")
            params = replace(job.params(self.presign_expiry_s), seed=seed)
            second = self._generate(job, meter, resume, params, True)
        except SourceChangedError:
            raise
        except Exception as exc:
            logger.warning("source check retry failed: the first result is kept", extra={"error": str(exc)})
            return first, found, None
        again = _look(job, second)
        logger.info(
            "source check retried with a new seed",
            extra={"first": found.score, "second": again.score if again else None, "seed": seed},
        )
        if again is None or again.score <= found.score:
            return first, found, None
        return replace(second, seed=second.seed if second.seed is not None else seed), again, seed


def _look(job: VariantJob, result: ReframeResult) -> SourceFound | None:
    """The generation's source check; None when it could not be made (logged: the variant is not held up)."""
    try:
        return look_for_source(job.source, result.body)
    except Exception as exc:
        logger.warning("source check not made", extra={"error": f"{type(exc).__name__}: {exc}"})
        return None
