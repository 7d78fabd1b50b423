"""Holds HTTP exchanges to the OpenAPI documents beside this file, with jsonschema (Draft 2020-12, the
schema dialect of OpenAPI 3.1). Requests are checked as sent (headers, JSON or multipart body), answers
by status, content type, body and the ``x-forbidden-headers`` extension; ``x-max-total-bytes`` bounds the
files of a multipart property together."""

from __future__ import annotations

import json
import re
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from fnmatch import fnmatch
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import yaml
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from reframe_pipeline.domain.imaging import FORMATS, sniff

HERE = Path(__file__).parent
_BASE = "urn:contract"
_FORMATS = FormatChecker()


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


class Contract:
    def __init__(self, file_name: str) -> None:
        self.document: dict[str, Any] = yaml.safe_load((HERE / file_name).read_text())
        resource = Resource.from_contents(self.document, default_specification=DRAFT202012)
        self._registry: Registry[Any] = Registry().with_resource(_BASE, resource)

    def at(self, pointer: str) -> tuple[str, Any]:
        """The node at a JSON pointer, following OpenAPI ``$ref``s; returns its own pointer too."""
        node: Any = self.document
        for token in pointer.split("/")[1:]:
            key = token.replace("~1", "/").replace("~0", "~")
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, dict) and "$ref" in node:
            return self.at(node["$ref"].removeprefix("#"))
        return pointer, node

    def errors(self, schema_pointer: str, instance: Any) -> list[str]:
        """Where ``instance`` leaves the schema at ``schema_pointer`` (empty: it conforms)."""
        validator = Draft202012Validator(
            {"$ref": f"{_BASE}#{schema_pointer}"}, registry=self._registry, format_checker=_FORMATS
        )
        return [
            f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}" for e in validator.iter_errors(instance)
        ]

    def operation(self, method: str, url: str) -> str:
        """The pointer of the operation serving ``method url``; AssertionError when none does."""
        path = urlsplit(url).path
        for template in self.document["paths"]:
            if re.fullmatch(re.sub(r"\{[^/]+\}", "[^/]+", template), path):
                pointer = f"/paths/{_escape(template)}/{method.lower()}"
                if method.lower() in self.document["paths"][template]:
                    return pointer
        raise AssertionError(f"{method} {path} is not an operation of the contract")

    def check_request(self, request: requests.PreparedRequest) -> None:
        assert request.method and request.url
        op_pointer = self.operation(request.method, request.url)
        _, op = self.at(op_pointer)
        problems = []
        for index in range(len(op.get("parameters", []))):
            pointer, parameter = self.at(f"{op_pointer}/parameters/{index}")
            if parameter["in"] != "header":
                continue
            value = request.headers.get(parameter["name"])
            if value is None:
                if parameter.get("required"):
                    problems.append(f"header {parameter['name']}: missing")
                continue
            problems += [f"header {parameter['name']}: {e}" for e in self.errors(f"{pointer}/schema", value)]
        if "requestBody" in op:
            problems += self._body_problems(f"{op_pointer}/requestBody", request)
        assert not problems, f"{request.method} {request.url} leaves the contract: {problems}"

    def _body_problems(self, body_pointer: str, request: requests.PreparedRequest) -> list[str]:
        pointer, body = self.at(body_pointer)
        media = request.headers.get("Content-Type", "").split(";")[0].strip()
        if media not in body["content"]:
            return [f"Content-Type {media!r} is not one of {sorted(body['content'])}"]
        content_pointer = f"{pointer}/content/{_escape(media)}"
        raw = request.body if isinstance(request.body, bytes) else (request.body or "").encode()
        if media == "application/json":
            return self.errors(f"{content_pointer}/schema", json.loads(raw))
        form, problems = self._form(content_pointer, request.headers["Content-Type"], raw)
        return problems + self.errors(f"{content_pointer}/schema", form)

    def _form(self, content_pointer: str, content_type: str, raw: bytes) -> tuple[dict[str, Any], list[str]]:
        """A multipart body as the schema sees it (typed values, repeated parts as arrays, files opaque),
        and what breaks the encoding: part content types, repeated scalars, total bytes of files."""
        _, content = self.at(content_pointer)
        schema_pointer, schema = self.at(f"{content_pointer}/schema")
        encoding = content.get("encoding", {})
        message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
        form: dict[str, Any] = {}
        sizes: dict[str, int] = {}
        problems = []
        for part in message.iter_parts():
            assert isinstance(part, Message)
            name = str(part.get_param("name", header="content-disposition"))
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            property_schema = {}
            if name in schema.get("properties", {}):
                _, property_schema = self.at(f"{schema_pointer}/properties/{_escape(name)}")
            allowed = [t.strip() for t in encoding.get(name, {}).get("contentType", "").split(",") if t.strip()]
            if allowed and part.get_content_type() not in allowed:
                problems.append(f"part {name}: content type {part.get_content_type()} is not one of {allowed}")
            value = _form_value(part, payload, property_schema, allowed)
            sizes[name] = sizes.get(name, 0) + len(payload)
            if property_schema.get("type") == "array":
                form.setdefault(name, []).append(value)
            elif name in form:
                problems.append(f"part {name}: given more than once")
            else:
                form[name] = value
        for name, property_schema in schema.get("properties", {}).items():
            limit = property_schema.get("x-max-total-bytes")
            if limit is not None and sizes.get(name, 0) > limit:
                problems.append(f"part {name}: {sizes[name]} bytes in total, over {limit}")
        return form, problems

    def check_response(self, method: str, url: str, response: requests.Response) -> None:
        op_pointer = self.operation(method, url)
        _, responses = self.at(f"{op_pointer}/responses")
        status = str(response.status_code)
        key = status if status in responses else f"{status[0]}XX"
        assert key in responses, f"{method} {url} answered {status}, a status the contract does not list"
        pointer, answer = self.at(f"{op_pointer}/responses/{key}")
        problems = [
            f"header {h}: must not be sent" for h in answer.get("x-forbidden-headers", []) if h in response.headers
        ]
        media = response.headers.get("Content-Type", "").split(";")[0].strip()
        listed = next((m for m in answer.get("content", {}) if fnmatch(media, m)), None)
        if listed is None:
            problems.append(f"Content-Type {media!r} is not one of {sorted(answer.get('content', {}))}")
        elif media == "application/json":
            problems += self.errors(f"{pointer}/content/{_escape(listed)}/schema", response.json())
        elif listed == "image/*":
            fmt = sniff(response.content[:32])
            if fmt is None or FORMATS[fmt].mime != media:
                problems.append(f"the body is not the {media} image its Content-Type says ({fmt or 'unknown bytes'})")
        assert not problems, f"{method} {url} answered {status} outside the contract: {problems}"


def _form_value(part: Message, payload: bytes, schema: dict[str, Any], allowed: list[str]) -> Any:
    """A part's value as the schema types it (OpenAPI's form deserialisation): files are opaque strings,
    JSON parts are parsed, numbers converted where they parse (else left for the schema to refuse)."""
    if part.get_filename() is not None:
        return f"<file of {len(payload)} bytes>"
    text = payload.decode("utf-8", "replace")
    if allowed == ["application/json"]:
        try:
            return json.loads(text)
        except ValueError:
            return text
    kind = (schema.get("items") if schema.get("type") == "array" else schema) or {}
    converters: dict[str, Any] = {"integer": int, "number": float}
    try:
        return converters.get(kind.get("type", ""), str)(text)
    except ValueError:
        return text
