"""Run a function the way Lambda does: a fresh interpreter, its own sys.path, an init phase, one invoke.

`bootstrap.py` is the child (standard library only, run with `python -I -S`); `runner.py` starts it,
enforces the timeout and reads its report from a private pipe; `runtime.py` builds the sys.path.
"""
