"""Fleet-wide, causal anomaly detection on equipment telemetry (plain numpy/scipy, no Django).

Every detector keeps its streaming state in numpy arrays whose first axis is the channel (or
asset), processes a block shaped ``(channels, time)`` at once, and can be checkpointed with
:meth:`~anomaly.state.StreamingDetector.to_bytes`. Processing a series in one block or in many
small blocks gives the same scores.
"""

from __future__ import annotations
