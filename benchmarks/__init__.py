"""The performance figures of issue 6, measured against the emulator over HTTP and moto's server.

Run ``make bench`` (``python -m benchmarks`` from the repository root); ``--smoke`` runs every figure at
tiny sizes to check the harness, and its figures mean nothing.
"""
