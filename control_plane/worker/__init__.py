"""The arq worker: incident evaluation and the periodic sweeps (``vigil worker``)."""
