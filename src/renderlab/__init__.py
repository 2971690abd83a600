"""renderlab: render text animations to video under a per-user quota, with live progress."""

__version__ = "0.1.0"
