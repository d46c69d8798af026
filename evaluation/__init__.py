"""Evaluation of the detection engine: NAB and SKAB corpora and the simulator's labelled
scenarios, fed through the same :class:`anomaly.bank.DetectorBank` the detect worker runs (a thin
adapter from CSV columns or simulated fleets to the worker's arrays), with the benchmarks'
scorers and the cross-validated choice of settings. Not imported by the runtime (``anomaly/``
never imports this package nor the simulator)."""
