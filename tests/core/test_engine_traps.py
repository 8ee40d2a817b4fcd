"""One regression test per durable-rules 2.0.28 trap (shared/DURABLE-RULES.md), each against raw durable AND
against our defence in service/engine.py.

Anything that may crash, hang or leak threads/sessions runs in a fresh interpreter (`run_python`), so a
segfault or an infinite loop shows up as a return code or a TimeoutExpired here instead of killing pytest.
Each child prints one JSON line (prefixed with RESULT=) that the test parses; stderr is shown on failure.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# A hang detector for children that must return; NOT a speed assertion (they take well under 10 s).
GENEROUS_TIMEOUT = 180

# Shared prelude for the children: a stub Rule (compile_ruleset only reads id/active/when/escalations) and a
# no-dispatcher raw host, so raw-durable repros do not depend on our engine.
PRELUDE = """
import json, sys, threading
from dataclasses import dataclass
from durable import engine
import durable_rules_engine

@dataclass(frozen=True)
class StubRule:
    id: str
    when: dict
    active: bool = True
    escalations: tuple = ()

class RawHost(engine.Host):
    def _run(self):          # no dispatcher threads (our engine uses no Host at all)
        pass

def report(**kw):
    print("RESULT=" + json.dumps(kw), flush=True)
"""


def run_python(code: str, timeout: float = GENEROUS_TIMEOUT) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(code)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def result_of(proc: subprocess.CompletedProcess) -> dict:
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT=")]
    assert proc.returncode == 0 and len(lines) == 1, (
        f"child failed: rc={proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}")
    return json.loads(lines[0][len("RESULT="):])


# --------------------------------------------------------------------------------------------------------------
# Trap 1: `post` consumes the event in the first action; `assert_fact` runs every matching rule.

def test_post_fires_one_rule_assert_fact_fires_all_and_our_engine_fires_all():
    res = result_of(run_python("""
        from service.core.engine import DurableEngine
        fired = []
        def action(name):
            def run(c):
                fired.append(name)
            return run
        def ruleset():      # three rules, all matching the same message
            return {f"r{i}": {"all": [{"m": {"$and": [{"t": "p"}, {"$gt": {"x": 0}}]}}], "run": action(f"r{i}")}
                    for i in (1, 2, 3)}
        host = RawHost()
        host.register_rulesets({"events": ruleset(), "facts": ruleset()})
        host.post("events", {"t": "p", "sid": "s", "x": 1})
        posted, fired[:] = list(fired), []
        host.assert_fact("facts", {"t": "p", "sid": "s", "x": 1})
        asserted = list(fired)
        ours = DurableEngine([StubRule(f"r{i}", {"fact": "ldn.dose_mg", "gt": 0}) for i in (1, 2, 3)])
        report(posted=posted, asserted=asserted, ours=sorted(ours.evaluate({"ldn": {"dose_mg": 1}})))
    """))
    assert len(res["posted"]) == 1 and res["posted"][0] in {"r1", "r2", "r3"}, res
    assert sorted(res["asserted"]) == ["r1", "r2", "r3"], res
    assert res["ours"] == ["r1", "r2", "r3"], res


# --------------------------------------------------------------------------------------------------------------
# Trap 2: delete_state on a sid for which no action ran frees uninitialised pointers (state.c).

CRASH_RULESET = """{"x": {"r": {"all": [{"m": {"$and": [{"t": "p"}, {"$lt": {"egfr": 30}}]}}], "run": lambda c: None}}}"""


def test_delete_state_after_unmatched_fact_crashes_raw_durable():
    proc = run_python(f"""
        host = RawHost()
        host.register_rulesets({CRASH_RULESET})
        try:
            host.assert_fact("x", {{"t": "p", "sid": "a", "egfr": 90}})   # matches no rule: no action runs
        except engine.MessageNotHandledException:
            print("NOT_HANDLED", flush=True)
        host.delete_state("x", "a")
        print("SURVIVED", flush=True)
    """)
    assert "NOT_HANDLED" in proc.stdout, (proc.returncode, proc.stdout, proc.stderr)
    crashed = proc.returncode < 0 or "free(): invalid pointer" in proc.stderr
    assert crashed and "SURVIVED" not in proc.stdout, (
        f"delete_state no longer crashes (rc={proc.returncode}): update shared/DURABLE-RULES.md\n{proc.stderr}")
    if proc.returncode < 0:
        assert -proc.returncode in (signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS), proc.returncode


def test_delete_state_with_a_catch_all_rule_does_not_crash_raw_durable():
    """The workaround itself, on raw durable: the same fact plus a rule that always runs -> no crash."""
    proc = run_python("""
        ruleset = {"x": {"r": {"all": [{"m": {"$and": [{"t": "p"}, {"$lt": {"egfr": 30}}]}}], "run": lambda c: None},
                         "catch_all": {"all": [{"m": {"t": "p"}}], "run": lambda c: None}}}
        host = RawHost()
        host.register_rulesets(ruleset)
        host.assert_fact("x", {"t": "p", "sid": "a", "egfr": 90})
        host.delete_state("x", "a")
        report(ok=True)
    """)
    assert result_of(proc) == {"ok": True}


def test_our_engine_survives_10000_evaluations_that_match_no_real_rule():
    res = result_of(run_python("""
        from service.core.engine import DurableEngine
        from service.knowledge.base import load_knowledge
        crash_rule = DurableEngine([StubRule("egfr_below_30", {"fact": "renal.egfr", "lt": 30})])
        shipped = DurableEngine(load_knowledge().active_rules)
        silent = [{}, {"renal": {"egfr": 90}}, {"ldn": {"in_use": False, "dose_mg": 100}},
                  {"ldn": {"in_use": True, "dose_mg": 3, "at_bedtime": True}}, {"medications": {"known": True}}]
        nonempty = 0
        for i in range(5000):
            nonempty += bool(crash_rule.evaluate({"renal": {"egfr": 90 + i % 7}}))
            nonempty += bool(shipped.evaluate(silent[i % len(silent)]))
        report(evaluations=10000, nonempty=nonempty)
    """))
    assert res == {"evaluations": 10000, "nonempty": 0}


# --------------------------------------------------------------------------------------------------------------
# Trap 3: the default engine.Host starts two self-rescheduling threading.Timer chains per Host.

def test_default_host_starts_two_timer_threads_and_our_engine_none():
    res = result_of(run_python("""
        import time
        from service.core.engine import DurableEngine
        started = []
        original_start = threading.Timer.start
        def counting_start(self):
            started.append(self)
            return original_start(self)
        threading.Timer.start = counting_start

        def live_timers():
            return sum(isinstance(t, threading.Timer) and t.is_alive() for t in threading.enumerate())

        base = threading.active_count()
        engines = [DurableEngine([StubRule("r", {"fact": "ldn.dose_mg", "gt": 0})]) for _ in range(3)]
        fired = [sorted(e.evaluate({"ldn": {"dose_mg": 1}})) for e in engines]
        time.sleep(0.5)                   # a default Host's first timers would have run and rescheduled by now
        after_ours = dict(started=len(started), grew=threading.active_count() - base, timers=live_timers())

        counts = []
        for _ in range(3):
            before = len(started)
            engine.Host()
            counts.append(len(started) - before)
        grew_default = threading.active_count() - base
        time.sleep(1.0)                   # the chains reschedule themselves: the threads stay
        report(fired=fired, after_ours=after_ours, starts_per_default_host=counts, grew_default=grew_default,
               timers_later=live_timers())
    """))
    assert res["fired"] == [["r"]] * 3, res
    assert res["after_ours"] == {"started": 0, "grew": 0, "timers": 0}, res
    assert res["starts_per_default_host"] == [2, 2, 2], res
    assert res["grew_default"] >= 6, res       # 2 per Host (a thread handing over to its successor may add 1)
    assert res["timers_later"] >= 6, res


# --------------------------------------------------------------------------------------------------------------
# Trap 4: an unguarded $nex matches durable's own state fact {"sid","id","$s":1} -> the action loops forever.

def test_unguarded_nex_rule_loops_forever_on_raw_durable():
    with pytest.raises(subprocess.TimeoutExpired):
        run_python("""
            host = RawHost()
            host.register_rulesets({"t": {"no_egfr": {"all": [{"m": {"$nex": {"renal.egfr": 1}}}],
                                                       "run": lambda c: None}}})
            host.assert_fact("t", {"sid": "b", "x": 1})
            print("RETURNED", flush=True)
        """, timeout=5)


# Counts the actions our engine takes from the C core, by wrapping the two calls that hand them out.
COUNT_ACTIONS = """
import service.core.engine as ours_module
actions = []
real_start, real_next = ours_module.durable.start_action_for_state, ours_module.durable.complete_and_start_action
def counted(call):
    def wrapper(*args):
        result = call(*args)
        if result:
            actions.append(result)
        return result
    return wrapper
