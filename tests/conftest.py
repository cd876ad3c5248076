"""Shared test configuration: pytester drives the plugin in real pytest runs."""

from __future__ import annotations

pytest_plugins = ["pytester"]
