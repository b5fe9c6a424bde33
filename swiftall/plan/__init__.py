"""Memory and time estimates from a model's config and a command's settings, shared by `swiftall plan`,
`swiftall init`, the check before `sft` loads anything, and the web UI. Imports no torch (machine detection
imports it only to ask for GPUs)."""
from .fit import Choice, fits, nearest_fit, recommend, smallest_need
from .flags import machine_for, setting_from
from .machine import Machine, detect_machine, given_machine
from .memory import GIB, Plan, make_plan
from .setting import Setting
from .source import model_spec, registered_name
from .spec import ModelSpec
from .timing import TimeEstimate, estimate_time

__all__ = ["Choice", "fits", "nearest_fit", "recommend", "smallest_need", "machine_for", "setting_from", "Machine",
           "detect_machine", "given_machine", "GIB", "Plan", "make_plan", "Setting", "model_spec", "registered_name",
           "ModelSpec", "TimeEstimate", "estimate_time"]
