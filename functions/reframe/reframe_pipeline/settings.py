"""Deployment settings, read from the environment and validated once (docs/settings.md)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import cached_property, lru_cache
from typing import Any, Literal, Self, get_args
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from reframe_pipeline.adapters.aws_limits import ATTEMPT_MS
from reframe_pipeline.domain.delivery import Delivery, delivery_for
from reframe_pipeline.domain.planning import plan
from reframe_pipeline.domain.preparation import Limits, decode_pixels_for
from reframe_pipeline.domain.pricing import DEFAULT_PRICES, PriceTable
from reframe_pipeline.domain.sidecar import InvalidSidecarError, RenderingSpeed, parse_sidecar

DEFAULT_SEGMIND_URL = "https://api.segmind.com/v1/ideogram-3-reframe"
DEFAULT_IDEOGRAM_URL = "https://api.ideogram.ai/v1/ideogram-v3/reframe"
# The function's memory when Lambda does not say (local use): template.yaml's MemorySize default.
DEFAULT_MEMORY_MB = 1024


MOST_PARALLEL_CALLS = 64
# The time kept after the last provider call holds one AWS attempt (no attempt starts that could outlive the
# invocation) and a second for checking and encoding the answer before the first write.
MIN_UPLOAD_RESERVE_MS = ATTEMPT_MS + 1000


class SettingsError(ValueError):
    """A setting is missing or wrong: raised at cold start so the deployment fails loudly."""


class _Places(BaseModel):
    """Where sources are read and outputs written."""

    input_prefix: str = "uploads/"
    output_prefix: str = "reframed/"
    # Style-reference keys in a sidecar must lie under it: an uploader cannot have any other object
    # of the bucket presigned to the provider.
    style_prefix: str = "styles/"
    # Delivery (docs/outputs.md, "Where deliverables go"): the bucket of the deliverables (none: the source's),
    # their keys (none: OUTPUT_PREFIX<path>/<name>.<ext>), their Cache-Control (none: by the template, see
    # domain/delivery.py) and the base URL manifests and notices give them (none: keys only).
    output_bucket: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    output_key_template: str = ""
    cache_control: str = ""
    public_base_url: str | None = None


class _Provider(BaseModel):
    """The reframe provider and how it is called."""

    default_rendering_speed: RenderingSpeed = "DEFAULT"
    reframe_provider: Literal["segmind", "ideogram", "local"] = "segmind"
    segmind_api_url: str = DEFAULT_SEGMIND_URL
    segmind_api_key: SecretStr | None = None
    segmind_api_key_secret: str | None = None
    # auto: the async v2 API (a paid result survives the invocation), v1 when the model is not served there.
    segmind_api_mode: Literal["auto", "async", "sync"] = "auto"
    ideogram_api_url: str = DEFAULT_IDEOGRAM_URL
    ideogram_api_key: SecretStr | None = None
    ideogram_api_key_secret: str | None = None
    max_parallel_calls: int = Field(8, ge=1, le=MOST_PARALLEL_CALLS)
    # Presigned URLs handed to the provider: short-lived (at most 15 minutes).
    presign_expiry_s: int = Field(900, ge=60, le=900)
    connect_timeout_s: float = Field(5.0, gt=0, le=60)
    read_timeout_s: float = Field(60.0, gt=0, le=900)
    max_attempts: int = Field(4, ge=1, le=10)
    backoff_base_s: float = Field(1.0, ge=0, le=60)
    backoff_max_s: float = Field(20.0, ge=0, le=300)
    # Time kept back after the last provider call for the upload and the manifest (MIN_UPLOAD_RESERVE_MS at least).
    upload_reserve_ms: int = Field(5000, ge=0)
    # Expected duration of one provider call; no call starts unless this much time is left.
    # At least READ_TIMEOUT_S, or a call may still be waiting for its answer when Lambda stops.
    call_budget_ms: int = Field(60000, ge=0)
    # Generations in flight across all instances (the provider account's limit), leased in the table.
    provider_max_in_flight: int | None = Field(None, ge=1, le=1000)
    # "local": a variant the provider failed for good is made by the local engine instead, flagged in the
    # manifest (provider "local", fallback_reason); none: it stays failed.
    fallback_provider: Literal["none", "local"] = "none"

    @model_validator(mode="after")
    def _times_fit(self) -> Self:
        if self.call_budget_ms < self.read_timeout_s * 1000:
            raise ValueError(
                f"CALL_BUDGET_MS ({self.call_budget_ms}) is below READ_TIMEOUT_S x 1000 "
                f"({self.read_timeout_s * 1000:.0f}): a call could outlive the time kept for it"
            )
        if self.upload_reserve_ms < MIN_UPLOAD_RESERVE_MS:
            raise ValueError(
                f"UPLOAD_RESERVE_MS ({self.upload_reserve_ms}) is below {MIN_UPLOAD_RESERVE_MS}: an AWS request starts"
                f" only with {ATTEMPT_MS} ms left, so the writes after a provider call that used its time could not"
                " start, and its paid result would wait for a retry"
            )
        return self


class _Sources(BaseModel):
    """What is made of each upload, and the limits on what is read."""

    default_sidecar: str | None = None
    # An image with no sidecar of its own, uploaded less than this many seconds ago, waits for one (its record
    # goes back to the queue) rather than be paid for with a folder default or DEFAULT_SIDECAR; 0: no wait.
    sidecar_wait_s: int = Field(10, ge=0, le=900)
    max_targets_per_object: int = Field(20, ge=1, le=200)
    # Source limits (docs/architecture.md, "Sources"): over bytes/pixels the source is downscaled first;
    # over MAX_DECODE_PIXELS it is refused before decoding (it would not fit in memory).
    max_source_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    # Over this an object is refused before it is read: S3 objects reach 5 GB, the function's memory does not.
    max_input_bytes: int = Field(50 * 1024 * 1024, ge=1024)
    max_source_pixels: int = Field(4096 * 4096, ge=64 * 64)
    # None: what the function's memory allows (decode_pixels_for); a value above that is refused.
    max_decode_pixels: int | None = Field(None, ge=64 * 64)
    # Set by Lambda, in MB.
    aws_lambda_function_memory_size: int = Field(DEFAULT_MEMORY_MB, ge=256, le=10240)
    square_source: Literal["off", "pad"] = "off"
    max_sidecar_bytes: int = Field(65536, ge=256, le=1048576)
    # The source check of each generation (docs/source-check.md): off; warn = a variant whose source
    # scores below SOURCE_MATCH_MIN is written and flagged (source_altered); retry = generated once more with
    # a new seed first, the better of the two kept.
    source_check: Literal["off", "warn", "retry"] = "warn"
    # Mean SSIM of the source in the result, 0..1: the local engine's output scores 0.97..0.99 on the sample
    # images, a centre repainted over a third of the source 0.15..0.62 (docs/source-check.md).
    source_match_min: float = Field(0.85, ge=0, le=1)


class _Money(BaseModel):
    """What is paid, kept and retried."""

    idempotency_table: str | None = None
    # A failed SQS record returns after this many seconds, doubling with each receive (at most 900).
    retry_visibility_s: int = Field(30, ge=0, le=900)
    # Estimated spend per UTC day, counted in IDEMPOTENCY_TABLE; none by default.
    daily_budget_usd: float | None = Field(None, gt=0)
    # Each paid generation is kept this long (the bucket's lifecycle rule) so a change of size, format or
    # quality re-renders it for free; 0: none kept, every change pays.
    generations_keep_days: int = Field(30, ge=0, le=3650)
    price_table: PriceTable = Field(default_factory=lambda: DEFAULT_PRICES)


class _Notices(BaseModel):
    """Who is told, and what each variant says of itself."""

    # EventBridge bus told when a source's work ends (name or ARN); none: no events.
    event_bus_name: str | None = None
    # An https URL on a public host told the same, signed per Standard Webhooks with the secret (local use)
    # or the Secrets Manager secret holding it (deployed).
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_secret_arn: str | None = None
    # Tests and `reframe demo/serve --webhook` only: lets WEBHOOK_URL be http://127.0.0.1:PORT, a local receiver.
    # Refused in Lambda (which always sets AWS_LAMBDA_FUNCTION_NAME): the deployed guard cannot be turned off.
    webhook_allow_loopback_for_tests: bool = False
    aws_lambda_function_name: str | None = None
    # C2PA Content Credentials in every generated variant, signed with a private key and its certificate chain:
    # one PEM text holding both, in the Secrets Manager secret (deployed) or in a file (local use).
    c2pa_signing: Literal["off", "on"] = "off"
    c2pa_signer_secret_arn: str | None = None
    c2pa_signer_file: str | None = None

    @model_validator(mode="after")
    def _notices_consistent(self) -> Self:
        if self.webhook_allow_loopback_for_tests and self.aws_lambda_function_name:
            raise ValueError("WEBHOOK_ALLOW_LOOPBACK_FOR_TESTS is for local runs: a Lambda function refuses it")
        if self.webhook_url is not None:
            self._check_webhook(self.webhook_url)
        if self.c2pa_signing == "on":
            self._check_signer()
        return self

    def _check_webhook(self, url: str) -> None:
        if not (self.webhook_secret or self.webhook_secret_arn):
            raise ValueError("WEBHOOK_URL needs WEBHOOK_SECRET or WEBHOOK_SECRET_ARN to sign with")
        loopback = self.webhook_allow_loopback_for_tests and urlsplit(url).hostname == "127.0.0.1"
        if not (url.startswith("https://") or loopback):
            raise ValueError(f"WEBHOOK_URL must be an https URL, not {url!r}")

    def _check_signer(self) -> None:
        sources = [self.c2pa_signer_secret_arn, self.c2pa_signer_file]
        if sum(source is not None for source in sources) != 1:
            raise ValueError(
                "C2PA_SIGNING=on needs one of C2PA_SIGNER_SECRET_ARN (a Secrets Manager secret) or C2PA_SIGNER_FILE"
                " (a local file), each a PEM text holding the private key and its certificate chain"
            )
        if self.c2pa_signer_file is not None and not os.path.isfile(self.c2pa_signer_file):
            raise ValueError(f"C2PA_SIGNER_FILE {self.c2pa_signer_file!r} is not a file")


class Settings(_Places, _Provider, _Sources, _Money, _Notices):
    """Every setting, in groups by concern; validated together once (each group alone is not)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    @field_validator("source_check", mode="before")
    @classmethod
    def _source_check_case(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("fallback_provider", mode="before")
    @classmethod
    def _fallback_off(cls, value: Any) -> Any:
        # The template passes "none"; empty and "off" mean the same.
        return "none" if isinstance(value, str) and value.strip().lower() in ("", "off", "none") else value

    @field_validator("input_prefix", "output_prefix", "style_prefix")
    @classmethod
    def _prefix(cls, value: str, info: ValidationInfo) -> str:
        value = value.lstrip("/")
        if value and not value.endswith("/"):
            value += "/"
        if not value and info.field_name == "style_prefix":  # empty would allow every key of the bucket
            raise ValueError("must name a folder, e.g. 'styles/'")
        return value

    @field_validator(
        "daily_budget_usd",
        "default_sidecar",
        "provider_max_in_flight",
        "event_bus_name",
        "webhook_url",
        "webhook_secret_arn",
        "c2pa_signer_secret_arn",
        "c2pa_signer_file",
        "output_bucket",
        "public_base_url",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        # The template passes an empty string for "no budget", "no default sidecar", "no shared limit",
        # "no bus", "no webhook" and "no signer".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("price_table", mode="before")
    @classmethod
    def _prices(cls, value: Any) -> Any:
        # PRICE_TABLE overrides the defaults per provider and speed, e.g. {"segmind": {"TURBO": 0.04}}.
        if isinstance(value, str):
            value = json.loads(value)
        merged = {provider: dict(speeds) for provider, speeds in DEFAULT_PRICES.items()}
        for provider, speeds in (value or {}).items():
            merged.setdefault(provider, {}).update(speeds)
        return merged

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        raw = {name: environ[name.upper()] for name in cls.model_fields if name.upper() in environ}
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(_describe(err) for err in exc.errors())
            raise SettingsError(f"invalid settings (environment variables): {problems}") from None

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        missing = [
            speed for speed in get_args(RenderingSpeed) if speed not in self.price_table.get(self.reframe_provider, {})
        ]
        if missing:
            raise ValueError(f"PRICE_TABLE has no price for {self.reframe_provider} {', '.join(missing)}")
        if self.provider_max_in_flight is not None and not self.idempotency_table:
            raise ValueError("PROVIDER_MAX_IN_FLIGHT is leased in the idempotency table: set IDEMPOTENCY_TABLE too")
        if self.daily_budget_usd is not None and not self.idempotency_table:
            raise ValueError("DAILY_BUDGET_USD is counted in the idempotency table: set IDEMPOTENCY_TABLE too")
        inp, out = self.input_prefix, self.output_prefix
        # Variants written inside the input prefix would be processed again (and the other way round).
        if inp.startswith(out) or out.startswith(inp):
            relation = "are equal" if inp == out else "are nested (one contains the other)"
            raise ValueError(f"INPUT_PREFIX {inp!r} and OUTPUT_PREFIX {out!r} {relation}: they must be apart")
        memory, allowed = self.aws_lambda_function_memory_size, self.decode_pixels_allowed
        if self.max_decode_pixels is not None and self.max_decode_pixels > allowed:
            raise ValueError(
                f"MAX_DECODE_PIXELS ({self.max_decode_pixels:,}) is more than {memory} MB of memory can decode"
                f" (AWS_LAMBDA_FUNCTION_MEMORY_SIZE; at most {allowed:,}): lower it or give the function more memory"
            )
        if self.fallback_provider == self.reframe_provider:
            raise ValueError("FALLBACK_PROVIDER=local with REFRAME_PROVIDER=local falls back to itself: set it to none")
        self.delivery  # noqa: B018 - the key template, Cache-Control and base URL are checked at start-up
        if self.default_sidecar is not None:
            self._check_default_sidecar(self.default_sidecar)
        return self

    @cached_property
    def delivery(self) -> Delivery:
        """Where and how deliverables are written (checked: raises ValueError naming the setting)."""
        return delivery_for(
            template=self.output_key_template,
            cache_control=self.cache_control,
            public_base_url=self.public_base_url,
            output_prefix=self.output_prefix,
            input_prefix=self.input_prefix,
            style_prefix=self.style_prefix,
            same_bucket=self.output_bucket is None,
        )

    def _check_default_sidecar(self, document: str) -> None:
        """Planned as the pipeline plans it: a wrong default would fail every image that relies on it."""
        try:
            sidecar = parse_sidecar(
                document.encode(), max_bytes=self.max_sidecar_bytes, max_targets=self.max_targets_per_object
            )
            plan(
                sidecar,
                provider=self.reframe_provider,
                default_speed=self.default_rendering_speed,
                style_prefix=self.style_prefix,
                widths_allowed=self.delivery.template.has_width,
            )
        except InvalidSidecarError as exc:
            raise ValueError(f"DEFAULT_SIDECAR: {exc.message}") from None

    @property
    def decode_pixels_allowed(self) -> int:
        return decode_pixels_for(self.aws_lambda_function_memory_size)

    @property
    def min_call_ms(self) -> int:
        """Time that must be left in the invocation to start a provider call: the call and the upload."""
        return self.call_budget_ms + self.upload_reserve_ms

    @property
    def source_limits(self) -> Limits:
        return Limits(
            max_input_bytes=self.max_input_bytes,
            max_bytes=self.max_source_bytes,
            max_pixels=self.max_source_pixels,
            max_decode_pixels=self.decode_pixels_allowed if self.max_decode_pixels is None else self.max_decode_pixels,
            square=self.square_source == "pad",
        )


def _describe(err: Any) -> str:
    """``NAME: problem``; a check across settings names them in its message instead."""
    message = str(err["msg"]).removeprefix("Value error, ")
    name = ".".join(str(part) for part in err["loc"]).upper()
    return f"{name}: {message}" if name else message


@lru_cache(maxsize=1)
def current() -> Settings:
    """The settings of this process, validated once."""
    return Settings.from_env()
