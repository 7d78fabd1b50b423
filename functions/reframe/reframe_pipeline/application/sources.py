"""What is sent to the provider for a source: the original when it can go as it is (only its header is
read), else a prepared copy, made once per source version and stored beside its variants."""

from __future__ import annotations

from reframe_pipeline.application.object_metadata import META_SOURCE_ETAG, META_SOURCE_KEY, source_key_tag
from reframe_pipeline.application.outputs import PREPARED_NAME
from reframe_pipeline.application.ports import Storage
from reframe_pipeline.application.values import ObjectInfo
from reframe_pipeline.domain.errors import SourceChangedError
from reframe_pipeline.domain.preparation import (
    HeaderIncompleteError,
    Limits,
    check_input_size,
    prepare,
    probe,
    reasons_to_prepare,
    recipe,
)
from reframe_pipeline.observability import count, logger

# Enough for the header of nearly every image; a huge EXIF/ICC block makes us read up to the next step.
# A header that does not parse within the last step is refused: nothing reads a whole object to find one.
HEADER_READS = (64 * 1024, 1024 * 1024)
META_PREPARED_FOR = "prepared-for"


def source_to_send(
    storage: Storage, info: ObjectInfo, out_dir: str, head: bytes, limits: Limits
) -> tuple[str, list[str]]:
    """The key to hand to the provider: the original (fast path: only ``head``, its first bytes,
    is read), or a prepared copy, made once per source version."""
    check_input_size(info.size, limits)
    for further in HEADER_READS[1:]:
        try:
            facts = probe(head, complete=len(head) >= info.size)
            break
        except HeaderIncompleteError:  # a large EXIF or ICC block: read further
            head = storage.read(info.key, first_bytes=further)
    else:  # never past the last header read: what does not parse by then is refused
        facts = probe(head, complete=len(head) >= info.size, final=True)
    reasons = reasons_to_prepare(facts, info.size, limits)
    if not reasons:
        return info.key, []
    prepared_key = out_dir + PREPARED_NAME
    wanted = {
        META_SOURCE_KEY: source_key_tag(info.key),
        META_SOURCE_ETAG: info.etag,
        META_PREPARED_FOR: recipe(reasons, limits),
    }
    made = storage.head(prepared_key)
    if made is None or any(made.metadata.get(name) != value for name, value in wanted.items()):
        body = prepare(storage.read(info.key, first_bytes=info.size), limits)  # never more than HEAD said
        current = storage.head(info.key)  # an older invocation must not replace a newer version's copy
        if current is None or current.etag != info.etag:
            raise SourceChangedError("the source was overwritten or deleted while it was prepared")
        storage.write(prepared_key, body, "image/png", wanted)
        logger.info("source prepared", extra={"reasons": reasons, "prepared_bytes": len(body)})
        count("SourcesPrepared")
    return prepared_key, reasons
