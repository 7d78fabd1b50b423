import json
import re
from pathlib import Path

import pytest

from reframe_cli import schema
from reframe_cli.cli import main
from reframe_pipeline.domain.sidecar import Sidecar, parse_sidecar

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "schemas" / "sidecar.schema.json"
SIDECAR_DOC = ROOT / "docs" / "sidecar.md"
EXAMPLE_FILES = sorted((ROOT / "examples" / "sidecars").rglob("*.json"))
# Only ```json blocks are sidecars; the editor settings are in a ```jsonc block.
DOC_EXAMPLES = re.findall(r"```json\n(.*?)```", SIDECAR_DOC.read_text(), flags=re.DOTALL)


def test_committed_schema_is_up_to_date():
    assert COMMITTED.read_text() == schema.render(), (
        "schemas/sidecar.schema.json is out of date: run `reframe schema > schemas/sidecar.schema.json`"
    )


def test_schema_command_prints_it(capsys):
    assert main(["schema"]) == 0
    assert capsys.readouterr().out == schema.render()


def test_schema_describes_the_model():
    document = json.loads(COMMITTED.read_text())
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert document["$id"] == schema.SCHEMA_ID
    assert document["title"] and document["description"]
    assert set(document["properties"]) == {field.alias or name for name, field in Sidecar.model_fields.items()}
    assert document["required"] == ["version", "targets"]
    assert document["additionalProperties"] is False
    assert set(document["$defs"]["Target"]["properties"]) >= {"resolution", "aspect_ratio", "size", "preset", "name"}
    for where in (document, document["$defs"]["Target"]):
        codes = where["properties"]["style_codes"]["anyOf"][0]["items"]
        assert codes["pattern"] == "^[0-9a-fA-F]{8}$"
        assert "8 hexadecimal characters" in codes["description"]


def test_the_docs_have_examples():
    assert len(DOC_EXAMPLES) >= 3 and EXAMPLE_FILES


@pytest.mark.parametrize("text", DOC_EXAMPLES, ids=lambda text: f"sidecar.md:{text[:30]}")
def test_every_example_in_the_docs_is_a_valid_sidecar(text):
    parse_sidecar(text.encode(), max_bytes=65536, max_targets=20)


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda path: path.relative_to(ROOT).as_posix())
def test_every_example_file_is_a_valid_sidecar(path):
    parse_sidecar(path.read_bytes(), max_bytes=65536, max_targets=20)


def test_committed_notice_schema_is_up_to_date():
    committed = ROOT / "schemas" / "notice.schema.json"
    assert committed.read_text() == schema.render(notice=True), (
        "schemas/notice.schema.json is out of date: run `reframe schema --notice > schemas/notice.schema.json`"
    )
