"""Root conftest: registers the plugin that gives every test the real local stack."""

pytest_plugins = ["cqdev.pytest_plugin"]
