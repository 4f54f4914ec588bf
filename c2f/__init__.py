"""C2F: text-to-video corpus moment retrieval (Coarse to Fine: video retrieval before moment localization)."""

__version__ = "0.1.0"
