"""The sidecar, format version 1 (docs/sidecar.md): a pydantic model that rejects anything unknown."""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from reframe_pipeline.domain.errors import PermanentError
from reframe_pipeline.domain.presets import PRESETS
from reframe_pipeline.domain.resolutions import RESOLUTION_NAMES, parse_aspect, parse_size

RenderingSpeed = Literal["TURBO", "DEFAULT", "QUALITY"]
PaletteName = Literal["EMBER", "FRESH", "JUNGLE", "MAGIC", "MELON", "MOSAIC", "PASTEL", "ULTRAMARINE"]
# Segmind's seed range; Ideogram's is wider, so this one suits both.
Seed = Annotated[int, Field(ge=100, le=999999, strict=True)]
STYLE_CODE_PATTERN = r"^[0-9a-fA-F]{8}$"
STYLE_CODE_RULE = "an Ideogram style code, 8 hexadecimal characters (for every provider), e.g. 5A3F09C1"


def _style_code(value: str) -> str:
    if not re.fullmatch(STYLE_CODE_PATTERN, value):
        raise ValueError(f"{value!r} is not a style code: Ideogram's are 8 hexadecimal characters, e.g. '5A3F09C1'")
    return value


# Ideogram refuses any other style code with a 400 at run time. Segmind's page shows words, but it serves
# Ideogram's model: every provider gets the same rule. The pattern is in the schema for editors; the
# validator gives the message.
StyleCode = Annotated[
    str,
    AfterValidator(_style_code),
    Field(json_schema_extra={"pattern": STYLE_CODE_PATTERN, "description": STYLE_CODE_RULE}),
]

_BLOCKED_HOST_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain")


class InvalidSidecarError(PermanentError):
    code = "invalid_sidecar"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PaletteMember(_Strict):
    color_hex: str = Field(pattern=r"^#[0-9A-Fa-f]{6}$")
    color_weight: float = Field(0.5, ge=0.05, le=1.0)


