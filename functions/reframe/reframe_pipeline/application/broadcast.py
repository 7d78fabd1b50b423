"""Every configured notifier as one."""

from __future__ import annotations

from reframe_pipeline.application.deadline import Deadline
from reframe_pipeline.application.ports import Notifier
from reframe_pipeline.domain.notices import NoticeDetail


class Broadcast:
    """Every configured notifier in turn (none: no notices)."""

    def __init__(self, *notifiers: Notifier) -> None:
        self.notifiers = notifiers

    def publish(self, detail: NoticeDetail, deadline: Deadline) -> None:
        for notifier in self.notifiers:
            notifier.publish(detail, deadline)
