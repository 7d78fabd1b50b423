"""Inbound adapters: what arrives from AWS, turned into the domain's values."""
