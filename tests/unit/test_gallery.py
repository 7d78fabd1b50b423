"""The review gallery's page: every key and value escaped, the filters, the totals, the sources beside their
variants, rejected and unreadable manifests as one card each."""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser
from typing import Any

import pytest

from reframe_cli import gallery

EVIL = 'uploads/<script>alert("k")</script>&.png'


def variant(name: str, status: str = "created", **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "key": f"reframed/x/{name}.png",
        "status": status,
        "width": 64,
        "height": 32,
        "provider": "segmind",
        "seed": 4242,
        "cost_usd": 0.075 if status == "created" else 0.0,
        "error": None,
        **fields,
    }


def manifest(key: str, *variants: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "source": {"bucket": "b", "key": key, "etag": "e"},
        "config": {"from": "object", "key": key + ".reframe.json"},
        "variants": list(variants),
        "error": None,
        "generated_at": "2026-11-25T03:00:00+00:00",
        **fields,
    }


def url(key: str) -> str:
    return "https://img.example/" + key


class Elements(HTMLParser):
    """The tags of a page and the text inside each: what a browser would build."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parsed(page: str) -> Elements:
    elements = Elements()
    elements.feed(page)
    return elements


def test_keys_and_values_holding_markup_are_text_not_elements():
    evil_variant = variant(
        '"><script>x()</script>',
        "failed",
        key=None,
        error={"code": "<b>", "message": "<img src=x onerror=alert(1)>"},
        note="<i>note</i>",
        fallback_reason={"code": "unsafe_image", "message": "<script>y()</script>"},
    )
    ok = variant("og", key="reframed/<script>/og.png")
    page = gallery.render([manifest(EVIL, evil_variant, ok)], url, title="<t>", regenerate="/regenerate")
    elements = parsed(page)
    assert [tag for tag, _ in elements.tags if tag in ("script", "i", "b")] == []
    assert [attrs for tag, attrs in elements.tags if tag == "img" and "onerror" in attrs] == []
    text = "".join(elements.text)
    assert EVIL in text  # shown, as text
    assert "<img src=x onerror=alert(1)>" in text
    assert "<script>y()</script>" in text
    # Attributes carry the key back unchanged (the regenerate form posts it).
    sources = [attrs["value"] for tag, attrs in elements.tags if tag == "input" and attrs.get("name") == "source"]
    assert sources == [EVIL, EVIL]
    names = [attrs["value"] for tag, attrs in elements.tags if tag == "input" and attrs.get("name") == "variant"]
    assert names == ['"><script>x()</script>', "og"]
    images = [attrs["src"] for tag, attrs in elements.tags if tag == "img"]
    assert images == ["https://img.example/reframed/<script>/og.png"]


def test_failed_and_flagged_variants_are_marked_for_the_filters():
    page = gallery.render(
        [
            manifest(
                "uploads/a.png",
                variant("ok"),
                variant("bad", "failed", error={"code": "http_500", "message": "down"}),
                variant("fb", provider="local", fallback_reason={"code": "unsafe_image", "message": "withheld"}),
                variant("warned", warning="source_altered"),
            ),
            manifest("uploads/b.png", variant("fine")),
        ],
        url,
        title="t",
        show="flagged",
    )
    elements = parsed(page)
    cards = {
        attrs["data-variant"]: set((attrs["class"] or "").split()) for tag, attrs in elements.tags if tag == "figure"
    }
    assert {name for name, classes in cards.items() if "failed" in classes} == {"bad"}
    assert {name for name, classes in cards.items() if "flagged" in classes} == {"fb", "warned"}
    sections = {
        attrs["data-source"]: set((attrs["class"] or "").split()) for tag, attrs in elements.tags if tag == "section"
    }
    assert sections == {"uploads/a.png": {"source", "has-failed", "has-flagged"}, "uploads/b.png": {"source"}}
    # The filter asked for is the one checked; the CSS hides what it does not keep.
    checked = [attrs["id"] for tag, attrs in elements.tags if tag == "input" and "checked" in attrs]
    assert checked == ["show-flagged"]
    assert "body:has(#show-failed:checked) figure.variant:not(.failed)" in page
    assert "fallback (unsafe_image): withheld" in page


def test_totals_count_cost_failures_and_rejected_sources():
    manifests = [
        manifest("uploads/a.png", variant("a"), variant("b", rendered_from_generation=True, cost_usd=0.0)),
        manifest("uploads/b.png", variant("c"), variant("d", "failed")),
        manifest("uploads/c.png", error={"code": "invalid_sidecar", "message": "targets[0]"}),
    ]
    t = gallery.totals(manifests)
    assert (t.sources, t.variants, t.failed, t.flagged, t.rejected_sources) == (3, 4, 1, 0, 1)
    assert round(t.cost_usd, 6) == 0.15
    assert t.by_status == {"created": 3, "failed": 1}
    page = gallery.render(manifests, url, title="t", notice="valid 24 h")
    totals_line = re.search(r'<p class="totals">(.*?)</p>', page)
    assert totals_line
    assert re.sub("<[^>]+>", "", totals_line.group(1)) == (
        "3 sources, 4 variants (3 created, 1 failed); 1 failed, 0 flagged, 1 source rejected; cost $0.150"
    )
    assert '<p class="notice">valid 24 h</p>' in page
    assert "invalid_sidecar: targets[0]" in page


def test_without_regenerate_or_refresh_the_page_has_no_form_and_no_reload():
    static = gallery.render([manifest("uploads/a.png", variant("a"))], url, title="t")
    assert "<form" not in static and "http-equiv" not in static
    live = gallery.render([manifest("uploads/a.png", variant("a"))], url, title="t", regenerate="/r", refresh_s=3)
    assert '<form method="post" action="/r">' in live
    assert '<meta http-equiv="refresh" content="3">' in live


def test_no_script_at_all():
    page = gallery.render([manifest(EVIL, variant("a"))], url, title="t", regenerate="/r", refresh_s=2)
    assert "<script" not in page.lower()


def test_progress_bar_counts_the_manifests_read():
    class S3:
        def get_paginator(self, _name: str) -> Any:
            class Pages:
                def paginate(self, **_: Any) -> list[dict[str, Any]]:
                    keys = ["r/a.png/manifest.json", "r/a.png/og.png", "r/b.png/manifest.json"]
                    return [{"Contents": [{"Key": k} for k in keys]}]

            return Pages()

        def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
            body = b"{broken" if Key.startswith("r/b") else b'{"source": {"key": "uploads/a.png"}, "variants": []}'
            return {"Body": io.BytesIO(body)}

    err = io.StringIO()
    found = gallery.load_manifests(S3(), "b", "r/", progress=err)
    assert [m["source"]["key"] for m in found] == ["uploads/a.png", "r/b.png"]
    assert found[1]["error"]["code"] == "unreadable_manifest"
    assert "0/2 manifests" in err.getvalue() and "2/2 manifests" in err.getvalue()
    assert err.getvalue().endswith("\n")


def test_expiry_is_stated_in_hours_or_minutes():
    assert gallery.expiry_text(86400) == "24 h"
    assert gallery.expiry_text(5400) == "1 h 30 min"
    assert gallery.expiry_text(600) == "10 min"


def test_a_rejected_source_has_no_regenerate_form():
    rejected = manifest("uploads/r.png", variant("1x1", "failed"), error={"code": "invalid_sidecar", "message": "m"})
    page = gallery.render([rejected, manifest("uploads/ok.png", variant("a"))], url, title="t", regenerate="/r")
    forms = [attrs for tag, attrs in parsed(page).tags if tag == "input" and attrs.get("name") == "source"]
    assert [attrs["value"] for attrs in forms] == ["uploads/ok.png"]


def test_one_source_and_one_variant_are_not_plural():
    page = gallery.render([manifest("uploads/a.png", variant("a"))], url, title="t")
    line = re.sub("<[^>]+>", "", re.search(r'<p class="totals">(.*?)</p>', page).group(1))  # type: ignore[union-attr]
    assert line == "1 source, 1 variant (1 created); 0 failed, 0 flagged, 0 sources rejected; cost $0.075"


def test_each_source_is_shown_beside_its_variants():
    page = gallery.render(
        [manifest("uploads/a.png", variant("og")), manifest("uploads/b.png", variant("sq"))],
        url,
        title="t",
        source_url=lambda key: "https://src.example/" + key,
    )
    tags = parsed(page).tags
    sources = [attrs["src"] for tag, attrs in tags if tag == "img" and attrs.get("class") == "source"]
    assert sources == ["https://src.example/uploads/a.png", "https://src.example/uploads/b.png"]
    # In each section, the source comes first, then its variants.
    images = [attrs["src"] for tag, attrs in tags if tag == "img"]
    assert images == [
        "https://src.example/uploads/a.png",
        "https://img.example/reframed/x/og.png",
        "https://src.example/uploads/b.png",
        "https://img.example/reframed/x/sq.png",
    ]


def test_a_rejected_source_is_one_card_not_failed_variants():
    rejected = manifest(
        "uploads/r.png",
        variant("1x1", "failed", key=None, error={"code": "invalid_sidecar", "message": "targets[0]: bad"}),
        variant("og", "failed", key=None, error={"code": "invalid_sidecar", "message": "targets[0]: bad"}),
        error={"code": "invalid_sidecar", "message": "targets[0]: bad"},
    )
    page = gallery.render([rejected, manifest("uploads/ok.png", variant("a"))], url, title="t", regenerate="/r")
    tags = parsed(page).tags
    assert [attrs["data-variant"] for tag, attrs in tags if tag == "figure" and "data-variant" in attrs] == ["a"]
    cards = [attrs for tag, attrs in tags if tag == "figure" and "rejected" in (attrs["class"] or "")]
    assert [card["data-source"] for card in cards] == ["uploads/r.png"]
    assert "invalid_sidecar: targets[0]: bad" in page and "nothing made for 1x1, og" in page
    t = gallery.totals([rejected])
    assert (t.sources, t.variants, t.failed, t.rejected_sources) == (1, 0, 0, 1)
    sections = {attrs["data-source"]: attrs["class"] for tag, attrs in tags if tag == "section"}
    assert sections["uploads/r.png"] == "source has-failed"  # shown by the "failed" filter


@pytest.mark.parametrize(
    "broken",
    [
        {"source": "uploads/x.png", "variants": [{"name": "a"}]},  # source not an object
        {"source": {"key": "uploads/x.png"}, "variants": "none"},
        {"source": {"key": "uploads/x.png"}, "variants": ["not an object"]},
        {"source": {"key": "uploads/x.png"}, "variants": [{"name": "a", "cost_usd": "lots"}]},
        {"source": {"key": "uploads/x.png"}, "config": "object", "variants": []},
    ],
)
def test_a_manifest_in_another_shape_is_one_error_card_and_the_rest_is_shown(broken):
    good = manifest("uploads/good.png", variant("og"))
    page = gallery.render([broken, good], url, title="t")
    tags = parsed(page).tags
    assert [attrs["data-variant"] for tag, attrs in tags if tag == "figure" and "data-variant" in attrs] == ["og"]
    assert "unreadable_manifest: not a manifest the pipeline writes" in page
    t = gallery.totals([broken, good])
    assert (t.sources, t.variants, t.unreadable, t.rejected_sources) == (2, 1, 1, 0)
    assert "1 manifest unreadable" in page
    assert gallery.seeds([broken, good]) == {("uploads/good.png", "og"): 4242}


def test_source_match_is_explained_with_its_threshold():
    scored = variant("og", source_match=0.6123, warnings=["source_altered"])
    page = gallery.render([manifest("uploads/a.png", scored)], url, title="t", match_min=0.85)
    legend = re.search(r'<p class="legend">(.*?)</p>', page)
    assert legend and "from 0 to 1" in legend.group(1) and "Below 0.85 (SOURCE_MATCH_MIN)" in legend.group(1)
    abbr = [attrs["title"] for tag, attrs in parsed(page).tags if tag == "abbr"]
    assert len(abbr) == 1 and "Below 0.85" in (abbr[0] or "")
    assert "<dd>0.61</dd>" in page
    unscored = gallery.render([manifest("uploads/a.png", variant("og"))], url, title="t")
    assert 'class="legend"' not in unscored and "<abbr" not in unscored


def test_a_local_engine_variant_says_a_new_seed_changes_nothing():
    page = gallery.render(
        [manifest("uploads/a.png", variant("loc", provider="local"), variant("seg"))], url, title="t", regenerate="/r"
    )
    assert page.count('class="note seed-note"') == 1
    figure = re.search(r'<figure class="[^"]*" data-variant="loc">(.*?)</figure>', page, re.DOTALL)
    assert figure and "The local engine ignores the seed: regenerate makes the same picture" in figure.group(1)


def test_the_form_carries_the_pages_token():
    page = gallery.render([manifest("uploads/a.png", variant("a"))], url, title="t", regenerate="/r", token="tok&1")
    tokens = [attrs["value"] for tag, attrs in parsed(page).tags if tag == "input" and attrs.get("name") == "token"]
    assert tokens == ["tok&1"]


def test_a_variant_no_longer_configured_has_no_regenerate_form():
    kept = manifest("uploads/a.png", variant("a"), variant("old", "unconfigured"))
    page = gallery.render([kept], url, title="t", regenerate="/r")
    forms = [attrs for tag, attrs in parsed(page).tags if tag == "input" and attrs.get("name") == "variant"]
    assert [attrs["value"] for attrs in forms] == ["a"]
