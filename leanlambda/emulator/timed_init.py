"""awslambdaric's own bootstrap, with the handler module's import timed (for `review`'s cold-start check).

Run as `python -S -B -u timed_init.py module.handler` in place of `python -m awslambdaric`. Standard
library and awslambdaric only. It wraps the one call that imports the handler and writes one line,
`leanlambda-import-ms: <ms>`, which the runner takes out of the function's logs.
"""

from __future__ import annotations  # annotations stay text: nothing is imported for them at run time

import os
import sys
import time

TYPE_CHECKING = False  # typing is imported for the type checker only
if TYPE_CHECKING:
    from typing import Any

MARKER = "leanlambda-import-ms:"


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [path for path in sys.path if path != here]
    # awslambdaric ships no py.typed marker, so its modules are Any to the type checker
    from awslambdaric import __main__ as ric  # type: ignore[import-untyped]
    from awslambdaric import bootstrap

    get_handler = bootstrap._get_handler

    def timed(handler: str) -> Any:
        started = time.perf_counter()
        try:
            return get_handler(handler)
        finally:
            sys.stdout.write(f"{MARKER} {(time.perf_counter() - started) * 1000:.3f}\n")
            sys.stdout.flush()

    bootstrap._get_handler = timed
    ric.main(sys.argv)


if __name__ == "__main__":
    main()
