# Recipes for everyday work; each is a thin wrapper over scripts/ so nothing needs `just` to run.

# Set up (once) and serve on embedded stores
serve *args:
    scripts/serve {{args}}

# Set up (once) and run the whole test suite, browser tests included
test *args:
    scripts/test {{args}}

# Refresh the hashed lock files (requirements/*.lock) from pyproject.toml; `just lock --upgrade` for newest releases
lock *args:
    scripts/lock {{args}}

# Lint: ruff and the import boundaries
lint:
    .venv/bin/ruff check src tests bench
    .venv/bin/lint-imports

# Benchmarks: print numbers, never pass/fail
bench:
    .venv/bin/python bench/startup.py
    .venv/bin/python bench/cli_startup.py
