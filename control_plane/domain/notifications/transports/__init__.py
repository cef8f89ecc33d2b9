"""Notification transports, one module per kind; ``registry.TRANSPORTS`` lists them."""
