"""The single source of hamfeat's version (read by setup.cfg and stored in every model file)."""

__version__ = "0.1.0.dev0"
