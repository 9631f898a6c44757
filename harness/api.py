"""The public plugin API: everything a plugin author imports comes from here.

A complete method plugin::

    from harness.api import MethodSpec, Param, hookimpl

    def apply(ctx):
        ...  # return the compressed torch module (or the path of an ONNX file)

    @hookimpl
    def harness_register_methods(register):
        register(MethodSpec(name="my-prune", apply=apply,
                            params=(Param("sparsity", float, min=0.0, max=1.0, max_exclusive=True),),
                            claims=lambda p: {"sparsity": p["sparsity"]}))

The built-in plugins (``harness.builtins``: the standard suites, ``dense`` and ``vnncomp``) and the
first-party plugins import nothing else of the harness, so each is a template an author can copy.
Importing this module stays cheap (no torch, numpy or onnx): every helper imports those inside the
functions that use them, so ``harness --help`` and ``harness plugins`` stay instant. A name whose
meaning is unclear out of its module is exported under a longer one (``load_vnnlib`` is
``harness.verify.vnnlib.load``); the module paths behind these names are not a promise.
"""

# The imports are grouped by what an author needs, not sorted.
# isort: off
from harness import hookimpl
from harness.plugin import hookspecs  # the hooks, each documented: help(harness.api.hookspecs)

# ---- specs, parameters, contexts
from harness.plugin.params import CPU_CORES, MachineLimit, Param, ParamError
from harness.plugin.params import validate as validate_params
from harness.plugin.specs import (
    ApplyContext,
    Artifact,
    BackendSpec,
    CellContext,
    DatasetContext,
    DatasetSpec,
    Measurement,
    MethodSpec,
    MetricSpec,
    ModelContext,
    ModelSpec,
    Session,
    Skip,
    Split,
    Splits,
    SuiteSpec,
    VerifierSpec,
    WeightEncoding,
)

# ---- paths and dataset fingerprints
from harness.core.paths import cache_dir
from harness.plan.cells import BASELINE_METHOD
from harness.core.torchio import export_onnx, seed_everything
from harness.core.identity import fingerprint_arrays, fingerprint_splits

# ---- files from users and downloads, loaded without running code from them
from harness.core.safeload import UnsafeFile
from harness.core.safeload import load_module as load_torch_module
from harness.core.safeload import load_state as load_state_dict

# ---- model inputs: one array or a feed of named arrays
from harness.core.inputs import batch_len, is_feed, named, prepare, take, torch_args

# ---- training (seeded, deterministic)
from harness.build.training import train_causal_lm, train_classifier

# ---- timing: the plan and the loop
from harness.plugin.timingplan import PROFILES, TimingPlan, TimingResult
from harness.measure.timing import STORED_SAMPLES, InProcessSession, run_plan, stored_samples, summarize, time_calls

# ---- the physical-limit check: this machine's attainable peak (cached) and the roofline verdict
from harness.measure.peak import cpu_peak, cuda_peak, last_level_cache_bytes
from harness.measure.roofline import MARGIN as ROOFLINE_MARGIN
from harness.measure.roofline import check as roofline_check

# ---- energy counters (RAPL, NVML), read directly; unavailable says why
from harness.measure.energy import EnergyCounter, EnergyUnavailable, nvml_counter, rapl_counter
from harness.measure.energy import counter_for as energy_counter

# ---- remote runners (the runner protocol)
from harness.measure.remote import RunnerError, RunnerSession, runner_files

# ---- the reference backend and the claims checker
from harness.measure.reference import ATOL, RTOL, ReferenceSession, compare_outputs
from harness.measure.claims import Report as ClaimsReport
from harness.measure.claims import check_artifact
from harness.measure.honesty import CHECK_METRICS, THRESHOLDS, check_agreement, check_measurement, check_timed_call
from harness.measure.honesty import precision as output_precision
from harness.measure.honesty import reference_outputs, timed_call_outputs, tolerance

# ---- size and FLOPs of an artifact
from harness.measure.analysis import (
    flop_counts,
    onnx_packed_size,
    onnx_param_counts,
    peak_forward_memory,
    theoretical_speedup,
    torch_packed_size,
    torch_param_counts,
)

