"""The rules engine: our rules compiled once into one durable-rules ruleset, evaluated one fact per request.

We drive durable-rules' C core (`durable_rules_engine`) directly rather than through its Python `Host`: the
Host's action loop JSON-encodes and decodes the whole session state around every fired action, which was two
thirds of an evaluation. The loop below asks the C core which rule matched, records its name and moves on.

durable-rules 2.0.28 is unmaintained C with traps measured on this machine (shared/DURABLE-RULES.md); each
defence below names the trap it avoids, and tests/test_engine_traps.py reproduces every trap:
  * `post` fires only one rule per event          -> we assert a fact, which runs every matching rule.
  * `delete_state` segfaults if no action ran      -> a catch-all rule guarantees one action per fact.
  * the default Host's timer threads crash         -> no Host at all: the ruleset is created and driven here.
  * an unguarded `$nex` matches the state fact     -> every rule is and-ed with a positive type test, and the
                                                      action loop is capped (MAX_ACTIONS).
  * at most 1024 live sessions per ruleset         -> one fresh sid per evaluation, deleted in `finally`.
  * action exceptions are swallowed into the state -> there are no Python actions; any C error raises.
  * its JSON parser rejects exponent notation      -> facts carry plain decimals; we refuse any other float
    (Python writes 1e-05 and 1e+16; durable fails with error 204).
"""
from __future__ import annotations

import itertools
import json
import threading
from json.decoder import scanstring
from typing import Any, Iterable

import durable_rules_engine as durable

from ..knowledge.conditions import to_durable
from ..knowledge.rules import Rule

FACT_TYPE = "ldn_context"
RULESET = "ldn"
CATCH_ALL = "__catch_all__"
MAX_ACTIONS = 500          # far above rules x escalations; reaching it means an action loop

_HANDLED = 0               # durable's assert_fact codes: 1 not handled, 2 already observed, 3 deferred


class EngineError(RuntimeError):
    """The engine could not evaluate a fact. Never turned into an all-clear."""


def _check_numbers(node: Any) -> None:
    if isinstance(node, dict):
        for value in node.values():
            _check_numbers(value)
    elif isinstance(node, float) and ("e" in repr(node) or node != node):
        raise EngineError(f"number {node!r} cannot be passed to durable-rules (plain decimals only)")


# Facts as durable-rules reads them and as advisory ids hash them (service/decision.py): one encoding serves both.
# Sorted keys, so the text is a function of the fact alone; no circular-reference check (facts are trees).
_FACT_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=False, check_circular=False)


def encode_fact(fact: dict[str, Any]) -> str:
    """The fact as JSON text for `evaluate_encoded`. Refuses what durable-rules would misread (see the module notes)."""
    _check_numbers(fact)
    if "t" in fact or "sid" in fact:
        raise EngineError("a fact may not carry the engine's own keys 't' or 'sid'")
    return _FACT_JSON.encode(fact)


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


def _fired_rule(message: str) -> str:
    """The rule an action message belongs to: durable sends `{"<rule name>": {"m": <fact>}}`. Only the first
    key is decoded (by the stdlib's own JSON string scanner), not the fact that follows it."""
    if not message.startswith('{"'):
        raise EngineError("durable-rules returned an action message of an unknown shape")
    name, _ = scanstring(message, 2)
    return name


class DurableEngine:
    """Evaluates one patient fact against every active rule; returns the names of the rules that fired.

    Thread-safe: one lock around each evaluation (the C core holds the GIL per call, but the calls of one
    evaluation must not interleave with another's)."""

    def __init__(self, rules: Iterable[Rule]):
        definitions = compile_ruleset(rules)
        self.rule_names = frozenset(definitions)
        definitions[CATCH_ALL] = {"all": [{"m": {"t": FACT_TYPE}}]}
        try:
            self._handle = durable.create_ruleset(RULESET, json.dumps(definitions, ensure_ascii=False))
        except durable.error as exc:
            raise EngineError(f"durable-rules rejected the compiled ruleset: {exc}") from exc
        self._lock = threading.Lock()
        self._sids = itertools.count()   # a sid only has to be new to this ruleset: never reused, always deleted

    def evaluate(self, fact: dict[str, Any]) -> frozenset[str]:
        return self.evaluate_encoded(encode_fact(fact))

    def evaluate_encoded(self, fact_json: str) -> frozenset[str]:
        """`fact_json`: encode_fact's text of the fact (a JSON object)."""
        with self._lock:
            sid = str(next(self._sids))
            # The fact's own text with the type and the session id appended (encode_fact keeps both keys out).
            text = f'{fact_json[:-1]}{", " if len(fact_json) > 2 else ""}"t": "{FACT_TYPE}", "sid": "{sid}"}}'
            try:
                return self._run(sid, text)
            except durable.error as exc:
                raise EngineError(f"durable-rules could not evaluate the fact: {exc}") from exc
            finally:
                try:
                    durable.delete_state(self._handle, sid)
                except durable.error:
                    pass   # 309: the sid never got a state (the assert itself failed, already raised)

    def _run(self, sid: str, text: str) -> frozenset[str]:
        """Assert the fact, then take every pending action in turn; each one is a rule that matched."""
        handle = self._handle
        code, state = durable.assert_fact(handle, text)
        if code != _HANDLED:
            raise EngineError(f"durable-rules did not take the fact (code {code})")
        fired: set[str] = set()
        result = durable.start_action_for_state(handle, state)
        actions = 0
        try:
            while result:
                actions += 1
                if actions > MAX_ACTIONS:
                    raise EngineError("action loop detected")
                # the first call returns (state, message), later ones the message alone
                fired.add(_fired_rule(result[1] if isinstance(result, tuple) else result))
                result = durable.complete_and_start_action(handle, state)
        except BaseException:
            if result:   # an action is open: close it before delete_state; the first error is the one to report
                try:
                    durable.abandon_action(handle, state)
                except durable.error:
                    pass
            raise
        fired.discard(CATCH_ALL)
        return frozenset(fired)
