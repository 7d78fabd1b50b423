"""The emulator's mutable state: runtime configuration, injected faults, statistics, stored results and
Segmind v2 jobs."""

from __future__ import annotations

import dataclasses
import random
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# How Segmind's v1 answers carry the image: the bytes themselves, or JSON with it in base64 or at a URL.
ResponseFormat = Literal["image", "json-base64", "json-url"]
# How every generated image is encoded: JPEG, as Segmind answers; PNG on request.
ImageFormat = Literal["jpeg", "png"]
# "reframe": the local engine extends the source (plausible pictures); "fast": the source, centred and scaled to
# fit as the reframe keeps it, on flat grey margins, so that on a small machine benchmarks measure the client, not
# the emulator's rendering.
RenderMode = Literal["reframe", "fast"]
JobStatus = Literal["QUEUED", "PROCESSING", "COMPLETED", "FAILED"]
Api = Literal["segmind", "ideogram"]  # whose contract an endpoint follows

# By default each endpoint answers as its contract says; faults are the only way to get anything else.
# Whole-call faults replace the exchange, answered the way the endpoint's API answers that status: "429"
# (Retry-After in seconds), "429-date" (as an HTTP date) and "429-no-retry-after" on Segmind, which may or
# may not send one; on Ideogram every 429 kind is its "inflight_limit", never with Retry-After. A "401"
# echoes the key it received, as real services sometimes do: the client must scrub it. A status an API
# never sends is used up without effect on its endpoints (NOT_IN_CONTRACT): 406 is only Segmind's
# (insufficient credits), "402" and "402-daily-limit" only Ideogram's.
# The other faults let the call run and then change it: "slow:<ms>" delays it (past any client's deadline if
# asked; the call still runs and bills, as a real provider's would), "garbage" and "truncated" spoil the
# image, "unsafe" withholds it, "wrong-size" makes it 64 px narrower than asked, "result-503" makes the
# first GET of its result URL answer 503 ("result-503:<n>": the first n GETs), "v2-fail" ends a v2 job FAILED.
# A fault that does not apply to the call that takes it (e.g. "v2-fail" on v1) is used up without effect.
WHOLE_CALL_FAULTS = frozenset(
    {"429", "429-no-retry-after", "429-date", "500", "502", "503", "504", "400", "401", "403", "404", "406"}
    | {"402", "402-daily-limit", "html-500", "reset"}
)
NOT_IN_CONTRACT: dict[str, frozenset[str]] = {
    "segmind": frozenset({"402", "402-daily-limit"}),
    "ideogram": frozenset({"406"}),
}
# "repaint", "offset" and "scaled" change the picture, not the exchange (api.render): the middle of the
# source painted over, or the source placed off-centre at 60 % of its fitted size, or centred at 50 %.
PICTURE_FAULTS = frozenset({"repaint", "offset", "scaled"})
FAULT_KINDS = (
    WHOLE_CALL_FAULTS | PICTURE_FAULTS | {"ok", "garbage", "truncated", "unsafe", "wrong-size", "result-503", "v2-fail"}
)
# Faults whose answer carries no usable image: not billed.
SPOILING_FAULTS = frozenset({"garbage", "truncated", "unsafe"})
_SLOW = re.compile(r"slow:(\d{1,7})")
_RESULT_503 = re.compile(r"result-503(?::(\d{1,4}))?")
_MAX_CALLS_KEPT = 10_000
STARTING_CREDITS = 1000.0


def check_fault(kind: str) -> str:
    if kind in FAULT_KINDS or _SLOW.fullmatch(kind) or _RESULT_503.fullmatch(kind):
        return kind
    raise ValueError(f"unknown fault {kind!r}; known: {', '.join(sorted(FAULT_KINDS))}, slow:<ms>, result-503:<n>")


def slow_ms(fault: str | None) -> int:
    """The delay of a ``slow:<ms>`` fault, else 0."""
    match = _SLOW.fullmatch(fault or "")
    return int(match[1]) if match else 0


def result_failures(fault: str | None) -> int:
    """How many GETs of a call's result URL answer 503 (a ``result-503`` or ``result-503:<n>`` fault)."""
    match = _RESULT_503.fullmatch(fault or "")
    return int(match[1] or 1) if match else 0


FaultKind = Annotated[str, AfterValidator(check_fault)]


