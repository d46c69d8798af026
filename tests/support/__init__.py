"""What tests share besides fixtures: plain helpers, imported from here (never from a conftest).

- :mod:`tests.support.wait`: ``wait_for``, the one way a test waits for something to happen.
- :mod:`tests.support.services`: the real PostgreSQL and Mosquitto the suite runs against.
- :mod:`tests.support.personas`: the test password and users with a role.
- :mod:`tests.support.crm`: the service CRM's one-customer world, alert events, races.
- :mod:`tests.support.web`: the web tests' two-customer world and the browser helpers.
- :mod:`tests.support.anomaly`: stepping a detection worker until it has caught up.

Fixtures stay in the conftest files and build on these.
"""
