"""The daily spending guard: estimated cost reserved atomically in the idempotency table before
each paid call, and given back when the call fails. Over the budget, work is refused loudly."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from botocore.exceptions import ClientError

from .errors import PermanentError
from .settings import Settings

_KEEP_S = 3 * 24 * 3600  # budget rows expire (DynamoDB TTL) a few days after their day


class BudgetExceededError(PermanentError):
    code = "budget_exceeded"


class Budget(Protocol):
    def reserve(self, cost: float) -> None: ...

    def refund(self, cost: float) -> None: ...


class Unlimited:
    def reserve(self, cost: float) -> None:
        return None

    def refund(self, cost: float) -> None:
        return None


class DailyBudget:
    def __init__(self, table: str, limit_usd: float, client: Any) -> None:
        self._table = table
        self._limit = Decimal(str(limit_usd))
        self._client = client

    @staticmethod
    def _today() -> str:
        return datetime.now(UTC).date().isoformat()

    def _update(self, expression: str, values: dict[str, Any], condition: str | None = None) -> None:
        options = {"ConditionExpression": condition} if condition else {}
        self._client.update_item(
            TableName=self._table,
            Key={"id": {"S": f"budget#{self._today()}"}},
            UpdateExpression=expression,
            ExpressionAttributeValues=values,
            **options,
        )

    def reserve(self, cost: float) -> None:
        if cost <= 0:
            return
        amount = Decimal(str(cost))
        try:
            self._update(
                "SET spent_usd = if_not_exists(spent_usd, :zero) + :cost, expiration = :expiration",
                {
                    ":zero": {"N": "0"},
                    ":cost": {"N": str(amount)},
                    ":room": {"N": str(self._limit - amount)},
                    ":expiration": {"N": str(int(time.time()) + _KEEP_S)},
                },
                condition="attribute_not_exists(spent_usd) OR spent_usd <= :room",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            raise BudgetExceededError(
                f"the daily budget of ${self._limit} (DAILY_BUDGET_USD, UTC day {self._today()}) is spent: "
                "this variant was not generated; upload again or run a backfill when there is budget"
            ) from None

    def refund(self, cost: float) -> None:
        if cost > 0:
            self._update("SET spent_usd = spent_usd - :cost", {":cost": {"N": str(Decimal(str(cost)))}})


def build_budget(settings: Settings) -> Budget:
    if settings.daily_budget_usd is None or not settings.idempotency_table:
        return Unlimited()
    import boto3

    return DailyBudget(settings.idempotency_table, settings.daily_budget_usd, boto3.client("dynamodb"))
