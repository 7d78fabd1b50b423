import io
import json
import socket

import pytest
import requests
from PIL import Image

from reframe_pipeline.adapters.providers.ideogram import MAX_REFERENCES_BYTES, IdeogramProvider
from reframe_pipeline.adapters.providers.limiter import AimdLimiter
from reframe_pipeline.adapters.providers.retrying import RetryPolicy
from reframe_pipeline.adapters.providers.safe_fetch import check_public_url
from reframe_pipeline.application.deadline import Deadline
from reframe_pipeline.application.source_image import SourceImage
from reframe_pipeline.application.values import GenerationParams, ReframeRequest
from reframe_pipeline.domain.errors import PermanentError, ProviderRejectedError, ProviderTransientError
from reframe_pipeline.domain.resolutions import Size

STORAGE = "http://127.0.0.1:5000"


def image(fmt="PNG", size=(64, 32)):
    out = io.BytesIO()
    Image.new("RGB", size, "teal").save(out, fmt)
    return out.getvalue()


def response(status=200, body=b"", headers=None):
    r = requests.Response()
    r.status_code = status
    r._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    r._content_consumed = True  # as if read: iter_content serves _content
    r.headers.update(headers or {})
    return r


class FakeSession:
    """Answers GETs from a table by URL and records every request."""

    def __init__(self, answers=None):
        self.answers = answers or {}
        self.requested = []

    def get(self, url, **_):
        self.requested.append(url)
        return self.answers[url]


def provider(session):
    return IdeogramProvider(
        url="https://api.ideogram.example/v1/ideogram-v3/reframe",
        api_key=lambda: "k",
        session=session,
        policy=RetryPolicy(max_attempts=1),
        min_remaining_ms=0,
        reserve_ms=0,
        limiter=AimdLimiter(),
        storage_endpoint=STORAGE,
    )


def request(params=None, source=None):
    body = source or image("JPEG")
    params = params or GenerationParams()
    return ReframeRequest(SourceImage("s3://unused", lambda: body), Size(1024, 1024), params, Deadline())


@pytest.fixture
def resolves_to(monkeypatch):
    """Make every host name resolve to the given address, counting lookups."""
    lookups = []

    def install(address):
        def fake(host, port, *args, **kwargs):
            lookups.append(host)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

        monkeypatch.setattr(socket, "getaddrinfo", fake)
        return lookups

    return install


def test_form_fields():
    params = GenerationParams(
        rendering_speed="TURBO", seed=4242, style_codes=("5A3F09C1", "0b1c2d3e"), color_palette={"name": "PASTEL"}
    )
    assert IdeogramProvider.fields(request(params)) == [
        ("resolution", "1024x1024"),
        ("rendering_speed", "TURBO"),
        ("num_images", "1"),
        ("seed", "4242"),
        ("style_codes", "5A3F09C1"),
        ("style_codes", "0b1c2d3e"),
    ]
    assert IdeogramProvider.fields(request()) == [
        ("resolution", "1024x1024"),
        ("rendering_speed", "DEFAULT"),
        ("num_images", "1"),
    ]


def test_the_palette_is_a_json_part():
    params = GenerationParams(color_palette={"name": "PASTEL"})
    parts = provider(FakeSession()).files(request(params), (1, 1))
    assert parts[1] == ("color_palette", (None, b'{"name": "PASTEL"}', "application/json"))


def test_files_are_named_by_their_bytes(resolves_to):
    resolves_to("93.184.216.34")
    ref = "https://images.example.com/ref"
    session = FakeSession({ref: response(200, image("WEBP"))})
    files = provider(session).files(request(GenerationParams(style_reference_urls=(ref,))), (1, 1))
    assert [(field, name, mime) for field, (name, _, mime) in files] == [
        ("image", "image.jpg", "image/jpeg"),
        ("style_reference_images", "style_reference_0.webp", "image/webp"),
    ]


