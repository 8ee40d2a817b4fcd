"""Scratch prototype, NOT used by the service or the benchmark: DurableEngine.evaluate driving durable-rules' C API
directly (bench/README.md, "what remains", item 1). assert_fact, then start_action_for_state /
complete_and_start_action until empty, the rule name being the action message's first key; no Python actions,
no per-action JSON of the state. Kept: catch-all (inherited ruleset), type guard, NoDispatchHost, fresh sid +
delete_state in finally, loop cap (an iteration count), durable errors -> EngineError, _check_numbers.
Not done before shipping: tests/test_engine_traps.py reaches into the Python actions (`_actions[...]._func`) for the
$nex and swallowed-exception traps; those two tests must be rewritten against this loop (the $nex one should count
loop iterations), and the 1024-session and soak tests run against it.

    PYTHONPATH=. .venv/bin/python -c "from bench.direct_engine_prototype import DirectEngine; ..."
"""
import json, uuid
import durable_rules_engine
from service.engine import DurableEngine, EngineError, FACT_TYPE, RULESET, CATCH_ALL, MAX_ACTIONS, _check_numbers


class DirectEngine(DurableEngine):
    def __init__(self, rules):
        super().__init__(rules)
        self._handle = self._host.get_ruleset(RULESET)._handle

    def evaluate(self, fact):
        _check_numbers(fact)
        sid = uuid.uuid4().hex
        text = json.dumps(dict(fact, t=FACT_TYPE, sid=sid), ensure_ascii=False)
        h = self._handle
        fired = []
        with self._lock:
            try:
                try:
                    code, state_handle = durable_rules_engine.assert_fact(h, text)
                    if code != 0:
                        raise EngineError(f"durable-rules did not handle the fact (code {code})")
                    result = durable_rules_engine.start_action_for_state(h, state_handle)
                    n = 0
                    while result:
                        n += 1
                        if n > MAX_ACTIONS:
                            raise EngineError("action loop detected")
                        message = result[1] if isinstance(result, tuple) else result
                        name = next(iter(json.loads(message)))
                        if name != CATCH_ALL:
                            fired.append(name)
                        result = durable_rules_engine.complete_and_start_action(h, state_handle)
                except durable_rules_engine.error as exc:
                    raise EngineError(f"durable-rules could not evaluate the fact: {exc}") from exc
            finally:
                try:
                    durable_rules_engine.delete_state(h, sid)
                except durable_rules_engine.error:
                    pass
        return frozenset(fired)
