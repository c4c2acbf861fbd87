"""Third-party top-level modules the toolkit knows by name: what belongs in a layer, and what is slow.

review's layer check flags any of LAYER_PACKAGES found in a function's code folder (vendored, not
layered); its lazy-imports check flags HEAVY_MODULES imported at init. The template's pre-generation
hook keeps its own copy of these names (SHADOWED_MODULES: a function module may not shadow them) because
it runs without the toolkit; tests/test_template_contract.py checks the copy covers this list.
"""

from __future__ import annotations

# Modules whose import costs tens to hundreds of ms (measured here: boto3 about 140 ms, pyupbit about 360 ms).
HEAVY_MODULES = frozenset(
    {
        "boto3",
        "botocore",
        "s3transfer",
        "psycopg2",
        "pyupbit",
        "pandas",
        "numpy",
        "requests",
        "aws_lambda_powertools",
        "scipy",
        "sqlalchemy",
    }
)

LAYER_PACKAGES = HEAVY_MODULES | frozenset(
    {
        "jmespath",
        "dateutil",
        "six",
        "urllib3",
        "certifi",
        "idna",
        "charset_normalizer",
        "chardet",
        "psycopg",
        "pytz",
        "tzdata",
        "websockets",
        "jwt",
        "yaml",
        "simplejson",
        "pydantic",
        "pydantic_core",
        "attr",
        "attrs",
        "typing_extensions",
        "aws_xray_sdk",
        "pymysql",
    }
)
"""Top-level names of packages that belong in the layer (or the runtime), never in the function zip."""
