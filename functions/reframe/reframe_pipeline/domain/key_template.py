"""OUTPUT_KEY_TEMPLATE (docs/outputs.md, "Where deliverables go"): where each deliverable is written,
checked once at start-up so that no two deliverables can share a key and none can land where uploads
are read (an event loop)."""

from __future__ import annotations

import hashlib
import itertools
import string
from dataclasses import dataclass

DEFAULT_TEMPLATE = "{prefix}{path}/{name}.{ext}"
PLACEHOLDERS = ("prefix", "path", "dir", "file", "stem", "name", "width", "height", "ext", "hash")
HASH_DIGITS = 8


class KeyTemplateError(ValueError):
    """A template refused at start-up, with the reason."""


@dataclass(frozen=True)
class KeyFacts:
    """What one deliverable's key is made of."""

    path: str  # the source key below INPUT_PREFIX: "shoot/hero.png"
    name: str  # the target's name
    width: int
    height: int
    ext: str  # from the bytes: "jpg", "png", "webp", "avif"
    digest: str = ""  # the deliverable's SHA-256 (hex); needed only with {hash}


def content_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


@dataclass(frozen=True)
class KeyTemplate:
    text: str
    prefix: str  # OUTPUT_PREFIX

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(_fields(self.text))

    @property
    def has_width(self) -> bool:
        """Renditions of one target at several widths get keys of their own ({width}, or {hash})."""
        return bool(self.fields & {"width", "hash"})

    @property
    def content_addressed(self) -> bool:
        """New bytes get a new key ({hash}): the only keys a long-lived, immutable Cache-Control suits."""
        return "hash" in self.fields

    @property
    def literal_start(self) -> str:
        """Every key starts with this: the text before the first placeholder, OUTPUT_PREFIX standing for {prefix}."""
        start = self.text.replace("{prefix}", self.prefix)
        return start.split("{", 1)[0]

    def render(self, facts: KeyFacts) -> str:
        folder, _, file = facts.path.rpartition("/")
        values = {
            "prefix": self.prefix,
            "path": facts.path,
            "dir": folder,
            "file": file,
            "stem": file.rsplit(".", 1)[0] if "." in file.lstrip(".") else file,
            "name": facts.name,
            "width": str(facts.width),
            "height": str(facts.height),
            "ext": facts.ext,
            "hash": facts.digest[:HASH_DIGITS],
        }
        key = self.text.format_map(values)
        # An empty {dir} (a source at the top) and the like: no key holds "//" or starts with "/".
        return "/".join(part for part in key.split("/") if part)


def _fields(text: str) -> list[str]:
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise KeyTemplateError(f"OUTPUT_KEY_TEMPLATE {text!r}: {exc} (write placeholders as {{name}})") from None
    fields = []
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if field not in PLACEHOLDERS or spec or conversion:
            shown = "{" + field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            raise KeyTemplateError(
                f"OUTPUT_KEY_TEMPLATE {text!r}: unknown placeholder {shown}; known: "
                + " ".join("{" + p + "}" for p in PLACEHOLDERS)
            )
        fields.append(field)
    return fields


def _needs(fields: frozenset[str]) -> str | None:
    """What the template lacks to tell deliverables apart, or None. A deliverable is one source, one target,
    one width, one format. {hash} tells apart only different bytes: two targets of one size rendered from one
    generation are byte for byte the same, so the target's {name} is always needed."""
    hashed = "hash" in fields
    if "name" not in fields:
        return "{name}: two targets of one source would share a key"
    if not ({"path"} <= fields or {"dir", "file"} <= fields or ({"dir", "stem"} <= fields and hashed)):
        return (
            "{path}, or {dir} with {file}: sources of one folder would share keys"
            " ({stem} drops the source's extension, so hero.png and hero.jpg need {hash} beside it)"
        )
    if "ext" not in fields and not hashed:
        return "{ext} (or {hash}): the formats of one target would share a key"
    return None


# Keys built to meet where a separator in the template is also a character of a value: "a" + "-b.png" and
# "a-b" + ".png". Each group of facts below is one deliverable; two that render alike refute the template.
_PATHS = (
    "a.png",
    "b/a.png",
    "a/b.png",
    "a-b.png",
    "a.png-b",
    "a.png-x",
    "a.png/x",
    "a-b/c.png",
    "a/b-c.png",
    "ab.png",
    "a.jpg",
    "a",
)
_NAMES = ("x", "x-y", "y", "x.y", "y-600w", "600w", "x1")
_SIZES = ((1200, 628), (200, 105), (600, 314), (60, 31))
_EXTS = ("jpg", "png", "webp", "avif")


def _probe(template: KeyTemplate) -> None:
    seen: dict[str, tuple[str, str, int, str]] = {}
    # Without {width} (nor {hash}) a target has one width: a sidecar asking for more is refused (planning).
    sizes = _SIZES if template.has_width else _SIZES[:1]
    for path, name, (width, height), ext in itertools.product(_PATHS, _NAMES, sizes, _EXTS):
        deliverable = (path, name, width, ext)
        digest = hashlib.sha256(repr(deliverable).encode()).hexdigest()
        key = template.render(KeyFacts(path, name, width, height, ext, digest))
        other = seen.setdefault(key, deliverable)
        if other != deliverable:
            raise KeyTemplateError(
                f"OUTPUT_KEY_TEMPLATE {template.text!r} gives two deliverables the key {key!r}: "
                f"source {other[0]!r} target {other[1]!r} {other[2]}w {other[3]} and source {path!r} target {name!r} "
                f"{width}w {ext}; put a '/' between placeholders, or a character no value holds"
            )


def parse_template(
    text: str, *, output_prefix: str, input_prefix: str, same_bucket: bool, style_prefix: str = ""
) -> KeyTemplate:
    """The template, checked: known placeholders, every deliverable its own key, and (deliverables in the
    source bucket) no key under INPUT_PREFIX, where it would be read as an upload, or STYLE_PREFIX."""
    template = KeyTemplate(text.strip() or DEFAULT_TEMPLATE, output_prefix)
    if template.text.startswith("/"):
        raise KeyTemplateError(f"OUTPUT_KEY_TEMPLATE {template.text!r}: S3 keys do not start with '/'")
    lacks = _needs(template.fields)
    if lacks is not None:
        raise KeyTemplateError(f"OUTPUT_KEY_TEMPLATE {template.text!r} needs {lacks}")
    _probe(template)
    if same_bucket:
        start = template.literal_start
        for setting, prefix in (("INPUT_PREFIX", input_prefix), ("STYLE_PREFIX", style_prefix)):
            if prefix and (start.startswith(prefix) or prefix.startswith(start)):
                where = f"starts with {start!r}" if start else "starts with a placeholder"
                raise KeyTemplateError(
                    f"OUTPUT_KEY_TEMPLATE {template.text!r} {where}: a deliverable could land under {setting}"
                    f" {prefix!r} of the source bucket (an upload read again, a loop); begin it with {{prefix}} or a"
                    " folder apart from it, or set OUTPUT_BUCKET to another bucket"
                )
    return template
