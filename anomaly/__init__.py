"""Fleet-wide anomaly detectors (see issue 5)."""
