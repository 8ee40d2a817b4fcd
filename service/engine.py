"""The rules engine: our rules compiled once into one durable-rules ruleset, evaluated one fact per request.

durable-rules 2.0.28 is unmaintained C with traps measured on this machine (shared/DURABLE-RULES.md); each
defence below names the trap it avoids, and tests/test_engine_traps.py reproduces every trap:
  * `post` fires only one rule per event          -> we assert a fact, which runs every matching rule.
  * `delete_state` segfaults if no action ran      -> a catch-all rule guarantees one action per fact.
  * the default Host's timer threads crash         -> NoDispatchHost disables them; actions run inline.
  * an unguarded `$nex` matches the state fact     -> every rule is and-ed with a positive type test.
  * at most 1024 live sessions per ruleset         -> one fresh sid per evaluation, deleted in `finally`.
  * action exceptions are swallowed into the state -> we read the returned state and raise.
  * its JSON parser rejects exponent notation         -> facts carry plain decimals; we refuse any other float
    (Python writes 1e-05 and 1e+16; durable fails with error 204).
"""
from __future__ import annotations

import copy
import threading
import uuid
from typing import Any, Iterable

import durable_rules_engine
from durable import engine as durable_engine

from .knowledge.conditions import to_durable
from .knowledge.rules import Rule

FACT_TYPE = "ldn_context"
RULESET = "ldn"
CATCH_ALL = "__catch_all__"
MAX_ACTIONS = 500          # far above rules x escalations; reaching it means an action loop


class EngineError(RuntimeError):
    """The engine could not evaluate a fact. Never turned into an all-clear."""


class NoDispatchHost(durable_engine.Host):
    """engine.Host starts two self-rescheduling timer threads that walk the state pool without a lock
    (error 307 then SIGSEGV under load). Synchronous, stateless evaluation needs neither."""

    def _run(self) -> None:
        pass


def _check_numbers(node: Any) -> None:
    if isinstance(node, dict):
        for value in node.values():
            _check_numbers(value)
    elif isinstance(node, float) and ("e" in repr(node) or node != node):
        raise EngineError(f"number {node!r} cannot be passed to durable-rules (plain decimals only)")


def rule_name(rule_id: str, escalation: int | None = None) -> str:
    return rule_id if escalation is None else f"{rule_id}#{escalation}"


def compile_ruleset(rules: Iterable[Rule]) -> dict[str, dict[str, Any]]:
    """Rule files -> durable JSON ruleset (without actions). Inactive rules are left out."""
    def guarded(condition: dict[str, Any]) -> dict[str, Any]:
        return {"all": [{"m": {"$and": [{"t": FACT_TYPE}, to_durable(condition)]}}]}

    out: dict[str, dict[str, Any]] = {}
    for rule in rules:
        if not rule.active:
            continue
        out[rule_name(rule.id)] = guarded(rule.when)
        for i, esc in enumerate(rule.escalations):
            out[rule_name(rule.id, i)] = guarded({"all": [rule.when, esc.when]})
    return out


class DurableEngine:
    """Evaluates one patient fact against every active rule; returns the names of the rules that fired.

    Thread-safe: one lock around each evaluation (the C core holds the GIL per call, but Python-level steps
    interleave, and correctness without the lock is only empirical)."""

    def __init__(self, rules: Iterable[Rule]):
        definitions = copy.deepcopy(compile_ruleset(rules))   # durable deletes "run" from the dict in place
        self.rule_names = frozenset(definitions)
        self._fired: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        for name, definition in definitions.items():
            definition["run"] = self._action(name)
        definitions[CATCH_ALL] = {"all": [{"m": {"t": FACT_TYPE}}], "run": self._action(None)}
        self._host = NoDispatchHost()
        try:
            self._host.register_rulesets({RULESET: definitions})
        except durable_rules_engine.error as exc:
            raise EngineError(f"durable-rules rejected the compiled ruleset: {exc}") from exc

    def _action(self, name: str | None):
        fired = self._fired

        def action(c: Any) -> None:   # exactly one parameter: a second one makes durable treat it as async
            names = fired[c.s.sid]
            if len(names) >= MAX_ACTIONS:
                if names[-1] != "__loop__":
                    names.append("__loop__")
                    c.delete_state()  # the only way to stop a loop from inside durable
                return
            if name is not None:
                names.append(name)
        return action

    def evaluate(self, fact: dict[str, Any]) -> frozenset[str]:
        _check_numbers(fact)
        sid = uuid.uuid4().hex
        message = dict(fact, t=FACT_TYPE, sid=sid)
        with self._lock:
            self._fired[sid] = []
            state = None
            try:
                state = self._host.assert_fact(RULESET, message)
            except (durable_rules_engine.error, durable_engine.MessageNotHandledException) as exc:
                raise EngineError(f"durable-rules could not evaluate the fact: {exc}") from exc
            finally:
                fired = self._fired.pop(sid)
                try:
                    self._host.delete_state(RULESET, sid)
                except durable_rules_engine.error:
                    pass   # 309: the sid never got a state (the assert itself failed, already raised)
        if fired and fired[-1] == "__loop__":
            raise EngineError("action loop detected")
        if state and "exception" in state:
            raise EngineError(f"a rule action failed: {state['exception']}")
        return frozenset(fired)
