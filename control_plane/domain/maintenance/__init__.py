"""Maintenance windows: planned work during which incidents still open but pages are held."""
