"""What the application needs to know of the deployment: a few plain values, built by composition from the
settings (which also hold keys and adapter choices the application never sees)."""

from __future__ import annotations

from dataclasses import dataclass

from reframe_pipeline.application.source_matching import SourceCheckPolicy
from reframe_pipeline.domain.delivery import Delivery
from reframe_pipeline.domain.preparation import Limits
from reframe_pipeline.domain.pricing import PriceTable


@dataclass(frozen=True)
class PipelineOptions:
    input_prefix: str
    output_prefix: str
    style_prefix: str
    default_sidecar: str | None  # DEFAULT_SIDECAR: the config of images that have none
    sidecar_wait_s: int  # SIDECAR_WAIT_S: how long a new image without a sidecar of its own waits for one
    default_rendering_speed: str
    max_sidecar_bytes: int
    max_targets_per_object: int
    presign_expiry_s: int
    keep_generations: bool  # GENERATIONS_KEEP_DAYS > 0
    source_limits: Limits
    max_parallel_calls: int  # the provider-call pool's threads
    min_call_ms: int  # time that must be left in the invocation to start a provider call
    price_table: PriceTable
    source_check: SourceCheckPolicy
    output_bucket: str | None  # OUTPUT_BUCKET: where deliverables go (None: the source's bucket)
    delivery: Delivery  # their keys, Cache-Control and public URLs
