"""The version of membound, in one place (the package and its reports read it from here)."""

__version__ = "0.1.0"