@dataclass(frozen=True)
class EmulatorConfig:
    api_key: str
    latency_ms: int = 0
    max_in_flight: int | None = None  # None: no limit
    square_only: bool = False
    max_source_bytes: int | None = None
    max_source_pixels: int | None = None
    response_format: ResponseFormat = "image"
    image_format: ImageFormat = "jpeg"
    render: RenderMode = "reframe"
    result_ttl_s: float = 60.0
    fetch_timeout_s: float = 10.0
    serve_v2: bool = True  # False: Segmind's v2 answers 404 "model not found", as for a model it lacks

    def public(self) -> dict[str, Any]:
        """Everything but the key, for the admin endpoints."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "api_key"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ConfigUpdate(_Strict):
    """Body of ``POST /_emulator/config``: any subset of the runtime settings."""

    # Only the fields given are applied; null lifts a limit.
    latency_ms: int = Field(0, ge=0, le=600_000)
    max_in_flight: int | None = Field(None, ge=1)
    square_only: bool = False
    max_source_bytes: int | None = Field(None, ge=1)
    max_source_pixels: int | None = Field(None, ge=1)
    response_format: ResponseFormat = "image"
    image_format: ImageFormat = "jpeg"
    render: RenderMode = "reframe"
    result_ttl_s: float = Field(60.0, gt=0, le=86_400)
    serve_v2: bool = True


class RandomFaults(_Strict):
    rate: float = Field(ge=0, le=1)
    seed: int = 0
    kinds: list[FaultKind] = Field(default_factory=lambda: ["429", "500", "503"], min_length=1)


class FaultsUpdate(_Strict):
    """Body of ``POST /_emulator/faults``: a script replaces the pending one; ``random: null`` stops it."""

    script: list[FaultKind] | None = None
    random: RandomFaults | None = None


@dataclass
class Call:
    """One API call as the stats report it."""

    endpoint: str
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    resolution: str | None = None
    seed: int | None = None
    rendering_speed: str | None = None
    status: int = 0  # 0: the connection was closed without an answer
    source_size: tuple[int, int] | None = None
    source_digest: str | None = None  # sha256 of the source's bytes: which upload a call was for
    style_references: int = 0  # style reference images received and checked
    duration_ms: float = 0.0
    fault: str | None = None
    billed: int = 0  # generations charged for this call
    # The reset it started after: a call still running when the emulator is reset (a slow one whose
    # client gave up) must not count in the stats that follow.
    epoch: int = 0
    started: float = field(default_factory=time.monotonic)  # when the request arrived: latency_ms counts from it

    @property
    def api(self) -> Api:
        return "ideogram" if self.endpoint == "ideogram" else "segmind"

    def public(self) -> dict[str, Any]:
        """As the stats report it."""
        document = {k: v for k, v in dataclasses.asdict(self).items() if k not in ("epoch", "started")}
        return {**document, "source_size": list(self.source_size) if self.source_size else None}


@dataclass
class StoredResult:
    """An image served at a result URL until it expires."""

    content_type: str
    body: bytes
    expires: float  # monotonic
    failures: int  # the next GETs that answer 503 (a "result-503" fault)


@dataclass
class Job:
    """A Segmind v2 request: queued, run in the background, kept ``result_ttl_s`` once ended."""

    status: JobStatus = "QUEUED"
    created: float = field(default_factory=time.monotonic)
    started: float | None = None
    ended: float | None = None
    output: str | None = None  # the result's URL once COMPLETED
    error: str | None = None  # why it FAILED

    def metrics(self) -> dict[str, float]:
        assert self.started is not None and self.ended is not None
        return {
            "queue_ms": round((self.started - self.created) * 1000, 1),
            "processing_ms": round((self.ended - self.started) * 1000, 1),
        }


# Long for a reason: every piece of the emulator's mutable state behind one lock (config, faults, stats,
# results, v2 jobs); split apart, a reset could leave half of it stale.
class EmulatorState:
    """Thread-safe: every handler thread goes through these methods."""

    def __init__(self, config: EmulatorConfig) -> None:
        self._lock = threading.Lock()
        self.config = config
        self._results: dict[str, StoredResult] = {}
        self._jobs: dict[str, Job] = {}
        self._epoch = 0
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._epoch += 1
            self._script: deque[str] = deque()
            self._random: RandomFaults | None = None
            self._rng = random.Random(0)  # noqa: S311 - reproducible on purpose, not secret
            self._in_flight = 0
            self._counts = {
                "requests": 0,
                "billed": 0,
                "rejected_429": 0,
                "faults_injected": 0,
                "max_in_flight_seen": 0,
                "largest_source_bytes": 0,
                "largest_source_pixels": 0,
                "results_served": 0,
            }
            self._by_status: dict[str, int] = {}
            self._by_endpoint: dict[str, int] = {}
            self._calls: deque[Call] = deque(maxlen=_MAX_CALLS_KEPT)
            self._credits = STARTING_CREDITS
            self._results.clear()
            self._jobs.clear()

    def configure(self, update: ConfigUpdate) -> EmulatorConfig:
        with self._lock:
            self.config = dataclasses.replace(self.config, **update.model_dump(exclude_unset=True))
            return self.config

    def set_faults(self, update: FaultsUpdate) -> dict[str, Any]:
        with self._lock:
            if "script" in update.model_fields_set:
                self._script = deque(update.script or [])
            if "random" in update.model_fields_set:
                self._random = update.random
                self._rng = random.Random(update.random.seed if update.random else 0)  # noqa: S311
            return self._faults_locked()

    def faults(self) -> dict[str, Any]:
        with self._lock:
            return self._faults_locked()

    def _faults_locked(self) -> dict[str, Any]:
        return {"script": list(self._script), "random": self._random.model_dump() if self._random else None}

    def next_fault(self) -> str | None:
        """The fault for the call starting now: the script first, then the random draw; None if none."""
        with self._lock:
            if self._script:
                kind: str | None = self._script.popleft()
            elif self._random and self._rng.random() < self._random.rate:
                kind = self._rng.choice(self._random.kinds)
            else:
                kind = None
            if kind == "ok":
                kind = None
            if kind is not None:
                self._counts["faults_injected"] += 1
            return kind

    def begin(self, endpoint: str) -> Call:
        """A new call; what it does is counted until the next reset."""
        with self._lock:
            return Call(endpoint=endpoint, epoch=self._epoch)

    def admit(self, call: Call) -> bool:
        """Take an in-flight slot, or count a rejection when the limit is reached."""
        with self._lock:
            if call.epoch != self._epoch:
                return True  # neither takes nor gives back a slot: reset zeroed them
            limit = self.config.max_in_flight
            if limit is not None and self._in_flight >= limit:
                self._counts["rejected_429"] += 1
                return False
            self._in_flight += 1
            self._counts["max_in_flight_seen"] = max(self._counts["max_in_flight_seen"], self._in_flight)
            return True

    def release(self, call: Call) -> None:
        with self._lock:
            if call.epoch == self._epoch:
                self._in_flight -= 1

    def saw_source(self, call: Call, nbytes: int, pixels: int) -> None:
        with self._lock:
            if call.epoch != self._epoch:
                return
            self._counts["largest_source_bytes"] = max(self._counts["largest_source_bytes"], nbytes)
            self._counts["largest_source_pixels"] = max(self._counts["largest_source_pixels"], pixels)

    def spend(self, call: Call, credits: float) -> float:
        """Charge a generation; returns the credits left."""
        with self._lock:
            if call.epoch == self._epoch:
                self._credits = round(self._credits - credits, 6)
            return self._credits

    def record(self, call: Call, billed: int) -> None:
        with self._lock:
            if call.epoch != self._epoch:
                return
            self._counts["requests"] += 1
            self._counts["billed"] += billed
            call.billed = billed
            key = str(call.status)
            self._by_status[key] = self._by_status.get(key, 0) + 1
            self._by_endpoint[call.endpoint] = self._by_endpoint.get(call.endpoint, 0) + 1
            self._calls.append(call)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                **self._counts,
                "in_flight": self._in_flight,
                "by_status": dict(self._by_status),
                "by_endpoint": dict(self._by_endpoint),
                "remaining_credits": self._credits,
                "calls": [call.public() for call in self._calls],
            }

    def put_result(self, call: Call, body: bytes, content_type: str, ext: str) -> str:
        """Keep a call's result for ``result_ttl_s``; returns its file name under ``/_emulator/results/``."""
        now = time.monotonic()
        name = f"{uuid.uuid4().hex}.{ext}"
        with self._lock:
            for key in [k for k, result in self._results.items() if result.expires <= now]:
                del self._results[key]
            expires = now + self.config.result_ttl_s
            self._results[name] = StoredResult(content_type, body, expires, result_failures(call.fault))
        return name

    def get_result(self, name: str) -> StoredResult | None:
        """The result as this GET must answer it: each of ``failures`` means 503; None if unknown or expired."""
        with self._lock:
            result = self._results.get(name)
            if result is None or result.expires <= time.monotonic():
                return None
            answer = dataclasses.replace(result)
            if result.failures:
                result.failures -= 1
            else:
                self._counts["results_served"] += 1
            return answer

    def add_job(self, request_id: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in [k for k, job in self._jobs.items() if self._expired(job, now)]:
                del self._jobs[key]
            self._jobs[request_id] = Job()

    def start_job(self, request_id: str) -> None:
        with self._lock:
            if job := self._jobs.get(request_id):  # gone if the emulator was reset meanwhile
                job.status, job.started = "PROCESSING", time.monotonic()

    def end_job(self, request_id: str, *, output: str | None = None, error: str | None = None) -> None:
        """COMPLETED with its output URL, or FAILED with the error."""
        with self._lock:
            if job := self._jobs.get(request_id):
                job.status = "FAILED" if error is not None else "COMPLETED"
                job.output, job.error, job.ended = output, error, time.monotonic()

    def get_job(self, request_id: str) -> Job | None:
        """A copy of the job; None if unknown, or ended more than ``result_ttl_s`` ago."""
        with self._lock:
            job = self._jobs.get(request_id)
            if job is None or self._expired(job, time.monotonic()):
                return None
            return dataclasses.replace(job)

    def _expired(self, job: Job, now: float) -> bool:
        return job.ended is not None and job.ended + self.config.result_ttl_s <= now
