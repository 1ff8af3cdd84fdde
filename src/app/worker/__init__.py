"""Application core of ``cirrus worker run``: poll loop, task runner, outbox, signals."""
