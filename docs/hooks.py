"""Build-time hooks of the docs site (mkdocs.yml `hooks:`).

Tables that mirror the code are rendered from it, so no page holds a hand-kept copy: a line
`<!-- generated: NAME -->` in a page is followed, in the built site, by the table NAME. On GitHub the page
shows the sentence after the marker, which names the source. Links from a page to a file of the repository
outside docs/ (the template, the examples) point to that file in the repository, or to its path when no
`repo_url` is configured.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT / "functions" / "reframe", ROOT / "tools"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

MARKER = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.M)
# [text](../path) leaving docs/: `../` once or more, then a path that is not a page of the site.
OUTSIDE_LINK = re.compile(r"\[([^\]]+)\]\(((?:\.\./)+)([^)#\s]+)(#[^)\s]*)?\)")


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _table(headers: tuple[str, ...], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def presets() -> str:
    from reframe_cli import presets_cmd

    return _table(presets_cmd.HEADERS, presets_cmd.rows())


def resolutions() -> str:
    """The API's resolutions, tallest first, with their aspect ratios, three to a row."""
    from reframe_pipeline.domain.resolutions import RESOLUTIONS

    ordered = sorted(RESOLUTIONS, key=lambda size: size.aspect)
    cells = [f"{size} ({size.aspect:.2f})" for size in ordered]
    per_row = 3
    rows = [cells[start : start + per_row] for start in range(0, len(cells), per_row)]
    rows[-1] += [""] * (per_row - len(rows[-1]))
    return _table(("resolution (width / height)",) * per_row, rows)


class _TemplateLoader(yaml.SafeLoader):
    """Reads template.yaml, whose CloudFormation tags (!Ref, !Sub, ...) the parameters do not use."""


_TemplateLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def _parameter_values(spec: dict[str, Any]) -> str:
    if "AllowedValues" in spec:
        return ", ".join(f"`{value}`" for value in spec["AllowedValues"])
    bounds = [spec.get("MinValue"), spec.get("MaxValue")]
    if any(bound is not None for bound in bounds):
        return "..".join("" if bound is None else str(bound) for bound in bounds)
    return str(spec.get("ConstraintDescription", spec["Type"]))


def parameters() -> str:
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=_TemplateLoader)  # noqa: S506
    rows = [
        [
            f"`{name}`",
            f"`{spec['Default']}`" if str(spec.get("Default", "")) else "empty",
            _parameter_values(spec),
            spec.get("Description", ""),
        ]
        for name, spec in template["Parameters"].items()
    ]
    return _table(("parameter", "default", "accepts", "what it does"), rows)


def demo_plan() -> str:
    from reframe_cli.demo import planned
    from reframe_pipeline.settings import Settings

    return planned(Settings.from_env({})).rstrip("\n")


# A link in a page of the repository's root, as seen from docs/: pages of docs/ lose their "docs/", the root's
# pages are the site's own copies, anything else is a file of the repository one level up.
ROOT_LINK = re.compile(r"\]\((?!https?:|#|mailto:)([^)\s#]+)(#[^)\s]*)?\)")
ROOT_PAGES = {"README.md": "index.md", "CONTRIBUTING.md": "contributing.md"}


def _included(name: str) -> Callable[[], str]:
    """A page of the repository's root (README.md, CONTRIBUTING.md) as a page of the site."""

    def include() -> str:
        def relink(match: re.Match[str]) -> str:
            target, anchor = match.group(1), match.group(2) or ""
            if target.startswith("docs/"):
                target = target.removeprefix("docs/")
            else:
                target = ROOT_PAGES.get(target, f"../{target}")
            return f"]({target}{anchor})"

        return ROOT_LINK.sub(relink, (ROOT / name).read_text()).rstrip("\n")

    return include


GENERATORS: dict[str, Callable[[], str]] = {
    "presets": presets,
    "resolutions": resolutions,
    "parameters": parameters,
    "demo-plan": demo_plan,
    "readme": _included("README.md"),
    "contributing": _included("CONTRIBUTING.md"),
}


def _render_markers(markdown: str, page: str) -> str:
    def render(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in GENERATORS:
            raise ValueError(f"{page}: no generator for <!-- generated: {name} --> (known: {sorted(GENERATORS)})")
        return f"{match.group(0)}\n\n{GENERATORS[name]()}\n"

    return MARKER.sub(render, markdown)


def _repository_links(markdown: str, page_path: Path, repo_url: str | None) -> str:
    def relink(match: re.Match[str]) -> str:
        text, ups, target, anchor = match.groups()
        path = (page_path.parent / (ups + target)).resolve()
        if path.is_relative_to(ROOT / "docs") or not path.is_relative_to(ROOT) or not path.exists():
            return match.group(0)  # a page of the site, or a broken link the strict build reports
        relative = path.relative_to(ROOT).as_posix()
        if repo_url:
            kind = "tree" if path.is_dir() else "blob"
            return f"[{text}]({repo_url.rstrip('/')}/{kind}/main/{relative}{anchor or ''})"
        return text if text.strip("`") == relative else f"{text} (`{relative}`)"

    return OUTSIDE_LINK.sub(relink, markdown)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    source = Path(page.file.abs_src_path)
    markdown = _render_markers(markdown, page.file.src_path)
    return _repository_links(markdown, source, config.get("repo_url"))
