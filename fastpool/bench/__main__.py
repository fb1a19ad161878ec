import os
import sys

from .cli import main, omp_reexec_env

# libgomp reads OMP_WAIT_POLICY when it loads, and `python -m fastpool.bench` has
# imported torch (through fastpool) before this line: set it and start again.
_env = omp_reexec_env(sys.argv[1:])
if _env is not None:
    os.execve(sys.executable, [sys.executable, "-m", "fastpool.bench", *sys.argv[1:]], _env)

sys.exit(main())
