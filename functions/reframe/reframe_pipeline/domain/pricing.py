"""Estimated price per generation, by provider and rendering speed. Configuration, not a constant:
override any entry with the PRICE_TABLE setting (JSON)."""

from __future__ import annotations

PriceTable = dict[str, dict[str, float]]

# Segmind publishes a $0.037-$0.113 range without a per-speed table; these split it by speed.
# Ideogram's figures are third-party. Local rendering is free.
DEFAULT_PRICES: PriceTable = {
    "segmind": {"TURBO": 0.037, "DEFAULT": 0.075, "QUALITY": 0.113},
    "ideogram": {"TURBO": 0.03, "DEFAULT": 0.06, "QUALITY": 0.09},
    "local": {"TURBO": 0.0, "DEFAULT": 0.0, "QUALITY": 0.0},
}


class UnpricedError(ValueError):
    """A provider or speed missing from the price table: money would be counted as $0, silently."""


def estimate(table: PriceTable, provider: str, rendering_speed: str) -> float:
    try:
        return table[provider][rendering_speed]
    except KeyError:
        raise UnpricedError(
            f"no price for {provider} {rendering_speed}: add it to PRICE_TABLE (domain/pricing.py has the defaults)"
        ) from None
