"""Fuzzing every public function of ``ferroconv.functional`` with valid and invalid
arguments (drawn by parameter name, see ``fuzz_args.py``): each call must return
or raise ValueError / TypeError / MemoryError with a message; never a Rust panic
(``pyo3_runtime.PanicException``), another exception type (OverflowError,
AssertionError, ...), a crash (segfault / abort) or a hang. Calls run in a worker
subprocess, so a crash is a failing exit status and a hang a timeout; successful
calls are spot-checked (shape from the geometry helpers, dtype, contiguity,
finite results from finite inputs, the NumPy reference on small valid cases,
pooling indices pointing at the maxima); no call, accepted or rejected, may
change the bytes, shape, strides or flags of an input array.

Two tests share the worker:

* ``test_fuzz_every_public_function``: hypothesis draws the argument sets;
  ``max_examples`` is 5x the active profile's (ci: 200, dev: 750, thorough:
  5000) or ``FERROCONV_FUZZ_EXAMPLES``. It runs them all and then lists each
  distinct failure once (with ``FERROCONV_FUZZ_SHRINK=1`` it stops at the first
  one and lets hypothesis shrink it instead).
* ``test_seeded_cases_of_each_public_function[name]``: a seeded run of
  ``max(40, max_examples // 4)`` cases per function
  (``FERROCONV_FUZZ_PER_FUNCTION``, seed ``FERROCONV_FUZZ_SEED``; 0 under CI),
  so every exported function (pooling included) is covered in every profile; it
  lists every distinct failure with its shortest reproducer.

A call taking longer than ``FERROCONV_FUZZ_TIMEOUT`` seconds (5 under CI, else
10) is a hang. The last test prints how many argument sets ran. Reproduce a failure with
``python tests/support/fuzz_args.py "<Case(...) repr from the message>"``.
"""

from __future__ import annotations

import collections
import os
import random
import re
import warnings

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import fuzz_args as fa

FUNCTIONS = fa.public_functions()
NAMES = sorted(FUNCTIONS)
PROFILE = settings.get_current_profile_name()
BASE_EXAMPLES = settings.default.max_examples
FUZZ_EXAMPLES = int(os.environ.get("FERROCONV_FUZZ_EXAMPLES") or max(5 * BASE_EXAMPLES,
                                                                      2000 if PROFILE == "thorough" else 0))