def test_storage_urls_are_trusted_without_a_lookup(resolves_to):
    lookups = resolves_to("127.0.0.1")
    ref = f"{STORAGE}/bucket/brand/style.png?X-Amz-Signature=abc"
    session = FakeSession({ref: response(200, image())})
    provider(session).files(request(GenerationParams(style_reference_urls=(ref,))), (1, 1))
    assert session.requested == [ref] and lookups == []


@pytest.mark.parametrize("address", ["10.0.0.7", "127.0.0.1", "169.254.169.254", "::1", "fd00::1"])
def test_user_url_resolving_to_a_private_address_is_refused_without_a_request(resolves_to, address):
    resolves_to(address)
    session = FakeSession()
    params = GenerationParams(style_reference_urls=("https://innocent.example.com/style.png",))
    with pytest.raises(PermanentError) as caught:
        provider(session).files(request(params), (1, 1))
    assert caught.value.code == "bad_style_reference" and address in caught.value.message
    assert session.requested == []


def test_a_redirect_is_checked_like_the_first_url(monkeypatch):
    addresses = {"public.example.com": "93.184.216.34", "sneaky.example.com": "192.168.1.1"}
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, port, *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (addresses[host], port))],
    )
    first = "https://public.example.com/style.png"
    session = FakeSession({first: response(302, headers={"Location": "https://sneaky.example.com/x.png"})})
    with pytest.raises(PermanentError, match=r"192\.168\.1\.1"):
        provider(session).files(request(GenerationParams(style_reference_urls=(first,))), (1, 1))
    assert session.requested == [first]


def test_style_references_are_capped_in_total_not_per_file():
    refs = [f"{STORAGE}/bucket/styles/{n}.png" for n in range(3)]
    third = MAX_REFERENCES_BYTES // 3
    session = FakeSession({ref: response(200, image() + bytes(third - len(image()))) for ref in refs})
    three = provider(session).files(request(GenerationParams(style_reference_urls=tuple(refs))), (1, 1))
    assert sum(len(data) for _, (_, data, _) in three[1:]) == 3 * third <= MAX_REFERENCES_BYTES

    session.answers[refs[2]] = response(200, image() + bytes(third + 3 - len(image())))
    with pytest.raises(PermanentError) as caught:
        provider(session).files(request(GenerationParams(style_reference_urls=tuple(refs))), (1, 1))
    assert caught.value.code == "bad_style_reference"
    assert f"limit of {MAX_REFERENCES_BYTES} bytes in total" in caught.value.message


def test_storage_url_that_does_not_exist_is_permanent():
    ref = f"{STORAGE}/bucket/missing.png"
    session = FakeSession({ref: response(404, b"NoSuchKey")})
    with pytest.raises(PermanentError) as caught:
        provider(session).files(request(GenerationParams(style_reference_urls=(ref,))), (1, 1))
    assert caught.value.code == "bad_style_reference"


def test_unknown_host_is_the_users_error(monkeypatch):
    def nxdomain(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", nxdomain)
    with pytest.raises(ValueError, match="does not exist"):
        check_public_url("https://no-such-host.example.com/a.png")


@pytest.mark.parametrize(
    ("document", "error", "code"),
    [
        ({"data": [{"is_image_safe": False, "seed": 1}]}, ProviderRejectedError, "unsafe_image"),
        ({"created": "now", "data": []}, ProviderTransientError, "bad_body"),
        ({"data": [{"is_image_safe": True}]}, ProviderTransientError, "bad_body"),
        ({"error": "odd"}, ProviderTransientError, "bad_body"),
    ],
)
def test_answers_without_an_image(document, error, code):
    with pytest.raises(error) as caught:
        IdeogramProvider._image_url(response(200, document))
    assert caught.value.code == code


def test_answer_with_an_image():
    document = {"data": [{"url": "https://results.example/a.png", "seed": 77, "is_image_safe": True}]}
    assert IdeogramProvider._image_url(response(200, document)) == ("https://results.example/a.png", 77)
