"""Run a function the way Lambda does: AWS's runtime client, a Runtime API, Lambda's CPU share.

`runner.py` starts the runtime process and enforces timeout and MemorySize; `runtime_api.py` serves the
Runtime API on loopback; `runtime_client.py` picks the Python and awslambdaric (or `bootstrap.py`, the
stand-in); `cpu_quota.py` holds the invoke phase to memory / 1769 of one CPU; `runtime.py` builds the
path and environment; `report.py` writes Lambda's REPORT line.
"""
