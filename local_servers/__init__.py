"""Servers started on 127.0.0.1 for the tests, the benchmarks and the image checks alike:
PostgreSQL and MariaDB in their own data directories, `dagster dev`, and a stand-in for
Lambda's runtime API; with the apt installs a fresh machine needs for them.

Its own package, not part of the test package: benchmarks and scripts start the same servers,
and importing the test package from them would tie them to pytest's layout.
"""
