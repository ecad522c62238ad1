"""The start-up tuning of `python -m analytics_pipeline.cli.process|demo` stays theirs alone."""

import gc


def test_cli_leaves_the_garbage_collector_on_when_imported():
    """Only `python -m ...process|demo` pauses the collector while loading; tests, the code
    server and any other importer keep it on."""
    import analytics_pipeline.cli.process  # noqa: F401

    assert gc.isenabled()
