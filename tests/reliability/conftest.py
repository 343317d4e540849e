"""The integration fixtures, for the reliability scenarios."""

from tests.integration.conftest import fabric  # noqa: F401
