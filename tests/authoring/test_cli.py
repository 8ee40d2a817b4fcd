"""`ldn-rules` as a rule author runs it: the installed console script in a subprocess, on a copy of rules/ broken
in the ways that matter (a quote not in its source, an unknown fact, a threshold that breaks a case, content
changed without a version bump). Output and exit codes asserted."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from service.core.context import PatientContext
from service.knowledge import lock

from ..conftest import ROOT

LDN_RULES = ROOT / ".venv" / "bin" / "ldn-rules"
RENAL = "ldn/ldn-renal-impairment.yaml"


def run(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    assert LDN_RULES.is_file(), "make venv installs the ldn-rules console script (pyproject [project.scripts])"
    return subprocess.run([str(LDN_RULES), *args], cwd=cwd, capture_output=True, text=True, timeout=180,
                          env={"PATH": "/usr/bin:/bin", **(env or {})})


def lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return proc.stdout.splitlines()


@pytest.fixture()
def rules(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", target)
    return target


def edit(rules: Path, name: str, old: str, new: str) -> Path:
    path = rules / name
    text = path.read_text(encoding="utf-8")
    assert old in text, (name, old)
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def version(rules: Path, name: str) -> str:
    return str(yaml.safe_load((rules / name).read_text(encoding="utf-8"))["version"])


def bump(rules: Path, name: str) -> str:
    """A new minor version, as a rule author gives a changed rule; returns it."""
    old = version(rules, name)
    major, minor, _ = old.split(".")
    new = f"{major}.{int(minor) + 1}.0"
    edit(rules, name, f"version: {old}", f"version: {new}")
    return new


def shipped_docs() -> list[dict]:
    return [yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted((ROOT / "rules/ldn").glob("*.yaml"))]


def shipped_case_count() -> int:
    return sum(len(d["tests"]) for d in shipped_docs() if d["status"] == "active")


RENAL_CASES = next(d["tests"] for d in shipped_docs() if d["id"] == "ldn-renal-impairment")


# --- validate ---------------------------------------------------------------------------------------------------------

def test_validate_accepts_the_shipped_rules():
    proc = run("validate")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (line,) = lines(proc)
    n = len(shipped_docs())
    assert line.startswith(f"valid: {n} rules ({n} active), every version locked, every case passes; knowledge sha256:")


def test_validate_names_file_rule_and_field_of_every_broken_file(rules):
    edit(rules, RENAL, '"Primarily excreted by the kidneys (53-79% of the dose)"',
         '"Primarily excreted by the kidneys (50-79% of the dose)"')
    edit(rules, RENAL, "fact: renal.egfr", "fact: renal.gfr")
    edit(rules, "ldn/ldn-bedtime-dosing.yaml", "fact: ldn.at_bedtime", "fact: ldn.bedtime")
    proc = run("validate", "--rules", str(rules))
    assert proc.returncode == 1
    assert lines(proc) == [
        f"{rules}/ldn/ldn-bedtime-dosing.yaml: rule ldn-bedtime-dosing: field when.all[1].fact: "
        "unknown fact 'ldn.bedtime' (see schemas/facts.schema.json)",
        f"{rules}/{RENAL}: rule ldn-renal-impairment: field when.all[1].any[0].fact: "
        "unknown fact 'renal.gfr' (see schemas/facts.schema.json)",
        f"{rules}/{RENAL}: rule ldn-renal-impairment: field citations[0].quote: "
        "quote not found verbatim in 001_623d23f30adbb9eb.txt",
        "3 problems found"]


def test_a_content_change_without_a_version_bump_is_refused_everywhere(rules):
    lock_before = (rules / lock.LOCK_FILE).read_text()
    v = version(rules, RENAL)
    edit(rules, RENAL, "value: 60", "value: 40")
    proc = run("validate", "--rules", str(rules))
    assert proc.returncode == 1
    assert lines(proc)[0].startswith(f"{rules}/{RENAL}: rule ldn-renal-impairment: field version: content "
                                     f"changed but the version did not: {v} is locked as sha256:")
    assert lines(proc)[-1] == "1 problem found"

    proc = run("diff", str(ROOT / "rules"), str(rules))
    assert proc.returncode == 1
    assert lines(proc) == [
        f"changed ldn-renal-impairment {v} -> {v}  ERROR: content changed without a version change",
        "    parameters: parameters.egfr_threshold.value: 60 -> 40",
        "0 added, 0 removed, 1 changed (1 without a version change), 0 other files changed"]

    proc = run("lock", "--rules", str(rules))           # the lock is never rewritten for a locked version
    assert proc.returncode == 1 and "lock not written" in proc.stderr
    assert f"{rules}/{RENAL}: rule ldn-renal-impairment: field version: content changed" in proc.stderr
    assert (rules / lock.LOCK_FILE).read_text() == lock_before

    serve = subprocess.run([sys.executable, "-m", "service.serve"], cwd=ROOT, capture_output=True, text=True,
                           timeout=120, env={"RULES_DIR": str(rules), "PORT": "0", "PATH": "/usr/bin:/bin"})
    assert serve.returncode == 2
    assert f"{rules}/{RENAL}, rule ldn-renal-impairment, field version: content changed but the version did " \
           "not" in serve.stderr


def test_comments_layout_and_test_cases_are_not_content(rules):
    edit(rules, RENAL, "requires: [ldn, renal]",
         "# kidney function is what this rule reads\nrequires:\n  - ldn\n  - renal")
    edit(rules, RENAL, "  - name: dialysis\n", "  - name: on dialysis\n")
    assert run("validate", "--rules", str(rules)).returncode == 0
    proc = run("diff", str(ROOT / "rules"), str(rules))
    assert proc.returncode == 0
    v = version(rules, RENAL)
    assert lines(proc) == [f"changed ldn-renal-impairment {v} -> {v}",
                           "    tests (not content): tests[2].name: dialysis -> on dialysis",
                           "0 added, 0 removed, 1 changed (0 without a version change), 0 other files changed"]


# --- test, and a threshold that breaks a case -------------------------------------------------------------------------

def test_test_runs_every_shipped_case():
    proc = run("test")
    assert proc.returncode == 0, proc.stdout
    n = shipped_case_count()
    assert lines(proc)[-1] == f"{n} passed, 0 failed"
    assert len([l for l in lines(proc) if l.startswith("PASS ")]) == n


def test_test_selects_cases_and_says_what_each_got():
    proc = run("test", "-k", "renal-impairment", "-v")
    assert proc.returncode == 0
    words = {"fires": "fires (warning)", "silent": "silent", "not-evaluated": "not-evaluated (renal missing)"}
    assert lines(proc) == [f"PASS ldn-renal-impairment[{i}] {c['name']}: {words[c['expect']]}"
                           for i, c in enumerate(RENAL_CASES)] + [f"{len(RENAL_CASES)} passed, 0 failed"]
    assert "PASS ldn-renal-impairment[0] eGFR 42: fires (warning)" in lines(proc)
    nothing = run("test", "-k", "no-such-rule")
    assert nothing.returncode == 1 and lines(nothing) == ["0 passed, 0 failed"]


def test_a_threshold_that_breaks_a_case_fails_test_validate_and_start_up(rules):
    old = version(rules, RENAL)
    edit(rules, RENAL, "value: 60", "value: 40")
    new = bump(rules, RENAL)
    proc = run("lock", "--rules", str(rules))
    assert proc.returncode == 0 and lines(proc) == [f"locked ldn-renal-impairment {new} in {rules}/{lock.LOCK_FILE}"]
    assert {old, new} <= yaml.safe_load((rules / lock.LOCK_FILE).read_text())["ldn-renal-impairment"].keys()

    proc = run("test", "--rules", str(rules))
    assert proc.returncode == 1
    assert [l for l in lines(proc) if not l.startswith("PASS ")] == [
        "FAIL ldn-renal-impairment[0] eGFR 42: expected fires (warning), got silent",
        f"{shipped_case_count() - 1} passed, 1 failed"]

    proc = run("validate", "--rules", str(rules))
    assert proc.returncode == 1
    assert lines(proc) == [f"{rules}/{RENAL}: rule ldn-renal-impairment: field tests[0]: case 'eGFR 42' failed: "
                           "expected fires (warning), got silent", "1 problem found"]

    proc = run("diff", str(ROOT / "rules"), str(rules))
    assert proc.returncode == 0
    assert lines(proc)[:2] == [f"changed ldn-renal-impairment {old} -> {new}",
                               "    parameters: parameters.egfr_threshold.value: 60 -> 40"]

    serve = subprocess.run([sys.executable, "-m", "service.serve"], cwd=ROOT, capture_output=True, text=True,
                           timeout=120, env={"RULES_DIR": str(rules), "PORT": "0", "PATH": "/usr/bin:/bin"})
    assert serve.returncode == 2
    assert "start-up stopped: rule ldn-renal-impairment case [0] 'eGFR 42' failed: expected fires (warning), " \
           "got silent" in serve.stderr


def test_an_unlocked_rule_is_tried_out_with_a_warning_but_not_validated(rules):
    edit(rules, RENAL, "value: 60", "value: 45")
    proc = run("test", "--rules", str(rules), "-k", "renal-impairment")
    assert proc.returncode == 0 and lines(proc)[-1] == f"{len(RENAL_CASES)} passed, 0 failed"
    assert "warning: " in proc.stderr and "validate and start-up refuse this" in proc.stderr


def test_the_rule_case_tests_of_make_test_run_against_rules_dir(rules):
    edit(rules, RENAL, "value: 60", "value: 40")
    bump(rules, RENAL)
    assert run("lock", "--rules", str(rules)).returncode == 0
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/knowledge/test_rule_cases.py"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "RULES_DIR": str(rules)})
    assert proc.returncode == 1, proc.stdout[-2000:]
    failed = [l for l in proc.stdout.splitlines() if l.startswith("FAILED")]
    assert len(failed) == 1 and "ldn-renal-impairment[0] eGFR 42" in failed[0], failed


# --- diff -------------------------------------------------------------------------------------------------------------

def test_diff_lists_added_removed_and_changed_rules_with_versions(rules):
    (rules / "ldn/ldn-titration-step.yaml").unlink()
    shutil.copy(rules / "ldn/ldn-bedtime-dosing.yaml", rules / "ldn/ldn-bedtime-dosing-copy.yaml")
    edit(rules, "ldn/ldn-bedtime-dosing-copy.yaml", "id: ldn-bedtime-dosing", "id: ldn-bedtime-dosing-copy")
    edit(rules, "ldn/ldn-perioperative-hold.yaml", "value: 2\n", "value: 1\n")
    edit(rules, "ldn/ldn-perioperative-hold.yaml", "  - severity: critical", "  - severity: warning")
    edit(rules, "ldn/ldn-perioperative-hold.yaml", "v3_act_code: ALRTENDLATE", "v3_act_code: DACT")
    edit(rules, "ldn/ldn-perioperative-hold.yaml", "title: Hold LDN before elective surgery",
         "title: Hold LDN before an elective procedure")
    hold = version(rules, "ldn/ldn-perioperative-hold.yaml")
    new = bump(rules, "ldn/ldn-perioperative-hold.yaml")
    (rules / "sources/registry.yaml").write_text((rules / "sources/registry.yaml").read_text() + "\n")
    proc = run("diff", str(ROOT / "rules"), str(rules))
    assert proc.returncode == 0, proc.stdout
    assert lines(proc) == [
        f"added   ldn-bedtime-dosing-copy {version(rules, 'ldn/ldn-bedtime-dosing.yaml')}",
        f"changed ldn-perioperative-hold {hold} -> {new}",
        "    coding: coding.v3_act_code: ALRTENDLATE -> DACT",
        "    severity: escalations[0].severity: critical -> warning",
        "    parameters: parameters.hold_days_min.value: 2 -> 1",
        "    texts: title: Hold LDN before elective surgery -> Hold LDN before an elective procedure",
        f"removed ldn-titration-step {version(ROOT / 'rules', 'ldn/ldn-titration-step.yaml')}",
        "other   sources/registry.yaml: changed",
        "1 added, 1 removed, 1 changed (0 without a version change), 1 other files changed"]


def test_diff_of_a_folder_without_rules_says_so(tmp_path):
    proc = run("diff", str(ROOT / "rules"), str(tmp_path))
    assert proc.returncode == 2 and proc.stdout == ""
    assert f"{tmp_path}/ldn: no rule files (*.yaml) found" in proc.stderr


# --- explain ----------------------------------------------------------------------------------------------------------

CONTEXT = {"as_of": "2026-03-01", "ldn": {"status": "active", "dose_mg": 4.5, "timing": "bedtime"},
           "medications": [{"name": "Percocet 5/325", "status": "proposed"}],
           "procedures": [{"name": "Knee replacement", "date": "2026-03-02", "elective": True,
                           "opioids_expected": True}]}


def test_explain_json_gives_the_engines_outcome_for_every_active_rule(tmp_path, evaluator):
    path = tmp_path / "context.json"
    path.write_text(json.dumps(CONTEXT))
    proc = run("explain", str(path), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    rules = {r["rule_id"]: r for r in json.loads(proc.stdout)["rules"]}
    assert set(rules) == {r.id for r in evaluator.kb.active_rules}
    decision = evaluator.evaluate(PatientContext.model_validate(CONTEXT))
    fired = {a.rule_id: a.severity for a in decision.advisories}
    skipped = {n.rule_id: n for n in decision.not_evaluated}
    for rule_id, entry in rules.items():
        assert {"rule_id", "outcome", "severity", "trace"} <= entry.keys()
        want = "fired" if rule_id in fired else "not-evaluated" if rule_id in skipped else "silent"
        assert entry["outcome"] == want, rule_id
        assert entry["severity"] == (fired.get(rule_id) or (skipped[rule_id].severity if rule_id in skipped else None))
        assert entry["trace"]["when"]["result"] is (want == "fired") and entry["agrees"]
    hold = rules["ldn-perioperative-hold"]
    assert (hold["outcome"], hold["severity"], hold["escalation"]) == ("fired", "critical", 0)
    leaf = hold["trace"]["escalations"][0]["when"]
    assert leaf == {"fact": "procedures.periop_days_until", "op": "lte", "operand": 2, "param": "hold_days_min",
                    "present": True, "value": 1, "result": True}
    assert rules["ldn-renal-impairment"]["outcome"] == "not-evaluated"
    assert rules["ldn-renal-impairment"]["missing"] == ["renal"]


def test_explain_text_shows_the_tree_with_values(tmp_path):
    path = tmp_path / "context.json"
    path.write_text(json.dumps(CONTEXT))
    proc = run("explain", str(path))
    assert proc.returncode == 0
    out = proc.stdout
    v = version(ROOT / "rules", "ldn/ldn-perioperative-hold.yaml")
    assert f"ldn-perioperative-hold {v}: fired, critical (escalations[0])\n  when:\n    [yes] all of:\n" in out
    assert "        [yes] procedures.periop_days_until lte 30 (param lookahead_days)   (value: 1)\n" in out
    v = version(ROOT / "rules", RENAL)
    assert f"ldn-renal-impairment {v}: not-evaluated: renal not provided (could have been warning)" in out
    assert "            [no ] renal.egfr lt 60 (param egfr_threshold)   (value: absent)" in out
    assert f"ldn-dose-above-range {version(ROOT / 'rules', 'ldn/ldn-dose-above-range.yaml')}: silent\n" in out
    assert "        [no ] ldn.dose_mg gt 5 (param ldn_max_mg)   (value: 4.5)\n" in out


def test_explain_refuses_a_context_that_is_not_a_request(tmp_path):
    path = tmp_path / "context.json"
    path.write_text(json.dumps({"ldn": {"status": "active", "dose_mg": "lots"}}))
    proc = run("explain", str(path))
    assert proc.returncode == 2 and proc.stdout == ""
    assert "not a valid patient context" in proc.stderr and "ldn.dose_mg" in proc.stderr


def test_a_knowledge_base_that_does_not_load_stops_trial_commands(rules, tmp_path):
    edit(rules, RENAL, "fact: renal.egfr", "fact: renal.gfr")
    proc = run("test", "--rules", str(rules))
    assert proc.returncode == 2 and proc.stdout == ""
    assert f"{rules}/{RENAL}: rule ldn-renal-impairment: field when.all[1].any[0].fact: unknown fact" in proc.stderr
