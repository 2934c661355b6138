"""Semantic EQ: descriptor words + audio -> 13-parameter EQ (see README.md; the sidecar uses handler.py)."""
