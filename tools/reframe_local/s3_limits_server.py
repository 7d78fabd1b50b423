"""moto's server, refusing the S3 writes that AWS refuses and moto stores: long keys, large metadata.

``python -m reframe_local.s3_limits_server -H 127.0.0.1 -p PORT`` serves what ``python -m moto.server``
serves (S3, SQS, DynamoDB, ``/moto-api/``). An S3 write (PUT object, CopyObject, multipart upload, POST
upload) whose key is over 1024 UTF-8 bytes, or whose user metadata is over 2048 bytes, gets S3's 400
error instead. Path-style addressing only: the bucket is the first path segment, the key the rest.

DynamoDB requests are applied one at a time: DynamoDB makes each conditional write atomic, moto checks
the condition and writes in two steps, so two concurrent writers could both pass one condition (a
shared provider slot taken twice, an idempotency lock held by two invocations).
"""

from __future__ import annotations

import argparse
import io
import os
import threading
import uuid
from collections.abc import Iterable
from urllib.parse import parse_qs
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment
from xml.sax.saxutils import escape

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.formparser import parse_form_data
from werkzeug.serving import run_simple
from werkzeug.wsgi import get_input_stream

MAX_KEY_BYTES = 1024
MAX_METADATA_BYTES = 2048
_META_HEADER = "HTTP_X_AMZ_META_"
_META_FIELD = "x-amz-meta-"


def _service(environ: WSGIEnvironment) -> str:
    """The service a request is signed for; unsigned requests are S3's, as moto routes them."""
    credential = environ.get("HTTP_AUTHORIZATION", "").partition("Credential=")[2].split(",")[0]
    if not credential:
        credential = parse_qs(environ.get("QUERY_STRING", "")).get("X-Amz-Credential", [""])[0]
    scope = credential.split("/")  # key id / date / region / service / aws4_request
    return scope[3] if len(scope) == 5 else "s3"


def _form_upload(environ: WSGIEnvironment) -> tuple[bytes, dict[str, bytes]]:
    body = get_input_stream(environ).read()
    environ["wsgi.input"] = io.BytesIO(body)  # read here, so moto is handed the bytes again
    _, form, files = parse_form_data({**environ, "wsgi.input": io.BytesIO(body)})
    upload = files.get("file")
    key = form.get("key", "").replace("${filename}", (upload.filename or "") if upload else "")
    metadata = {
        name[len(_META_FIELD) :]: value.encode() for name, value in form.items() if name.lower().startswith(_META_FIELD)
    }
    return key.encode(), metadata


def _object_write(environ: WSGIEnvironment) -> tuple[bytes, dict[str, bytes]] | None:
    """The key and user metadata (name without its prefix: value) an S3 request would store, else None."""
    method = environ["REQUEST_METHOD"]
    if method not in ("PUT", "POST") or _service(environ) != "s3":
        return None
    # WSGI strings carry the raw bytes as latin-1: encoding them back gives the UTF-8 the client sent.
    _, _, key = environ.get("PATH_INFO", "").encode("latin-1").removeprefix(b"/").partition(b"/")
    if key:
        headers = {name: value for name, value in environ.items() if name.startswith(_META_HEADER)}
        return key, {name[len(_META_HEADER) :]: value.encode("latin-1") for name, value in headers.items()}
    if method == "POST" and environ.get("CONTENT_TYPE", "").startswith("multipart/form-data"):
        return _form_upload(environ)
    return None


def _refusal(environ: WSGIEnvironment) -> tuple[str, str, int, int] | None:
    """(code, message, size, limit) of S3's answer to a write over a limit, else None."""
    write = _object_write(environ)
    if write is None:
        return None
    key, metadata = write
    if len(key) > MAX_KEY_BYTES:
        return "KeyTooLongError", "Your key is too long", len(key), MAX_KEY_BYTES
    size = sum(len(name) + len(value) for name, value in metadata.items())
    if size > MAX_METADATA_BYTES:
        message = "Your metadata headers exceed the maximum allowed metadata size"
        return "MetadataTooLarge", message, size, MAX_METADATA_BYTES
    return None


def with_s3_limits(app: WSGIApplication) -> WSGIApplication:
    """``app`` behind the S3 key and metadata limits, its DynamoDB requests applied one at a time."""
    dynamodb = threading.Lock()

    def limited(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if _service(environ) == "dynamodb":
            with dynamodb:
                return list(app(environ, start_response))  # the whole answer, inside the lock
        refusal = _refusal(environ)
        if refusal is None:
            return app(environ, start_response)
        code, message, size, limit = refusal
        get_input_stream(environ).read()  # drained, so a kept-alive connection stays in step
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{escape(message)}</Message><Size>{size}</Size>"
            f"<MaxSizeAllowed>{limit}</MaxSizeAllowed><RequestId>{uuid.uuid4().hex}</RequestId></Error>"
        ).encode()
        start_response("400 Bad Request", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
        return [body]

    return limited


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m reframe_local.s3_limits_server", description=__doc__)
    parser.add_argument("-H", "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("-p", "--port", type=int, required=True, help="port to bind")
    args = parser.parse_args(argv)
    # As moto.server does: moto writes its own URLs (SQS queue URLs) with this port.
    os.environ.setdefault("MOTO_PORT", str(args.port))
    app = with_s3_limits(DomainDispatcherApplication(create_backend_app))
    run_simple(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
