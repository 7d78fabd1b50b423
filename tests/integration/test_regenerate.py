"""The gallery's regenerate action over moto: a new seed in the object's sidecar, then the normal event path."""

from __future__ import annotations

import json
import threading

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


def test_the_server_refuses_a_form_from_another_site_and_answers_a_bad_one_with_the_reason(done: Stack):
    server = gallery_server.start(gallery_server.Gallery(done.s3, BUCKET, Settings.from_env()))
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        form = {"source": IMAGE, "variant": "thumb"}
        refused = requests.post(base + "regenerate", data=form, headers={"Origin": "https://evil.example"}, timeout=10)
        assert refused.status_code == 403
        assert IMAGE + ".reframe.json" not in done.keys("uploads/shoot/")  # no sidecar was written
        bad = requests.post(base + "regenerate", data={"source": IMAGE, "variant": "<nope>"}, timeout=10)
        assert (
            bad.status_code == 400
            and "not regenerated: no target of the sidecar makes &#x27;&lt;nope&gt;&#x27;" in bad.text
        )
        ok = requests.post(
            base + "regenerate", data=form, headers={"Origin": base.rstrip("/")}, timeout=10, allow_redirects=False
        )
        assert (ok.status_code, ok.headers["location"]) == (303, "./")
        assert "seed" in json.dumps(done.read_json(IMAGE + ".reframe.json"))
        assert (
            "regenerating uploads/shoot/&lt;b&gt;photo&lt;/b&gt;.jpg thumb with seed"
            in requests.get(base, timeout=10).text
        )
    finally:
        server.shutdown()
        server.server_close()
    assert not [t for t in threading.enumerate() if t.name == "gallery" and t.is_alive()]
