pytest_plugins = ["tests.fixtures_dns"]
