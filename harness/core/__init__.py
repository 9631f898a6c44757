"""Foundations every layer may use: errors, default paths, canonical JSON and content digests, the input-feed
format, cache-entry publishing, seeding and ONNX export, UTC timestamps.

Level 0: imports nothing of the harness.
"""
