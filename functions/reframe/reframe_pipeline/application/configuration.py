"""Which configuration an image has, and what it plans: its sidecar, its nearest folder default or
DEFAULT_SIDECAR, parsed and planned with the deployment's options."""

from __future__ import annotations

from reframe_pipeline.application.discovery import FoundConfig, find_config
from reframe_pipeline.application.options import PipelineOptions
from reframe_pipeline.application.ports import Storage
from reframe_pipeline.domain.planning import PlannedVariant, plan
from reframe_pipeline.domain.sidecar import parse_sidecar


class Configuration:
    def __init__(self, options: PipelineOptions, provider: str) -> None:
        self.options = options
        self.provider = provider  # the name planned variants are priced and identified with

    def find(self, storage: Storage, key: str) -> FoundConfig | None:
        """The config of the image at ``key``: its sidecar, its nearest folder default, or DEFAULT_SIDECAR."""
        s = self.options
        return find_config(storage, key, s.input_prefix, s.default_sidecar, s.max_sidecar_bytes)

    def plan(self, found: FoundConfig) -> tuple[list[PlannedVariant], bool]:
        """The variants ``found`` asks for, and whether it prunes what it no longer asks for."""
        s = self.options
        sidecar = parse_sidecar(found.raw, max_bytes=s.max_sidecar_bytes, max_targets=s.max_targets_per_object)
        variants = plan(
            sidecar,
            provider=self.provider,
            default_speed=s.default_rendering_speed,
            style_prefix=s.style_prefix,
            widths_allowed=s.delivery.template.has_width,
        )
        return variants, sidecar.prune
