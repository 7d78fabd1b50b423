"""The journal in DynamoDB when DynamoDB throttles: a ticket the process holds is never thrown away (the process
goes on collecting it and writes it with the next state), and a state that cannot be written never fails a variant
that was made."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from reframe_pipeline.adapters.journal import DynamoDBJournal
from reframe_pipeline.application.values import ReframeRequest, Ticket
from tests.unit.fakes import FakeProvider
from tests.unit.orchestration_harness import TARGETS, Harness

TICKET = Ticket(provider="segmind", result_url="https://result.example/1", expires_at=4e9)
Params = dict[str, Any]


class ThrottlingTable:
    """A DynamoDB client of one table, in memory, that throttles the UpdateItems ``throttled`` picks (as botocore
    raises them once its own retries are spent)."""

    def __init__(self, throttled: Callable[[Params], bool]) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.throttled = throttled

    def get_item(self, TableName: str, Key: Params, ConsistentRead: bool) -> Params:
        item = self.items.get(Key["id"]["S"])
        return {"Item": dict(item)} if item is not None else {}

    def update_item(self, **params: Any) -> Params:
        if self.throttled(params):
            error = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "throttled"}}
            raise ClientError(error, "UpdateItem")  # type: ignore[arg-type]
        item = self.items.setdefault(params["Key"]["id"]["S"], {"id": params["Key"]["id"]})
        values = params["ExpressionAttributeValues"]
        item["state"] = values[":state"]
        if ":ticket" in values:
            item["ticket"] = values[":ticket"]
        if "REMOVE ticket" in params["UpdateExpression"]:
            item.pop("ticket", None)
        return {}

    def states(self) -> list[str]:
        return [item["state"]["S"] for item in self.items.values()]

    def tickets(self) -> list[str]:
        return [item["ticket"]["S"] for item in self.items.values() if "ticket" in item]


def ticket_write(params: Params) -> bool:
    return ":ticket" in params["ExpressionAttributeValues"]


def state(name: str) -> Callable[[Params], bool]:
    return lambda params: params["ExpressionAttributeValues"][":state"] == {"S": name}


def journaled(h: Harness, table: ThrottlingTable) -> Harness:
    h.pipeline.fanout.producer.journal = DynamoDBJournal("table", table)
    return h


def test_a_throttled_ticket_is_held_by_the_process_and_written_with_the_next_state() -> None:
    journal = DynamoDBJournal("table", table := ThrottlingTable(state("submitted")))

    journal.hold("work", TICKET)  # throttled: not raised, kept

    assert journal.load("work") == TICKET and table.tickets() == []
    journal.advance("work", "generated")
    assert table.states() == ["generated"] and len(table.tickets()) == 1
    assert DynamoDBJournal("table", table).load("work") == TICKET  # another instance finds it now


def test_a_variant_whose_ticket_write_is_throttled_is_collected_and_paid_once(make: Any) -> None:
    table = ThrottlingTable(state("submitted"))

    def submitted(request: ReframeRequest) -> None:
        request.meter.submitted(TICKET)  # the provider then collects it, as it holds it

    h = journaled(make(provider=FakeProvider([submitted])), table)
    h.upload(targets=TARGETS[:1])

    h.handle()

    assert h.statuses() == {"1536x512": "created"} and h.provider.calls == 1
    assert table.states() == ["written"] and len(table.tickets()) == 1  # written afterwards


def test_a_throttled_written_state_leaves_the_variant_created(make: Any) -> None:
    table = ThrottlingTable(state("written"))
    h = journaled(make(), table)
    h.upload(targets=TARGETS[:1])

    h.handle()

    assert h.statuses() == {"1536x512": "created"}
    assert h.outputs() == ["reframed/photo.png/1536x512.png", "reframed/photo.png/manifest.json"]
    assert table.states() == ["generated"]  # one step behind: a redelivery re-renders from the kept generation