ours_module.durable.start_action_for_state = counted(real_start)
ours_module.durable.complete_and_start_action = counted(real_next)
"""


def test_the_same_nex_condition_through_our_engine_fires_once():
    res = result_of(run_python(COUNT_ACTIONS + textwrap.dedent("""
        from service.core.engine import DurableEngine
        ours = DurableEngine([StubRule("no_egfr", {"fact": "renal.egfr", "exists": False})])
        without = sorted(ours.evaluate({"ldn": {"dose_mg": 1}}))
        actions_without = len(actions)
        with_egfr = sorted(ours.evaluate({"renal": {"egfr": 45}}))
        report(without=without, actions_without=actions_without, with_egfr=with_egfr, actions_total=len(actions))
    """)))
    # the rule and the catch-all once each, then the catch-all alone: the state fact never re-triggers a rule
    assert res == {"without": ["no_egfr"], "actions_without": 2, "with_egfr": [], "actions_total": 3}, res


def test_an_action_loop_is_cut_off_and_the_engine_stays_usable():
    """Should a rule ever loop in the C core (as an unguarded $nex does), the loop cap raises instead of hanging,
    the open action and the session are released, and the next evaluation is correct."""
    res = result_of(run_python(COUNT_ACTIONS + textwrap.dedent("""
        import json
        from service.core.engine import MAX_ACTIONS, DurableEngine, EngineError
        ours = DurableEngine([StubRule("dose_positive", {"fact": "ldn.dose_mg", "gt": 0})])
        def forever(handle, state):                  # the C core hands out the same action again and again
            actions.append(1)
            return '{"dose_positive": {"m": {}}}'
        ours_module.durable.complete_and_start_action = forever
        try:
            ours.evaluate({"ldn": {"dose_mg": 1}})
            error = None
        except EngineError as exc:
            error = str(exc)
        looped = len(actions)
        ours_module.durable.complete_and_start_action = counted(real_next)
        after = [sorted(ours.evaluate({"ldn": {"dose_mg": d}})) for d in (1, -1)]
        accepted = 0
        try:
            for i in range(1025):
                ours_module.durable.assert_fact(ours._handle, json.dumps({"t": "ldn_context", "sid": f"probe{i}"}))
                accepted += 1
        except MemoryError:
            pass
        report(error=error, looped=looped, cap=MAX_ACTIONS, after=after, accepted=accepted)
    """)))
    assert res["error"] is not None and "loop" in res["error"], res
    assert res["looped"] == res["cap"] + 1, res      # the real first action, then the repeated one up to the cap
    assert res["after"] == [["dose_positive"], []], res
    assert res["accepted"] == 1024, res               # the looping evaluation's session was deleted


# --------------------------------------------------------------------------------------------------------------
# Trap 5: at most 1024 live sessions (sids) per ruleset; the 1025th raises MemoryError.

def test_1025th_live_session_raises_memory_error_on_raw_durable():
    res = result_of(run_python("""
        host = RawHost()
        host.register_rulesets({"s": {"r": {"all": [{"m": {"t": "p"}}], "run": lambda c: None}}})
        failed_at = None
        for i in range(1100):
            try:
                host.assert_fact("s", {"t": "p", "sid": f"sid{i}"})    # never delete_state
            except MemoryError:
                failed_at = i
                break
        report(failed_at=failed_at)
    """))
    assert res == {"failed_at": 1024}, res     # sids 0..1023 live, the 1025th fails


def test_our_engine_leaves_no_live_session_after_5000_evaluations():
    """After 5000 evaluations the ruleset must still take exactly 1024 new live sids: a single session leaked by
    evaluate() would make the 1024th raw assert fail, and the 1025th failing proves the probe is sensitive."""
    res = result_of(run_python("""
        from service.core.engine import FACT_TYPE, DurableEngine
        from service.knowledge.base import load_knowledge
        ours = DurableEngine(load_knowledge().active_rules)
        facts = [{}, {"ldn": {"in_use": True, "dose_mg": 9, "at_bedtime": False},
                      "medications": {"current_opioid_count": 1}}]
        fired = [len(ours.evaluate(facts[i % 2])) for i in range(5000)]
        accepted = 0
        try:
            for i in range(1025):
                durable_rules_engine.assert_fact(ours._handle, json.dumps({"t": FACT_TYPE, "sid": f"probe{i}"}))
                accepted += 1
        except MemoryError:
            pass
        report(silent=fired.count(0), firing=sum(1 for n in fired if n >= 3), accepted=accepted)
    """))
    assert res == {"silent": 2500, "firing": 2500, "accepted": 1024}, res


# --------------------------------------------------------------------------------------------------------------
# Trap 6: an exception in an action is swallowed into the returned state; the other actions still run.

def test_action_exception_is_swallowed_by_durable_and_a_core_error_raised_by_our_engine():
    res = result_of(run_python("""
        from service.core.engine import DurableEngine, EngineError
        ran = []
        def boom(c):
            raise ValueError("boom-raw")
        def other(c):
            ran.append("other")
        host = RawHost()
        host.register_rulesets({"e": {"a_boom": {"all": [{"m": {"t": "p"}}], "run": boom},
                                      "b_other": {"all": [{"m": {"t": "p"}}], "run": other}}})
        state = host.assert_fact("e", {"t": "p", "sid": "q"})
        raw = dict(returned=True, exception=state.get("exception", ""), others_ran=ran)

        # ours has no Python action to fail; what can fail is the C core mid-loop, and that must raise
        import service.core.engine as ours_module
        ours = DurableEngine([StubRule("dose_positive", {"fact": "ldn.dose_mg", "gt": 0})])
        real_next = ours_module.durable.complete_and_start_action
        def failing(handle, state):
            raise durable_rules_engine.error("Could not complete action, error code: 999")
        before = sorted(ours.evaluate({"ldn": {"dose_mg": 1}}))
        ours_module.durable.complete_and_start_action = failing
        try:
            ours.evaluate({"ldn": {"dose_mg": 1}})
            error = None
        except EngineError as exc:
            error = str(exc)
        ours_module.durable.complete_and_start_action = real_next
        after = [sorted(ours.evaluate({"ldn": {"dose_mg": d}})) for d in (1, -1)]
        report(raw=raw, before=before, error=error, after=after)
    """))
    assert res["raw"]["returned"] and "boom-raw" in res["raw"]["exception"], res
    assert res["raw"]["others_ran"] == ["other"], res
    assert res["before"] == ["dose_positive"], res
    assert res["error"] is not None and "error code: 999" in res["error"], res
    assert res["after"] == [["dose_positive"], []], res


# --------------------------------------------------------------------------------------------------------------
# Trap 7: Python 3.13 (durable-rules 2.0.28 does not import: PyEval_CallObject removed).

def test_requires_python_excludes_313():
    from packaging.specifiers import SpecifierSet

    spec = SpecifierSet(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"])
    assert "3.11.7" in spec and "3.12.1" in spec, spec
    for version in ("3.13.0", "3.13.5", "3.14.0", "3.10.14"):
        assert version not in spec, (version, str(spec))


def _make_python(tmp_path: Path, available: list[str]) -> str:
    """What the Makefile's PYTHON resolves to when PATH holds only the given interpreter names
    (a name ending in "!" is a broken interpreter, e.g. a pyenv shim for a version that is not installed)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in available:
        exe = bindir / name.rstrip("!")
        exe.write_text("#!/bin/sh\nexit 1\n" if name.endswith("!") else "#!/bin/sh\nexit 0\n")
        exe.chmod(0o755)
    probe = tmp_path / "probe.mk"
    probe.write_text(f"include {ROOT / 'Makefile'}\nprint-python:\n\t@echo \"PYTHON=[$(PYTHON)]\"\n")
    proc = subprocess.run([shutil.which("make") or "/usr/bin/make", "-s", "--no-print-directory", "-f", str(probe),
                           "print-python"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={"PATH": str(bindir), "HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    (line,) = [x for x in proc.stdout.splitlines() if x.startswith("PYTHON=")]
    return line[len("PYTHON=["):-1]


def test_makefile_picks_only_python312_or_python311():
    text = (ROOT / "Makefile").read_text()
    (loop,) = re.findall(r"^PYTHON\s*\?=.*for p in ([^;]+);", text, flags=re.M)
    assert loop.split() == ["python3.12", "python3.11"], loop
    assert "3.13" not in text.split("PYTHON ?=", 1)[1].splitlines()[0]


@pytest.mark.parametrize("available,expected", [
    (["python3.13", "python3", "python", "python3.12", "python3.11"], "python3.12"),
    (["python3.13", "python3", "python3.11"], "python3.11"),
    (["python3.13", "python3", "python", "python3.14"], ""),
    (["python3.13", "python3.12!", "python3.11"], "python3.11"),
    (["python3.13", "python3.12!", "python3.11!"], ""),
])
def test_makefile_interpreter_choice_behaviour(tmp_path, available, expected):
    assert _make_python(tmp_path, available) == expected
