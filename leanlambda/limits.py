"""Lambda's quotas, in one place: the toolkit checks answers, templates and builds against them.

Source: the AWS Lambda quotas page (memory, timeout, deployment package sizes). The template's hook
keeps its own copy, since a generated function never imports the toolkit.
"""

from __future__ import annotations

MEMORY_MIN_MB = 128
MEMORY_MAX_MB = 10_240
TIMEOUT_MAX_S = 900
MIB = 1024 * 1024
UNZIPPED_LIMIT_BYTES = 250 * MIB  # function + all its layers, unzipped (262,144,000 bytes)
ZIPPED_LIMIT_BYTES = 50 * MIB  # a zip uploaded directly through the Lambda API
