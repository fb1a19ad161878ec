"""fastpool's benchmark suite: ``python -m fastpool.bench --help``.

Kept import-light: torch and the suite's modules load only when it runs.
"""


def main(argv=None):
    from .cli import main as _main

    return _main(argv)
