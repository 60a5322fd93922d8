"""The event catalog: what teams declare should be true on the bus (see model.py)."""
