"""Notices as EventBridge events on EVENT_BUS_NAME (docs/notices.md)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from reframe_pipeline.application.deadline import Deadline
from reframe_pipeline.domain.notices import NOTICE_SOURCE, NoticeDetail
from reframe_pipeline.observability import count, logger


class EventBridgeNotifier:
    def __init__(self, bus: str, client: Any) -> None:
        self.bus = bus
        # botocore retries throttling and 5xx itself, with short timeouts; no attempt outlives the invocation, whose
        # deadline the handler sets for every AWS call (adapters/aws.py).
        self._client = client

    def publish(self, detail: NoticeDetail, deadline: Deadline) -> None:
        entry = {
            "Source": NOTICE_SOURCE,
            "DetailType": detail.detail_type,
            "Detail": detail.model_dump_json(),
            "EventBusName": self.bus,
        }
        try:
            response = self._client.put_events(Entries=[entry])
            failed = [e for e in response.get("Entries", []) if e.get("ErrorCode")]
            error = f"{failed[0]['ErrorCode']}: {failed[0].get('ErrorMessage', '')}" if failed else None
        except (BotoCoreError, ClientError) as exc:
            error = str(exc)
        if error is None:
            logger.info("notice published", extra={"event_id": detail.event_id, "detail_type": detail.detail_type})
            return
        # The variants are written and paid for: a lost notice must not send the record round again.
        logger.error("notice not published", extra={"event_id": detail.event_id, "error": error})
        count("NoticeFailures")
