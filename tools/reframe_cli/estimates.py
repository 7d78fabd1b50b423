"""Estimated cost of a number of generations per provider and rendering speed, from the price table
the pipeline itself uses (settings PRICE_TABLE over pricing.DEFAULT_PRICES)."""

from __future__ import annotations

from collections import Counter
from typing import get_args

from reframe_pipeline.domain.pricing import PriceTable, estimate
from reframe_pipeline.domain.sidecar import RenderingSpeed

from .tables import text_table

SPEEDS: tuple[str, ...] = get_args(RenderingSpeed)


def usd(amount: float) -> str:
    return f"{amount:.3f}"


def cost_table(prices: PriceTable, speeds: Counter[str], configured: str) -> str:
    """Rows: providers (the configured one marked ``*``); columns: each speed with its number of
    generations, then the total."""
    headers = ["provider", *(f"{speed} x{speeds[speed]}" for speed in SPEEDS), "total USD"]
    rows = []
    for provider in prices:
        costs = [speeds[speed] * estimate(prices, provider, speed) for speed in SPEEDS]
        label = f"{provider} *" if provider == configured else provider
        rows.append([label, *(usd(cost) for cost in costs), usd(sum(costs))])
    table = text_table(headers, rows, right=frozenset(range(1, len(headers))))
    return f"{table}\n* the provider in use"
