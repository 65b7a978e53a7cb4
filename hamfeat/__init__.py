"""hamfeat: fast, honest hand-crafted features and classical models for dermoscopy."""

from hamfeat._version import __version__

__all__ = ["__version__"]
