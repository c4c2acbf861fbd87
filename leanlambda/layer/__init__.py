"""Layer builder: small AND correct Lambda layers (see leanlambda.layer.builder)."""

from leanlambda.layer.builder import LayerBuild, Limits, build_layer, check_build, report_lines
from leanlambda.layer.settings import LayerSettings, load_settings
from leanlambda.layer.target import Target
from leanlambda.layer.verify import Verification, verify_layer

__all__ = [
    "LayerBuild",
    "LayerSettings",
    "Limits",
    "Target",
    "Verification",
    "build_layer",
    "check_build",
    "load_settings",
    "report_lines",
    "verify_layer",
]