PER_FUNCTION = int(os.environ.get("FERROCONV_FUZZ_PER_FUNCTION") or max(40, BASE_EXAMPLES // 4))
# seconds one call may take before it counts as a hang (a fuzz call takes
# milliseconds; kept short so a hang does not eat the time budget)
TIMEOUT = float(os.environ.get("FERROCONV_FUZZ_TIMEOUT") or (5 if PROFILE == "ci" else 10))
SEED = int(os.environ.get("FERROCONV_FUZZ_SEED") or (0 if PROFILE == "ci" else random.randrange(2**31)))
# By default the hypothesis test records every failing case and reports the
# distinct failures after all FUZZ_EXAMPLES ran (a census, and a full case count);
# FERROCONV_FUZZ_SHRINK=1 stops at the first failure and lets hypothesis shrink it
# (every shrink step that crashes or hangs restarts the worker, so it can be slow).
SHRINK = os.environ.get("FERROCONV_FUZZ_SHRINK", "").strip().lower() in ("1", "true", "yes")

COUNTS = collections.Counter()  # argument sets run, per test and outcome


class FuzzFailure(AssertionError):
    pass


# one class per kind of failure, so hypothesis reports distinct bugs separately
FAILURE_TYPES = {
    name: type(f"Fuzz{name.title().replace('-', '')}", (FuzzFailure,), {})
    for name in ("crash", "hang", "panic", "wrong-exception", "empty-message", "wrong-result", "valid-rejected",
                 "input-modified")
}


def report(case_src, call_src, res):
    """A failure as text: what happened, the call, its objects, a reproducer."""
    lines = [f"{res.get('category')}: {res.get('exc') or ''} {res.get('message', '')}".rstrip()]
    if call_src:
        lines.append(f"call: {call_src}")
    if res.get("args"):
        lines.append("objects: " + ", ".join(f"{k}={v}" for k, v in res["args"].items()))
    lines.append(f'reproduce: python tests/support/fuzz_args.py "{case_src}"')
    if res.get("traceback"):
        lines.append(res["traceback"].rstrip())
    if res.get("stderr"):
        lines.append("worker stderr (tail):\n" + res["stderr"][-1500:].rstrip())
    return "\n".join(lines)


def _signature(res):
    """What makes two failures the same bug: kind, exception type, message shape
    (for a crash: the signal, e.g. an abort vs a segfault)."""
    if res.get("category") == "crash":
        return "crash", res.get("message")
    message = re.sub(r"\d+", "N", res.get("message", ""))
    message = re.sub(r"shape \([^)]*\)", "shape (...)", message)
    return res.get("category"), res.get("exc"), message[:80]


def census(title, failures):
    """Text listing each distinct failure once, with its shortest case."""
    total = sum(len(v) for v in failures.values())
    parts = [f"{title}: {total} failing argument sets, {len(failures)} distinct kind(s):"]
    for items in failures.values():
        _, label, case_src, res = min(items, key=lambda t: t[0])
        case = eval(case_src, vars(fa))  # noqa: S307 - our own repr
        functions = sorted({eval(c, vars(fa)).fn for _, _, c, _ in items})  # noqa: S307
        parts.append(f"\n--- {len(items)}x ({', '.join(functions)}), e.g. {label}:\n"
                     + report(case_src, case.call_src(), res))
    return "\n".join(parts)


@pytest.fixture(scope="module")
def worker():
    w = fa.Worker(timeout=TIMEOUT)
    w.start()
    yield w
    w.close()


@st.composite
def cases(draw):
    return fa.draw_case(fa.HypothesisDraw(draw), FUNCTIONS)


def test_fuzz_every_public_function(worker, capsys):
    stats = collections.Counter()
    failures = collections.defaultdict(list)

    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
              phases=tuple(Phase) if SHRINK else tuple(p for p in Phase if p != Phase.shrink))
    @given(case=cases())
    def run(case):
        res = worker.run(case)
        stats[res["outcome"]] += 1
        COUNTS["hypothesis", res["outcome"]] += 1
        if res["outcome"] == "bad":
            if SHRINK:
                raise FAILURE_TYPES.get(res.get("category"), FuzzFailure)(
                    report(repr(case), case.call_src(), res))
            case_src = repr(case)
            failures[_signature(res)].append((len(case_src), f"example {sum(stats.values())}", case_src, res))

    try:
        run()
    finally:
        with capsys.disabled():
            print(f"\n[robustness fuzz] hypothesis profile {PROFILE!r}: {sum(stats.values())} argument sets "
                  f"over {len(NAMES)} functions ({dict(stats)}), worker restarts: {worker.restarts}")
    if failures:
        pytest.fail(census(f"hypothesis fuzz ({sum(stats.values())} argument sets)", failures), pytrace=False)
    if PROFILE == "thorough":
        assert sum(stats.values()) >= 2000, stats


@pytest.mark.parametrize("name", NAMES)
def test_seeded_cases_of_each_public_function(worker, name):
    failures = collections.defaultdict(list)
    outcomes = collections.Counter()
    for index, case_src, res in worker.bulk(name, SEED, PER_FUNCTION):
        outcomes[res["outcome"]] += 1
        COUNTS["seeded", res["outcome"]] += 1
        if res["outcome"] == "bad":
            failures[_signature(res)].append((len(case_src), f"case {index}", case_src, res))
    assert sum(outcomes.values()) == PER_FUNCTION, outcomes
    if failures:
        pytest.fail(census(f"{name}, {PER_FUNCTION} argument sets (seed {SEED})", failures), pytrace=False)
    if not outcomes["ok"]:
        message = (f"{name}: none of {PER_FUNCTION} argument sets was accepted; the generator in "
                   "fuzz_args.py does not know how to call it validly (its parameters: "
                   f"{[p.name for p in fa.signature(FUNCTIONS[name])]})")
        if fa.family(name)[0] == "generic":
            warnings.warn(message)
        else:
            pytest.fail(message)


def test_zz_print_case_count(capsys):
    """Print how many argument sets the fuzz tests of this module ran."""
    total = sum(COUNTS.values())
    by_test = collections.Counter()
    for (test, outcome), n in COUNTS.items():
        by_test[test] += n
    outcomes = collections.Counter()
    for (_, outcome), n in COUNTS.items():
        outcomes[outcome] += n
    with capsys.disabled():
        print(f"\n[robustness fuzz] {total} argument sets run in total (hypothesis: {by_test['hypothesis']}, "
              f"seeded: {by_test['seeded']} = {PER_FUNCTION} x {len(NAMES)} functions); outcomes: "
              f"{dict(outcomes)}")
