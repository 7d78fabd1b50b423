"""The gallery's regenerate action over moto: a new seed in the object's sidecar, then the normal event path;
the gallery server over a real socket: only its own host names, and only forms carrying its page's token."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests

from reframe_cli import gallery_server
from reframe_cli.errors import UserError
from reframe_cli.regenerate import regenerate
from reframe_pipeline.settings import Settings

from .conftest import BUCKET, Stack, s3_event

FOLDER_DEFAULT = {"version": 1, "targets": [{"resolution": "1536x640"}, {"size": "64x64", "name": "thumb"}]}
IMAGE = "uploads/shoot/<b>photo</b>.jpg"


@pytest.fixture
def done(stack: Stack) -> Stack:
    stack.put("uploads/shoot/_reframe.json", FOLDER_DEFAULT)
    stack.put_image(IMAGE)
    stack.invoke(s3_event(IMAGE))
    assert stack.read_json("reframed/shoot/<b>photo</b>.jpg/manifest.json")["config"]["from"] == "folder"
    return stack


def test_a_folder_default_becomes_the_objects_sidecar_with_a_new_seed_and_the_event_makes_the_variant(done: Stack):
    settings = Settings.from_env()
    asked = regenerate(done.s3, BUCKET, settings, IMAGE, "thumb")
    assert (asked.sidecar_key, asked.created_sidecar) == (IMAGE + ".reframe.json", True)
    sidecar = done.read_json(asked.sidecar_key)
    assert sidecar == {
        "version": 1,
        "targets": [{"resolution": "1536x640"}, {"size": "64x64", "name": "thumb", "seed": asked.seed}],
    }
    paid = done.stats()
    done.invoke(s3_event(asked.sidecar_key))  # what the bucket notification sends for the sidecar
    manifest = done.read_json("reframed/shoot/<b>photo</b>.jpg/manifest.json")
    by_name = {v["name"]: v for v in manifest["variants"]}
    assert manifest["config"] == {"from": "object", "key": asked.sidecar_key}
    assert (by_name["thumb"]["status"], by_name["thumb"]["seed"]) == ("created", asked.seed)
    assert by_name["1536x640"]["status"] == "existing"
    assert done.stats() != paid  # one new generation was asked for

    again = regenerate(done.s3, BUCKET, settings, IMAGE, "thumb")  # now from the object's own sidecar
    assert not again.created_sidecar and again.seed != asked.seed
    assert done.read_json(asked.sidecar_key)["targets"][1]["seed"] == again.seed


def test_nothing_to_regenerate_is_said(done: Stack):
    settings = Settings.from_env()
    with pytest.raises(UserError, match="no manifest"):
        regenerate(done.s3, BUCKET, settings, "uploads/none.jpg", "thumb")
    with pytest.raises(UserError, match="no target of the sidecar makes 'nope'"):
        regenerate(done.s3, BUCKET, settings, IMAGE, "nope")
    with pytest.raises(UserError, match="not an image under the input prefix"):
        regenerate(done.s3, BUCKET, settings, "elsewhere/x.jpg", "thumb")


@pytest.fixture
def gallery(done: Stack) -> Iterator[str]:
    """The gallery server over the stack's bucket, on a real socket: its base URL."""
    server = gallery_server.start(gallery_server.Gallery(done.s3, BUCKET, Settings.from_env()))
    try:
        yield f"http://127.0.0.1:{server.port}/"
    finally:
        server.stop()
    assert not [t for t in threading.enumerate() if t.name == "gallery" and t.is_alive()]


def page_token(base: str, host: str | None = None) -> str:
    page = requests.get(base, headers={"Host": host} if host else {}, timeout=10)
    assert page.status_code == 200
    found = re.search(r'name="token" value="([^"]+)"', page.text)
    assert found, "the page has no regenerate form"
    return found.group(1)


def sidecar_written(stack: Stack) -> bool:
    return IMAGE + ".reframe.json" in stack.keys("uploads/shoot/")


def test_the_normal_flow_posts_the_pages_token_and_regenerates(done: Stack, gallery: str):
    port = urlsplit(gallery).port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):  # every name the server is bound under
        assert requests.get(gallery, headers={"Host": host}, timeout=10).status_code == 200
    form = {"source": IMAGE, "variant": "thumb", "token": page_token(gallery)}
    ok = requests.post(
        gallery + "regenerate", data=form, headers={"Origin": gallery.rstrip("/")}, timeout=10, allow_redirects=False
    )
    assert (ok.status_code, ok.headers["location"]) == (303, "./")
    assert "seed" in json.dumps(done.read_json(IMAGE + ".reframe.json"))
    assert (
        "regenerating uploads/shoot/&lt;b&gt;photo&lt;/b&gt;.jpg thumb with seed"
        in requests.get(gallery, timeout=10).text
    )


def test_a_rebound_host_name_gets_nothing_not_even_the_page(done: Stack, gallery: str):
    """DNS rebinding: another site's name resolving to 127.0.0.1 sends its own name as Host."""
    port = urlsplit(gallery).port
    token = page_token(gallery)  # even with the real token, read some other way
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1:{port + 1}", f"localhost.evil.example:{port}"):
        headers = {"Host": host, "Origin": f"http://{host}"}
        for path in ("", "version", "nope"):
            got = requests.get(gallery + path, headers={"Host": host}, timeout=10)
            assert got.status_code == 421 and "X-Amz-Signature" not in got.text and "token" not in got.text
        form = {"source": IMAGE, "variant": "thumb", "token": token}
        posted = requests.post(gallery + "regenerate", data=form, headers=headers, timeout=10, allow_redirects=False)
        assert posted.status_code == 421
    assert not sidecar_written(done)  # nothing regenerated, nothing paid


@pytest.mark.parametrize("token", [None, "", "wrong", "x" * 43])
def test_a_form_without_the_pages_token_is_refused_and_regenerates_nothing(done: Stack, gallery: str, token):
    form = {"source": IMAGE, "variant": "thumb"} | ({} if token is None else {"token": token})
    refused = requests.post(gallery + "regenerate", data=form, timeout=10, allow_redirects=False)
    assert refused.status_code == 403 and "token" in refused.text
    assert not sidecar_written(done)


def test_the_server_refuses_a_form_from_another_site_and_answers_a_bad_one_with_the_reason(done: Stack, gallery: str):
    form = {"source": IMAGE, "variant": "thumb", "token": page_token(gallery)}
    refused = requests.post(gallery + "regenerate", data=form, headers={"Origin": "https://evil.example"}, timeout=10)
    assert refused.status_code == 403
    assert not sidecar_written(done)
    too_large = requests.post(gallery + "regenerate", data=form | {"pad": "x" * 20000}, timeout=10)
    assert too_large.status_code == 413 and not sidecar_written(done)
    bad = requests.post(gallery + "regenerate", data=form | {"variant": "<nope>"}, timeout=10)
    assert (
        bad.status_code == 400 and "not regenerated: no target of the sidecar makes &#39;&lt;nope&gt;&#39;" in bad.text
    )
