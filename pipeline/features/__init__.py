"""Engagement features measured only inside each episode's landmark window."""
