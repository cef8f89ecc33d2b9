"""Alert rules: channels, a severity and a threshold bound to targets by id or by tag."""
