"""Device fleet simulators (see issue 4)."""
