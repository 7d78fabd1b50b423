"""The image sent to the provider, read at most once per run however many variants and checks use it."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable

from PIL import Image

from reframe_pipeline.domain import source_check
from reframe_pipeline.domain.provenance import Credits


class SourceImage:
    """The image sent to the provider: a presigned URL for remote providers, bytes loaded on demand
    (once) for providers that need them, so a URL-only provider never downloads the source. ``credits``:
    the uploaded source's creator and rights, carried into every variant."""

    def __init__(self, url: str, loader: Callable[[], bytes], credits: Credits | None = None) -> None:
        self.url = url
        self.credits = credits or Credits()
        self._loader = loader
        self._data: bytes | None = None
        self._thumbnail: Image.Image | None = None
        self._lock = threading.Lock()
        self._thumbnail_lock = threading.Lock()

    def load(self) -> bytes:
        with self._lock:
            if self._data is None:
                self._data = self._loader()
            return self._data

    def thumbnail(self) -> Image.Image:
        """The source's small grayscale thumbnail (the source check's), made once: from the bytes when a provider
        loaded them already, else from one read whose bytes are dropped as soon as it is made."""
        with self._thumbnail_lock:
            if self._thumbnail is None:
                with self._lock:
                    data = self._data
                with Image.open(io.BytesIO(data if data is not None else self._loader())) as image:
                    self._thumbnail = source_check.thumbnail(image)
            return self._thumbnail
