"""Typer sub-commands mounted by :mod:`hub.cli`."""
