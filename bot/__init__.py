"""Hermes fleet: the Matrix bot at the front door of a self-hosted agent fleet."""

__version__ = "0.1.0"
