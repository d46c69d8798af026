"""Simulated fleets: physically plausible equipment with injected, labelled faults.

Modules, in data-flow order:

- :mod:`simulators.signals`: deterministic building blocks (hash noise, schedules, ambient,
  thermal lags).
- :mod:`simulators.equipment`: the four equipment models (metrics, units, physics).
- :mod:`simulators.faults`: the fault catalogue and the ground-truth :class:`FaultLabel`.
- :mod:`simulators.fleet`: :class:`FleetSimulator`, vectorised over the whole fleet.
- :mod:`simulators.waveform`: vibration bursts with bearing defect frequencies.
- :mod:`simulators.scenario`: scenario YAML files (``scenarios/``), ``load(path).device_ids``.
- :mod:`simulators.publisher`: per-device MQTT logins, QoS 1, wills, store-and-forward.
- :mod:`simulators.run`: live / accelerated runs and backfill to the store.
- :mod:`simulators.labels`: ground truth to a file and the ``fault_labels`` table.
- :mod:`simulators.runner`: "alert within T of onset" checks for end-to-end tests.
- :mod:`simulators.cli`: ``aftercare simulate``.
"""
