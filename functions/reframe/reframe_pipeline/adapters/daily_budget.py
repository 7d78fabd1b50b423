"""The daily spending guard: the estimated cost of each paid attempt is reserved atomically in the
idempotency table before it is sent, on the UTC day it is sent, and given back (to that same day) only
when the attempt provably cost nothing. Over the budget, work is refused loudly."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from reframe_pipeline.application.values import Reservation
from reframe_pipeline.domain.errors import BudgetExceededError
from reframe_pipeline.observability import count, logger

_KEEP_S = 3 * 24 * 3600  # budget rows expire (DynamoDB TTL) a few days after their day


def today() -> str:
    return datetime.now(UTC).date().isoformat()


class Unlimited:
    def reserve(self, cost: float) -> Reservation:
        return Reservation(today(), cost)

    def refund(self, reservation: Reservation) -> None:
        return None


class DailyBudget:
    def __init__(self, table: str, limit_usd: float, client: Any) -> None:
        self._table = table
        self._limit = Decimal(str(limit_usd))
        self._client = client

    def _update(self, day: str, expression: str, values: dict[str, Any], condition: str | None = None) -> None:
        options = {"ConditionExpression": condition} if condition else {}
        self._client.update_item(
            TableName=self._table,
            Key={"id": {"S": f"budget#{day}"}},
            UpdateExpression=expression,
            ExpressionAttributeValues=values,
            **options,
        )

    def reserve(self, cost: float) -> Reservation:
        day = today()
        if cost <= 0:
            return Reservation(day, 0.0)
        amount = Decimal(str(cost))
        if amount > self._limit:  # the day's first reservation too: an absent total is 0, still compared
            raise self._exceeded(day)
        try:
            self._update(
                day,
                "SET spent_usd = if_not_exists(spent_usd, :zero) + :cost, expiration = :expiration",
                {
                    ":zero": {"N": "0"},
                    ":cost": {"N": str(amount)},
                    ":room": {"N": str(self._limit - amount)},
                    ":expiration": {"N": str(int(time.time()) + _KEEP_S)},
                },
                # :room >= 0 here, so a day with no total yet (0 spent) always has room for this amount.
                condition="attribute_not_exists(spent_usd) OR spent_usd <= :room",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            raise self._exceeded(day) from None
        return Reservation(day, cost)

    def _exceeded(self, day: str) -> BudgetExceededError:
        return BudgetExceededError(
            f"the daily budget of ${self._limit} (DAILY_BUDGET_USD, UTC day {day}) is spent: "
            "this variant was not generated; upload again or run a backfill when there is budget"
        )

    def refund(self, reservation: Reservation) -> None:
        """Credit the day the money was taken from. A refund that fails is logged and counted, never
        raised: it must not replace the error that caused it (the spend is then over-estimated)."""
        if reservation.cost <= 0:
            return
        try:
            self._update(
                reservation.day,
                "SET spent_usd = spent_usd - :cost",
                {":cost": {"N": str(Decimal(str(reservation.cost)))}},
                condition="attribute_exists(spent_usd)",
            )
        except (ClientError, BotoCoreError) as exc:
            logger.warning("budget refund failed", extra={"day": reservation.day, "error": str(exc)})
            count("BudgetRefundFailures")
