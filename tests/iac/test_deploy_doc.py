"""docs/deploy.md: its parameter table is rendered from template.yaml by the docs site's hook (docs/hooks.py),
and the page covers what a first deploy needs."""

from __future__ import annotations

import importlib.util
import re
from types import ModuleType
from typing import Any

from .conftest import ROOT

DOC = ROOT / "docs" / "deploy.md"


def hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_rendered_table_lists_every_template_parameter_with_its_default(template: dict[str, Any]):
    assert "<!-- generated: parameters -->" in DOC.read_text()
    rows = hooks().parameters().splitlines()[2:]
    rendered = {cells[0].strip("`"): cells[1] for cells in (row.strip("| ").split(" | ") for row in rows)}
    assert list(rendered) == list(template["Parameters"])
    for name, spec in template["Parameters"].items():
        default = str(spec.get("Default", ""))
        assert rendered[name] == (f"`{default}`" if default else "empty"), name


def section(title: str) -> str:
    text = DOC.read_text()
    assert f"\n## {title}\n" in text, title
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_the_page_covers_a_first_deploy(template: dict[str, Any]):
    assert "region" in section("Choosing a region")
    permissions = section("The permissions a deployer needs")
    assert all(service in permissions for service in ("CloudFormation", "IAM", "PassRole", "Lambda"))
    webhook = section("The webhook's signing secret")
    assert "aws secretsmanager create-secret" in webhook and "whsec_" in webhook
    check = section("Check the key with one call")
    assert re.search(r"aws s3 presign .*\$BUCKET", check) and '--image-url "$URL"' in check
    # The warning quotes the placeholder the stack really puts in the secret it creates.
    [placeholder] = [
        resource["Properties"]["SecretString"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::SecretsManager::Secret"
    ]
    key = section("Put the API key in the secret")
    assert "Upload nothing before the key is set" in key and f"`{placeholder}`" in key
    assert "`--parameter-overrides` replaces `samconfig.toml`'s `parameter_overrides`" in DOC.read_text()


def test_the_page_says_either_upload_order_works():
    first_image = section("First image")
    assert "sidecar first" not in first_image.lower()
    assert "either order" in first_image and "`SIDECAR_WAIT_S`" in first_image
