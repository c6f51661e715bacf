"""Fault-injection tests (issue #8): real servers that restart, fail over, lose replies."""
