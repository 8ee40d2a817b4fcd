"""`ldn-rules`: the rule author's commands. Exit 0: success; 1: the check found problems (invalid knowledge, a
failing case, a content change without a version change, a refused lock); 2: the command could not run (bad
arguments, unreadable input, a knowledge base that does not load)."""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Callable

from pydantic import ValidationError

from ..core.context import PatientContext
from ..core.decision import Evaluator
from ..core.engine import EngineError
from ..knowledge import lock
from ..knowledge.base import PROJECT_ROOT, KnowledgeBase, check_knowledge, load_knowledge
from ..knowledge.errors import KnowledgeError
from . import casetest, diff, explain, replay

OK, FOUND, CANNOT = 0, 1, 2


def _say(*lines: str, err: bool = False) -> None:
    print(*lines, sep="\n", file=sys.stderr if err else sys.stdout)


def _trial_knowledge(args: argparse.Namespace) -> KnowledgeBase:
    """The knowledge base for a trial run (test, explain, replay): loaded even when the lock does not match
    yet, which is said on stderr (validate and start-up refuse it)."""
    kb = load_knowledge(args.rules, args.schemas, check_lock=False)
    try:
        problems = lock.check(args.rules / lock.LOCK_FILE, kb.rules.values())
    except KnowledgeError as exc:
        problems = [exc]
    for problem in problems:
        _say(f"warning: {problem.line()} (validate and start-up refuse this)", err=True)
    return kb


def cmd_validate(args: argparse.Namespace) -> int:
    kb, problems = check_knowledge(args.rules, args.schemas)
    if kb is not None:
        try:
            evaluator = Evaluator(kb)
        except EngineError as exc:
            problems.append(KnowledgeError(str(args.rules), str(exc)))
        else:   # start-up runs the cases too
            problems += [KnowledgeError(str(args.rules / "ldn" / kb.rules[r.rule_id].file),
                                        f"case {r.name!r} failed: {'; '.join(r.problems)}",
                                        rule=r.rule_id, field=f"tests[{r.index}]")
                         for r in casetest.run_cases(evaluator) if not r.passed]
    if problems:
        _say(*(p.line() for p in problems), f"{len(problems)} problem{'s' * (len(problems) != 1)} found")
        return FOUND
    _say(f"valid: {len(kb.rules)} rules ({len(kb.active_rules)} active), every version locked, every case passes; "
         f"knowledge {kb.version}")
    return OK


def cmd_test(args: argparse.Namespace) -> int:
    evaluator = Evaluator(_trial_knowledge(args))
    passed = failed = 0
    for result in casetest.run_cases(evaluator, args.k):
        if result.passed:
            passed += 1
            _say(f"PASS {result.label}" + (f": {result.got}" if args.verbose else ""))
        else:
            failed += 1
            _say(f"FAIL {result.label}: " + "; ".join(result.problems))
            if args.verbose:
                _say(f"     expected {result.expected}, got {result.got}")
    _say(f"{passed} passed, {failed} failed")
    return FOUND if failed or not passed else OK


def cmd_explain(args: argparse.Namespace) -> int:
    try:
        body = json.loads(args.context.read_text(encoding="utf-8"))
        ctx = PatientContext.model_validate(body)
    except (OSError, ValueError) as exc:
        detail = "; ".join(".".join(map(str, e["loc"])) + ": " + e["msg"] for e in exc.errors()) \
            if isinstance(exc, ValidationError) else str(exc)
        _say(f"{args.context}: not a valid patient context (a POST /v1/evaluations body): {detail}", err=True)
        return CANNOT
    result = explain.explain(Evaluator(_trial_knowledge(args)), ctx)
    _say(json.dumps({k: result[k] for k in ("knowledge_version", "as_of", "rules")}, indent=2, ensure_ascii=False)
         if args.format == "json" else explain.render_text(result))
    if not all(entry["agrees"] for entry in result["rules"]):
        _say("the trace disagrees with the engine for a rule (marked !!): report this", err=True)
        return FOUND
    return OK