class ColorPalette(_Strict):
    name: PaletteName | None = None
    members: list[PaletteMember] | None = Field(None, min_length=1, max_length=16)

    @model_validator(mode="after")
    def _one_kind(self) -> ColorPalette:
        if (self.name is None) == (self.members is None):
            raise ValueError("give exactly one of 'name' (a preset) or 'members' (custom colours)")
        return self

    def as_api(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


def check_reference(ref: str) -> str:
    """A style reference is a key in the same bucket or an https URL to a public host; nothing else."""
    if "://" not in ref:
        if ref.startswith("/") or ".." in ref.split("/") or not ref.strip():
            raise ValueError(f"{ref!r} is not a usable object key")
        return ref
    parts = urlsplit(ref)
    if parts.scheme != "https":
        raise ValueError(f"only https URLs are allowed, got scheme {parts.scheme!r}")
    host = (parts.hostname or "").lower()
    if not host:
        raise ValueError(f"{ref!r} has no host")
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        if host == "localhost" or host.endswith(_BLOCKED_HOST_SUFFIXES) or "." not in host:
            raise ValueError(f"host {host!r} is not a public host") from None
        return ref
    require_public(address)
    return ref


def require_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    if not address.is_global:
        raise ValueError(f"address {address} is private, loopback, link-local or reserved")


Reference = Annotated[str, Field(min_length=1, max_length=2048)]
# The ways a target says what to make; exactly one per target.
TARGET_KINDS = ("resolution", "aspect_ratio", "size", "preset")


class Overrides(_Strict):
    """Fields that may stand at the top level and be overridden per target."""

    rendering_speed: RenderingSpeed | None = None
    seed: Seed | None = None
    style_codes: list[StyleCode] | None = Field(None, max_length=10)
    style_reference_images: list[Reference] | None = Field(None, max_length=5)
    color_palette: ColorPalette | None = None

    @field_validator("style_reference_images")
    @classmethod
    def _references(cls, refs: list[str] | None) -> list[str] | None:
        return None if refs is None else [check_reference(ref) for ref in refs]

    @model_validator(mode="after")
    def _codes_or_references(self) -> Overrides:
        if self.style_codes and self.style_reference_images:
            raise ValueError("style_codes cannot be combined with style_reference_images")
        return self


class FocusPoint(_Strict):
    """A point of the source (0..1 from its left and top edges) the crop is centred on when it can be."""

    x: float = Field(ge=0, le=1)
    y: float = Field(ge=0, le=1)


class Target(Overrides):
    resolution: str | None = None
    aspect_ratio: str | None = None
    size: str | None = None
    preset: str | None = None
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    # Where an exact-size crop goes (size and preset targets): free to change, the generation is kept.
    focus: Literal["center", "top", "bottom", "left", "right"] | FocusPoint | None = None
    # Smaller copies of the same aspect, for srcset; each at most the target's width (checked when planned).
    widths: list[Annotated[int, Field(ge=16, le=4096, strict=True)]] | None = Field(None, min_length=1, max_length=8)

    @field_validator("widths")
    @classmethod
    def _distinct_widths(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError(f"each width once, got {value}")
        return value

    @field_validator("resolution")
    @classmethod
    def _resolution(cls, value: str | None) -> str | None:
        if value is not None and value not in RESOLUTION_NAMES:
            raise ValueError(f"{value!r} is not one of the 69 allowed resolutions (listed in docs/sidecar.md)")
        return value

    @field_validator("aspect_ratio")
    @classmethod
    def _aspect(cls, value: str | None) -> str | None:
        if value is not None:
            parse_aspect(value)
        return value

    @field_validator("size")
    @classmethod
    def _size(cls, value: str | None) -> str | None:
        if value is not None:
            size = parse_size(value)
            if not (16 <= size.width <= 4096 and 16 <= size.height <= 4096):
                raise ValueError(f"each side of 'size' must be 16..4096 pixels, got {value!r}")
        return value

    @field_validator("preset")
    @classmethod
    def _preset(cls, value: str | None) -> str | None:
        if value is not None and value not in PRESETS:
            raise ValueError(f"unknown preset {value!r}; known: {', '.join(sorted(PRESETS))}")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> Target:
        kinds = [k for k in TARGET_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                "each target needs exactly one of 'resolution', 'aspect_ratio', 'size' or 'preset'"
                + (f" (got {', '.join(kinds)})" if kinds else "")
            )
        if self.focus is not None and self.size is None and self.preset is None:
            raise ValueError("'focus' applies to 'size' and 'preset' targets, the ones cropped to exact pixels")
        return self


DeliveryFormat = Literal["png", "jpeg", "webp", "avif"]


class OutputOptions(_Strict):
    format: Literal["original", "png", "jpeg", "webp", "avif"] = "original"
    # Every target in each of these formats, all rendered from its one generation; instead of ``format``.
    formats: list[DeliveryFormat] | None = Field(None, min_length=1, max_length=4)
    quality: int = Field(90, ge=1, le=100, strict=True)

    @model_validator(mode="after")
    def _format_or_formats(self) -> OutputOptions:
        if self.formats is not None:
            if "format" in self.model_fields_set:
                raise ValueError("give 'format' (one) or 'formats' (a list), not both")
            if len(set(self.formats)) != len(self.formats):
                raise ValueError(f"formats: each format once, got {self.formats}")
        return self

    @property
    def all_formats(self) -> tuple[str, ...]:
        """The formats written, in the sidecar's order ("original": the generation's own)."""
        return tuple(self.formats) if self.formats is not None else (self.format,)

    def hashed(self) -> dict[str, object]:
        """What of the options identifies a rendition; without ``formats`` when unset, so the parameter
        hashes of variants made before it existed stay the same."""
        return self.model_dump(exclude_none=True)


class Sidecar(Overrides):
    # Lets editors validate the file against schemas/sidecar.schema.json; not used otherwise.
    schema_url: str | None = Field(None, alias="$schema", max_length=2048)
    version: Literal[1]
    targets: list[Target] = Field(min_length=1)
    output: OutputOptions = OutputOptions()
    # When a target disappears from the config, delete its old variant on the next run.
    prune: bool = False


def field_path(loc: tuple[int | str, ...]) -> str:
    """A pydantic error's location as written in a sidecar: ``targets[1].resolution`` (``sidecar``: the whole)."""
    path = ""
    for item in loc:
        path += f"[{item}]" if isinstance(item, int) else (f".{item}" if path else str(item))
    return path or "sidecar"


def problem(err: ErrorDetails) -> str:
    """One field and its problem: ``targets[1].resolution: '1x1' is not ...``."""
    return f"{field_path(err['loc'])}: {err['msg'].removeprefix('Value error, ')}"


def describe(exc: ValidationError) -> str:
    """One line naming each field and its problem, ``; `` between them."""
    return "; ".join(problem(err) for err in exc.errors())


def load_json(raw: bytes | str) -> Any:
    """The one way sidecar JSON is loaded: anything a user wrote may be hostile. A few kilobytes of
    ``[`` exhaust the parser's recursion (RecursionError, not a JSONDecodeError): invalid too."""
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidSidecarError(f"sidecar is not valid JSON: {exc}") from None
    except RecursionError:
        raise InvalidSidecarError("sidecar is nested too deeply") from None


def parse_sidecar(raw: bytes, *, max_bytes: int, max_targets: int) -> Sidecar:
    """Parse and validate sidecar bytes; every problem becomes an InvalidSidecarError naming the field."""
    if len(raw) > max_bytes:
        raise InvalidSidecarError(f"sidecar is {len(raw)} bytes, over the limit of {max_bytes}")
    document = load_json(raw)
    if not isinstance(document, dict):
        raise InvalidSidecarError("sidecar must be a JSON object")
    try:
        sidecar = Sidecar.model_validate(document)
    except ValidationError as exc:
        raise InvalidSidecarError(describe(exc)) from None
    if len(sidecar.targets) > max_targets:
        raise InvalidSidecarError(
            f"targets: {len(sidecar.targets)} targets, over the limit of {max_targets} (setting MAX_TARGETS_PER_OBJECT)"
        )
    return sidecar
