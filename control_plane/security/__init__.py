"""Tokens and sealed secrets."""
