"""AWS faults for integration tests: answer a chosen request of the handler's own boto3 clients with a chosen
error, or send it to an endpoint that accepts and never answers.

The faults are botocore event hooks on the session every handler client is built from (adapters/aws.py). An
error is answered at ``before-send``, after the request is signed and in place of the HTTP exchange, so botocore
parses it and its own retries run, as they would against AWS. Everything else still reaches the moto server.

    aws_faults.fail("dynamodb", "UpdateItem", code="ProvisionedThroughputExceededException", times=3,
                    when=lambda params: params["Key"]["id"]["S"].startswith("journal#"))
    aws_faults.slow_down("reframed/")            # S3 SlowDown (503) on writes under a prefix
    aws_faults.hang("events", "PutEvents")       # a socket that accepts the connection and never replies
    aws_faults.before("s3", "PutObject", action)  # another writer acts just before that request
    aws_faults.calls("dynamodb", "UpdateItem")   # what was asked (each call once), to assert on
    aws_faults.clear()                           # the outage is over
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse

from reframe_pipeline import handler
from reframe_pipeline.adapters import aws

Params = dict[str, Any]
S3_WRITES = ("PutObject", "CopyObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload")


@dataclass
class _Rule:
    service: str
    operation: str
    when: Callable[[Params], bool]
    times: int | None  # None: every matching request
    answer: Callable[[Any], AWSResponse | None]
    hits: int = 0

    def claims(self, service: str, operation: str, params: Params) -> bool:
        if (service, operation) != (self.service, self.operation) or not self.when(params):
            return False
        if self.times is not None and self.hits >= self.times:
            return False
        self.hits += 1
        return True


@dataclass
class _Call:
    service: str
    operation: str
    params: Params


class _Raw:
    """The body of a made-up response, as botocore reads it from urllib3."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        yield self._body


def _error_response(request: Any, service: str, code: str, status: int, message: str) -> AWSResponse:
    headers: Any  # botocore takes any mapping here
    if service == "s3":  # rest-xml
        body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
        headers = {"Content-Type": "application/xml"}
    else:  # the JSON protocols of DynamoDB, EventBridge, Secrets Manager
        body = json.dumps({"__type": code, "message": message}).encode()
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-query-error": f"{code};Sender"}
    return AWSResponse(request.url, status, headers, _Raw(body))


class SilentEndpoint:
    """A loopback socket that accepts connections and never answers them, until closed."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._server.accept()
            except OSError:  # closed
                return
            self._held.append(connection)

    def close(self) -> None:
        self._server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() (close alone does not)
        self._server.close()
        self._thread.join(5)
        for connection in self._held:
            connection.close()


@dataclass
class AwsFaults:
    """The rules, the requests seen, and the hooks that apply them to every session the handler builds."""

    rules: list[_Rule] = field(default_factory=list)
    seen: list[_Call] = field(default_factory=list)
    _current: threading.local = field(default_factory=threading.local)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _silent: SilentEndpoint | None = None

    def fail(
        self,
        service: str,
        operation: str,
        code: str,
        status: int = 400,
        times: int | None = None,
        when: Callable[[Params], bool] = lambda params: True,
        message: str = "injected by the test",
    ) -> None:
        """Answer ``times`` matching requests (each attempt counts, botocore's retries included) with ``code``."""
        answer = lambda request: _error_response(request, service, code, status, message)  # noqa: E731
        self._add(_Rule(service, operation, when, times, answer))

    def slow_down(self, prefix: str, times: int | None = None) -> None:
        """S3 throttles writes under ``prefix``: 503 SlowDown."""
        for operation in S3_WRITES:
            self.fail("s3", operation, "SlowDown", 503, times, lambda p: str(p.get("Key", "")).startswith(prefix))

    def hang(self, service: str, operation: str, when: Callable[[Params], bool] = lambda params: True) -> None:
        """Send matching requests to an endpoint that accepts the connection and never replies."""
        if self._silent is None:
            self._silent = SilentEndpoint()
        silent = self._silent.url

        def redirect(request: Any) -> None:
            path = request.url.split("/", 3)[3] if request.url.count("/") >= 3 else ""
            request.url = f"{silent}/{path}"

        self._add(_Rule(service, operation, when, None, redirect))

    def before(
        self, service: str, operation: str, action: Callable[[], None], when: Callable[[Params], bool] = lambda p: True
    ) -> None:
        """Run ``action`` once, just before the first matching request is sent (a race lost at that moment)."""
        self._add(_Rule(service, operation, when, 1, lambda request: action()))

    def clear(self) -> None:
        """No more faults: every request reaches moto again."""
        with self._lock:
            self.rules.clear()

    def calls(self, service: str, operation: str) -> list[Params]:
        """The parameters of every matching request the handler made (each call once, before its retries)."""
        with self._lock:
            return [c.params for c in self.seen if (c.service, c.operation) == (service, operation)]

    def attach(self, session: boto3.session.Session) -> None:
        session.events.register("before-parameter-build", self._on_call)
        session.events.register("before-send", self._before_send)

    def close(self) -> None:
        if self._silent is not None:
            self._silent.close()

    def _add(self, rule: _Rule) -> None:
        with self._lock:
            self.rules.append(rule)

    def _on_call(self, model: Any, params: Params, **kwargs: Any) -> None:
        # The call's own parameters (before-call has them serialized). botocore sends and retries in the
        # calling thread: the send hook finds the call here.
        service = model.service_model.service_name
        self._current.call = _Call(service, model.name, params)
        with self._lock:
            self.seen.append(self._current.call)

    def _before_send(self, request: Any, **kwargs: Any) -> Any:  # an AWSResponse answers in place of AWS
        call: _Call | None = getattr(self._current, "call", None)
        if call is None:
            return None
        with self._lock:
            rule = next((r for r in self.rules if r.claims(call.service, call.operation, call.params)), None)
        return rule.answer(request) if rule else None


@dataclass
class _Hooked:
    """``aws.session`` for the test: a new session, with the faults attached, until ``handler.reset()``."""

    faults: AwsFaults
    _session: boto3.session.Session | None = None

    def __call__(self) -> boto3.session.Session:
        if self._session is None:
            self._session = boto3.session.Session()
            self.faults.attach(self._session)
        return self._session

    def cache_clear(self) -> None:
        self._session = None


def install(monkeypatch: Any) -> AwsFaults:
    faults = AwsFaults()
    monkeypatch.setattr(aws, "session", _Hooked(faults))
    handler.reset()  # clients built before the hooks would miss them
    return faults
