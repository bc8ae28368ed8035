"""The report tests' marker: `browser` for the tests that drive headless Chromium (skipped where it is missing)."""


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: drives Debian's headless chromium through playwright; skipped without it")
