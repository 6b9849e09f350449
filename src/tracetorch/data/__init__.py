"""Bundled tasks: data that ships with a package or is generated, never downloaded."""

from .digits import load_digits

__all__ = ["load_digits"]
