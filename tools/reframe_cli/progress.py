"""The command line's progress bars (tqdm), on the stream given: stderr, so stdout stays the command's output."""

from __future__ import annotations

from types import TracebackType
from typing import Self, TextIO

from tqdm import tqdm

_LABEL_CHARS = 50  # the end of a long key is the part that tells keys apart


class Progress:
    """``with Progress(err, 8, "image") as bar:`` a bar of 8 steps (``[###   ] 3/8 images 00:02 <label>``);
    none on a stream of None."""

    def __init__(self, stream: TextIO | None, total: int, unit: str) -> None:
        self._bar = tqdm(
            disable=stream is None,
            total=total,
            file=stream,
            unit=unit,
            bar_format="[{bar:30}] {n_fmt}/{total_fmt} {unit}s {elapsed} {postfix}",
            ascii=" #",
        )

    def label(self, text: str) -> None:
        """Name the item being worked on."""
        self._bar.set_postfix_str(text[-_LABEL_CHARS:])

    def step(self, label: str = "") -> None:
        """One more step done; ``label`` names the item done."""
        self._bar.set_postfix_str(label[-_LABEL_CHARS:], refresh=False)
        self._bar.update()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._bar.set_postfix_str("", refresh=False)
        self._bar.close()