# ---- VNN-LIB properties
from harness.verify.vnnlib import Atom, Property, VnnlibError
from harness.verify.vnnlib import load as load_vnnlib
from harness.verify.vnnlib import parse as parse_vnnlib
from harness.verify.vnnlib import robustness as robustness_property

# ---- verification: verdicts, witnesses, VNN-COMP points
from harness.verify.verdicts import ERROR, HOLDS, TIMEOUT, UNKNOWN, VIOLATED, Verdict
from harness.verify.benchmarks import CLEAN, PLANTED, UNLABELLED
from harness.verify.benchmarks import KINDS as INSTANCE_KINDS
from harness.verify.replay import Network as ReplayNetwork
from harness.verify.replay import WitnessCheck, check_witness
from harness.verify.normalize import normalize_file as normalize_onnx_file
from harness.verify.normalize import normalize_model as normalize_onnx_model
from harness.verify.points import Outcome
from harness.verify.points import score as score_verdict

# ---- attacks (falsifiers)
from harness.verify.attack import stack_outputs, strong_pgd
# isort: on

__all__ = [
    # registering plugins
    "hookimpl",
    "hookspecs",
    "Param",
    "ParamError",
    "CPU_CORES",
    "MachineLimit",
    "BASELINE_METHOD",
    "validate_params",
    # specs, one per kind, and what their callables receive and return
    "ApplyContext",
    "Artifact",
    "BackendSpec",
    "CellContext",
    "DatasetContext",
    "DatasetSpec",
    "Measurement",
    "MethodSpec",
    "MetricSpec",
    "ModelContext",
    "ModelSpec",
    "Session",
    "Skip",
    "Split",
    "Splits",
    "SuiteSpec",
    "VerifierSpec",
    "WeightEncoding",
    # paths and dataset fingerprints
    "cache_dir",
    "fingerprint_arrays",
    "fingerprint_splits",
    # files loaded without running code from them
    "UnsafeFile",
    "load_torch_module",
    "load_state_dict",
    # model inputs
    "batch_len",
    "is_feed",
    "named",
    "prepare",
    "take",
    "torch_args",
    # training
    "train_classifier",
    "train_causal_lm",
    # timing
    "PROFILES",
    "TimingPlan",
    "TimingResult",
    "InProcessSession",
    "run_plan",
    "time_calls",
    "summarize",
    "stored_samples",
    "STORED_SAMPLES",
    # the physical-limit check
    "cpu_peak",
    "cuda_peak",
    "last_level_cache_bytes",
    "ROOFLINE_MARGIN",
    "roofline_check",
    # energy counters
    "EnergyCounter",
    "EnergyUnavailable",
    "energy_counter",
    "nvml_counter",
    "rapl_counter",
    # remote runners
    "RunnerError",
    "RunnerSession",
    "runner_files",
    # reference backend and claims
    "ATOL",
    "RTOL",
    "ReferenceSession",
    "compare_outputs",
    "CHECK_METRICS",
    "THRESHOLDS",
    "check_agreement",
    "check_measurement",
    "check_timed_call",
    "output_precision",
    "reference_outputs",
    "timed_call_outputs",
    "tolerance",
    "ClaimsReport",
    "check_artifact",
    # size and FLOPs
    "onnx_packed_size",
    "onnx_param_counts",
    "peak_forward_memory",
    "theoretical_speedup",
    "flop_counts",
    "export_onnx",
    "seed_everything",
    "Atom",
    "torch_packed_size",
    "torch_param_counts",
    # VNN-LIB
    "Property",
    "VnnlibError",
    "load_vnnlib",
    "parse_vnnlib",
    "robustness_property",
    # verification
    "HOLDS",
    "VIOLATED",
    "UNKNOWN",
    "ERROR",
    "TIMEOUT",
    "Verdict",
    "PLANTED",
    "CLEAN",
    "UNLABELLED",
    "INSTANCE_KINDS",
    "Outcome",
    "score_verdict",
    "ReplayNetwork",
    "WitnessCheck",
    "check_witness",
    "normalize_onnx_file",
    "normalize_onnx_model",
    # attacks
    "stack_outputs",
    "strong_pgd",
]
