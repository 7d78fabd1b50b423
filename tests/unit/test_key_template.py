"""OUTPUT_KEY_TEMPLATE (domain/key_template.py): placeholders, empty segments, and the templates refused at
start-up: an unknown placeholder, two deliverables on one key, a key under the input prefix."""

from __future__ import annotations

import pytest

from reframe_pipeline.domain.key_template import DEFAULT_TEMPLATE, KeyFacts, KeyTemplateError, parse_template

HERO = KeyFacts("shoot/hero.png", "og", 1200, 628, "avif", "3f9a02c1" + "0" * 56)
TOP = KeyFacts("hero.png", "og", 600, 314, "jpg", "81bd77e0" + "1" * 56)


def template(text: str, *, same_bucket: bool = True):
    return parse_template(
        text, output_prefix="reframed/", input_prefix="uploads/", style_prefix="styles/", same_bucket=same_bucket
    )


def test_the_default_gives_the_keys_of_before() -> None:
    default = template("")
    assert default.text == DEFAULT_TEMPLATE
    assert default.render(HERO) == "reframed/shoot/hero.png/og.avif"
    assert default.render(TOP) == "reframed/hero.png/og.jpg"


def test_every_placeholder_and_an_empty_folder_collapsing() -> None:
    every = template("img/{dir}/{stem}/{file}-{name}-{width}x{height}.{hash}.{ext}/{path}")
    assert every.render(HERO) == "img/shoot/hero/hero.png-og-1200x628.3f9a02c1.avif/shoot/hero.png"
    assert every.render(TOP) == "img/hero/hero.png-og-600x314.81bd77e0.jpg/hero.png"  # no "//" where {dir} was
    assert "//" not in every.render(TOP)


def test_the_example_of_the_docs() -> None:
    example = template("img/{dir}/{stem}/{name}-{width}w.{hash}.{ext}")
    assert example.render(HERO) == "img/shoot/hero/og-1200w.3f9a02c1.avif"
    assert example.content_addressed and example.has_width


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("img/{path}/{nam}.{ext}", "unknown placeholder {nam}"),
        ("img/{path}/{name:>8}.{ext}", "unknown placeholder {name:>8}"),
        ("img/{path}/{name.{ext}", "write placeholders as"),
        ("img/{path}/{width}.{ext}", "needs {name}"),
        ("img/{dir}/{name}.{ext}", "needs {path}, or {dir} with {file}"),
        ("img/{dir}/{stem}/{name}.{ext}", "hero.png and hero.jpg need {hash}"),
        ("img/{path}/{name}", "needs {ext} (or {hash})"),
        ("img/{path}-{name}.{ext}", "gives two deliverables the key"),
        ("img/{dir}-{file}/{name}.{ext}", "gives two deliverables the key"),
        ("img/{path}/{name}{width}.{ext}", "gives two deliverables the key"),
        ("/img/{path}/{name}.{ext}", "do not start with '/'"),
    ],
)
def test_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(KeyTemplateError, match=reason.replace("{", r"\{").replace("(", r"\(").replace(")", r"\)")):
        template(text, same_bucket=False)


def test_a_collision_names_both_deliverables() -> None:
    with pytest.raises(KeyTemplateError) as caught:
        template("img/{path}-{name}.{ext}")
    assert "source 'a.png' target 'x-y'" in str(caught.value) and "source 'a.png-x' target 'y'" in str(caught.value)


def test_hash_tells_widths_and_formats_apart_but_not_targets() -> None:
    assert template("img/{path}/{name}.{hash}").has_width
    with pytest.raises(KeyTemplateError, match=r"needs \{name\}"):
        template("img/{path}/{hash}.{ext}")


def test_without_width_one_width_per_target() -> None:
    assert not template("").has_width
    assert template("{prefix}{path}/{name}-{width}.{ext}").has_width


@pytest.mark.parametrize("text", ["{path}/{name}.{ext}", "up{path}/{name}.{ext}", "uploads/x/{path}/{name}.{ext}"])
def test_in_the_source_bucket_no_key_under_the_input_prefix(text: str) -> None:
    with pytest.raises(KeyTemplateError, match="could land under INPUT_PREFIX 'uploads/'"):
        template(text)
    assert template(text, same_bucket=False).text == text  # another bucket: no loop


def test_nor_under_the_style_prefix() -> None:
    with pytest.raises(KeyTemplateError, match="STYLE_PREFIX"):
        template("styles/{path}/{name}.{ext}")


def test_under_the_output_prefix_or_a_folder_apart() -> None:
    assert template("{prefix}{path}/{name}.{ext}").literal_start == "reframed/"
    assert template("img/{path}/{name}.{ext}").literal_start == "img/"
