"""Errors raised by the weight side (`editor`)."""

from __future__ import annotations


class EditorError(Exception):
    """Base class of every error the editor package raises on purpose."""


class ModelLoadError(EditorError):
    """A model directory is missing, incomplete or cannot be loaded."""


class UnsupportedArchitectureError(EditorError):
    """The model's `config.model_type` has no entry in the architecture table."""
