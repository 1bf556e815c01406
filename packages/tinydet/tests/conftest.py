from labcore.testing import enable as pytest_configure  # noqa: F401  (opt in to the gpu/slow markers and fixtures)