def cmd_diff(args: argparse.Namespace) -> int:
    changes, other = diff.compare(args.old, args.new)
    _say(diff.render(changes, other))
    return FOUND if any(c.unversioned for c in changes) else OK


def _since(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD) or an ISO date-time") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def cmd_replay(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from ..audit.store import AuditStore, normalize_url
    from ..settings import Settings
    url = normalize_url(args.database_url or Settings().database_url)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).is_file():
        _say(f"ldn-rules replay: no audit store at {url.database} (set DATABASE_URL or --database-url)", err=True)
        return CANNOT
    evaluator = Evaluator(_trial_knowledge(args))
    store = AuditStore(url)
    try:
        impact = replay.replay_all(store.iterate(args.since), evaluator, args.since)
    except SQLAlchemyError as exc:   # the type only: a driver message may carry the URL
        _say(f"ldn-rules replay: the audit store {store!r} could not be read ({type(exc).__name__})", err=True)
        return CANNOT
    finally:
        store.close()
    _say(json.dumps(impact.as_dict(), indent=2) if args.format == "json" else replay.render(impact))
    return OK


def cmd_lock(args: argparse.Namespace) -> int:
    kb = load_knowledge(args.rules, args.schemas, check_lock=False)
    path = args.rules / lock.LOCK_FILE
    current = lock.read_lock(path) if path.exists() else {}
    new, added, refused = lock.updated(current, kb.rules.values(), path)
    if refused:
        _say(*(p.line() for p in refused), "lock not written", err=True)
        return FOUND
    if added:
        lock.write_lock(path, new)
    _say(f"locked {', '.join(added)} in {path}" if added else f"{path}: every rule version already locked")
    return OK


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="ldn-rules", description="Check, try out and release LDN rules.")
    sub = top.add_subparsers(dest="command", required=True)

    def command(name: str, run: Callable[[argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        # The defaults are the service's own (RULES_DIR, SCHEMAS_DIR; unset: the shipped folders).
        p.add_argument("--rules", type=Path, default=Path(os.environ.get("RULES_DIR") or PROJECT_ROOT / "rules"),
                       help="knowledge directory (default: $RULES_DIR, else the shipped rules/)")
        p.add_argument("--schemas", type=Path, help=argparse.SUPPRESS,
                       default=Path(os.environ.get("SCHEMAS_DIR") or PROJECT_ROOT / "schemas"))
        p.set_defaults(run=run)
        return p

    command("validate", cmd_validate, "everything start-up checks (files, lock, the rules' own cases), each "
            "problem as FILE: rule ID: field PATH: message")
    t = command("test", cmd_test, "run every rule's own test cases")
    t.add_argument("-k", metavar="PATTERN", help="only the cases whose 'rule-id[i] name' contains PATTERN")
    t.add_argument("-v", "--verbose", action="store_true", help="say what each case got")
    e = command("explain", cmd_explain, "why each rule fired, stayed silent or was not evaluated for a context")
    e.add_argument("context", type=Path, metavar="CONTEXT.json", help="a POST /v1/evaluations request body")
    e.add_argument("--format", choices=("text", "json"), default="text")
    d = command("diff", cmd_diff, "rules added, removed and changed between two knowledge directories")
    d.add_argument("old", type=Path, metavar="OLD_DIR")
    d.add_argument("new", type=Path, metavar="NEW_DIR")
    r = command("replay", cmd_replay, "what the rules would change in the stored decisions of the audit store")
    r.add_argument("--since", type=_since, help="only decisions recorded from this date (UTC) on")
    r.add_argument("--database-url", help="audit store (default: DATABASE_URL, as the service)")
    r.add_argument("--format", choices=("text", "json"), default="text")
    command("lock", cmd_lock, "record each new rule version's content hash in versions.lock.yaml")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except KnowledgeError as exc:
        _say(exc.line(), "the knowledge base does not load: run `ldn-rules validate`", err=True)
        return CANNOT
    except (EngineError, ValueError, OSError) as exc:
        _say(f"ldn-rules {args.command}: {exc}", err=True)
        return CANNOT


if __name__ == "__main__":
    sys.exit(main())
