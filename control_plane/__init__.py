"""Vigil control plane: tenant API, operator API, agent API and the arq worker."""
