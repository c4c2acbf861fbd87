"""Lambda prices used for cost estimates.

Source: AWS Lambda pricing, us-east-1, first tier (duration per GB-second by architecture; requests per
million). Since 2025-08 the INIT phase of on-demand zip functions on managed runtimes is billed as duration.
"""

from __future__ import annotations

import math

PRICE_PER_GB_SECOND_USD = {  # AWS Lambda pricing, us-east-1, first tier
    "x86_64": 0.0000166667,
    "arm64": 0.0000133334,
}
PRICE_PER_MILLION_REQUESTS_USD = 0.20  # AWS Lambda pricing, us-east-1
MILLION = 1_000_000
MB_PER_GB = 1024


def billed_ms(duration_ms: float) -> int:
    """Lambda bills duration rounded up to the next millisecond."""
    return max(1, math.ceil(duration_ms))


def cost_per_million(billed_duration_ms: int, memory_mb: int, architecture: str) -> float:
    """USD for a million invocations of this billed duration and memory, requests included."""
    price = PRICE_PER_GB_SECOND_USD.get(architecture, PRICE_PER_GB_SECOND_USD["x86_64"])
    gb_seconds = (billed_duration_ms / 1000) * (memory_mb / MB_PER_GB)
    return gb_seconds * price * MILLION + PRICE_PER_MILLION_REQUESTS_USD
