"""Engagement → outcomes research pipeline for psychotherapy session records."""

__version__ = "0.1.0"
