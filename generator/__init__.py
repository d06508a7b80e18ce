"""facetrend: what do this year's faces have in common? A static report generator."""

__version__ = "0.1.0"
