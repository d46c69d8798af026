"""The ``aftercare`` command and what only it runs: the subcommand dispatcher
(:mod:`aftercare_cli.main`), ``doctor``, ``broker`` (Mosquitto credentials and ACLs) and
``demo`` (the whole pipeline on demo data). The roof of the house: it may import every floor
(the kernel ``aftercare``, ingest, anomaly, evaluation, simulators, the CRM, web); nothing
below imports it."""
