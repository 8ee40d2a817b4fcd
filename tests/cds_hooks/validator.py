"""The CDS Hooks checklist's invariants (../shared/CDS-HOOKS.md §1.0, 1.1, 1.3), as a validator for responses and
discovery documents. Each function returns a list of problems ([] = conformant), each naming the JSON path.

`ours=True` adds this service's stricter rules on top of the spec: every card and suggestion has a uuid (the
client sends feedback only for those), source.url and source.topic are present, every action of a suggestion
is valid R4 (for the MedicationRequests we update), and prefetch templates use CDS Hooks 2.0 tokens only.
"""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

INDICATORS = {"info", "warning", "critical"}
SELECTION = {"at-most-one", "any"}
ACTION_TYPES = {"create", "update", "delete"}
LINK_TYPES = {"absolute", "smart"}
TOKEN = re.compile(r"\{\{(.*?)\}\}")
TOKEN_2_0 = re.compile(r"^(context\.[A-Za-z]+|userPractitionerId|userPractitionerRoleId|userPatientId|"
                       r"userRelatedPersonId)$")
RESOURCE_TYPE = re.compile(r"^[A-Z][A-Za-z]+$")
MR_STATUS = {"active", "on-hold", "cancelled", "completed", "entered-in-error", "stopped", "draft", "unknown"}
MR_INTENT = {"proposal", "plan", "order", "original-order", "reflex-order", "filler-order", "instance-order",
             "option"}
FHIR_DATETIME = re.compile(
    r"^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])"
    r"(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]{1,9})?)?)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]"
    r"|14:00)?)?)?$")


def empty_values(node: Any, path: str, allowed: tuple[str, ...] = ()) -> list[str]:
    """§1.0: no null, "", [] or {} anywhere, except at the paths in `allowed` (e.g. the top-level cards [])."""
    out = []
    if path not in allowed and (node is None or node == "" or node == [] or node == {}):
        out.append(f"{path}: empty value {node!r} (omit optional attributes instead)")
    if isinstance(node, dict):
        for k, v in node.items():
            out += empty_values(v, f"{path}.{k}", allowed)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += empty_values(v, f"{path}[{i}]", allowed)
    return out


def _absolute(url: Any) -> bool:
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _string(obj: dict[str, Any], key: str, path: str, required: bool = True) -> list[str]:
    if key not in obj:
        return [f"{path}.{key}: required"] if required else []
    return [] if isinstance(obj[key], str) and obj[key] else [f"{path}.{key}: must be a non-empty string"]


def _coding(c: Any, path: str, display_required: bool) -> list[str]:
    if not isinstance(c, dict):
        return [f"{path}: must be a Coding object"]
    out = _string(c, "system", path) + _string(c, "code", path)
    return out + _string(c, "display", path, required=display_required)


def r4_medication_request(r: Any, path: str) -> list[str]:
    """The parts of R4 MedicationRequest validity our update actions can get wrong."""
    if not isinstance(r, dict):
        return [f"{path}: must be a resource"]
    out = []
    if r.get("resourceType") != "MedicationRequest":
        return out
    if r.get("status") not in MR_STATUS:
        out.append(f"{path}.status: {r.get('status')!r} is not an R4 MedicationRequest status")
    if r.get("intent") not in MR_INTENT:
        out.append(f"{path}.intent: {r.get('intent')!r} is not an R4 MedicationRequest intent")
    if not isinstance(r.get("subject"), dict):
        out.append(f"{path}.subject: required (Reference)")
    if ("medicationCodeableConcept" in r) == ("medicationReference" in r):
        out.append(f"{path}: exactly one of medicationCodeableConcept / medicationReference")
    for key in ("category", "dosageInstruction", "note"):
        if key in r and not isinstance(r[key], list):
            out.append(f"{path}.{key}: must be an array in R4")
    for key in ("statusReason",):
        if key in r and not isinstance(r[key], dict):
            out.append(f"{path}.{key}: must be a CodeableConcept")
    for i, d in enumerate(r.get("dosageInstruction") or []):
        where = f"{path}.dosageInstruction[{i}]"
        if "doseQuantity" in d:
            out.append(f"{where}.doseQuantity: STU3 shape; R4 puts it in doseAndRate")
        repeat = (d.get("timing") or {}).get("repeat") or {}
        if sum(k in repeat for k in ("boundsDuration", "boundsRange", "boundsPeriod")) > 1:
            out.append(f"{where}.timing.repeat: only one bounds[x]")
        for k in ("start", "end"):
            v = (repeat.get("boundsPeriod") or {}).get(k)
            if v is not None and not FHIR_DATETIME.match(str(v)):
                out.append(f"{where}.timing.repeat.boundsPeriod.{k}: not a dateTime")
    for i, n in enumerate(r.get("note") or []):
        if not isinstance(n, dict) or not isinstance(n.get("text"), str):
            out.append(f"{path}.note[{i}]: Annotation needs text")
    return out


def _action(a: Any, path: str, in_suggestion: bool, ours: bool) -> list[str]:
    if not isinstance(a, dict):
        return [f"{path}: must be an object"]
    out = []
    if a.get("type") not in ACTION_TYPES:
        out.append(f"{path}.type: must be one of {sorted(ACTION_TYPES)}")
    out += _string(a, "description", path, required=in_suggestion)            # cds-resp-5
    if a.get("type") in ("create", "update") and not isinstance(a.get("resource"), dict):
        out.append(f"{path}.resource: required for {a.get('type')}")
    if a.get("type") == "delete":
        if "resourceId" not in a and ours:
            out.append(f"{path}.resourceId: SHOULD be used for delete")
        if isinstance(a.get("resource"), dict) and "id" in a["resource"]:
            out.append(f"{path}.resource: an id in resource for delete is deprecated (cds-resp-2)")
    if "resourceId" in a:
        rid = a["resourceId"]
        if not isinstance(rid, str) or "/" not in rid or not RESOURCE_TYPE.match(rid.split("/")[0]) \
                or rid.startswith("http"):
            out.append(f"{path}.resourceId: must be a relative reference Type/id")
    if ours and a.get("type") in ("create", "update"):
        out += r4_medication_request(a.get("resource"), f"{path}.resource")
    return out


def validate_card(card: Any, path: str, ours: bool) -> list[str]:
    if not isinstance(card, dict):
        return [f"{path}: must be an object"]
    out = []
    out += _string(card, "uuid", path, required=ours)
    out += _string(card, "summary", path)
    if isinstance(card.get("summary"), str) and len(card["summary"]) >= 140:
        out.append(f"{path}.summary: {len(card['summary'])} characters (must be < 140)")
    if card.get("indicator") not in INDICATORS:
        out.append(f"{path}.indicator: required, one of {sorted(INDICATORS)}")
    out += _string(card, "detail", path, required=False)
    source = card.get("source")
    if not isinstance(source, dict):
        out.append(f"{path}.source: required object")
    else:
        out += _string(source, "label", f"{path}.source")
        for key in ("url", "icon"):
            if key in source and not _absolute(source[key]):
                out.append(f"{path}.source.{key}: must be an absolute URL")
        if ours and "url" not in source:
            out.append(f"{path}.source.url: ours always link the rule page")
        if "topic" in source:
            out += _coding(source["topic"], f"{path}.source.topic", display_required=False)
        elif ours:
            out.append(f"{path}.source.topic: ours always name the rule")
    suggestions = card.get("suggestions")
    if suggestions is not None:
        if not isinstance(suggestions, list):
            out.append(f"{path}.suggestions: must be an array")
            suggestions = []
        if card.get("selectionBehavior") not in SELECTION:                        # cds-resp-6
            out.append(f"{path}.selectionBehavior: required with suggestions, one of {sorted(SELECTION)}")
        recommended = 0
        for i, s in enumerate(suggestions):
            where = f"{path}.suggestions[{i}]"
            if not isinstance(s, dict):
                out.append(f"{where}: must be an object")
                continue
            out += _string(s, "label", where) + _string(s, "uuid", where, required=ours)
            if "isRecommended" in s and not isinstance(s["isRecommended"], bool):
                out.append(f"{where}.isRecommended: must be a boolean")
            recommended += s.get("isRecommended") is True
            for j, a in enumerate(s.get("actions") or []):
                out += _action(a, f"{where}.actions[{j}]", in_suggestion=True, ours=ours)
        if card.get("selectionBehavior") == "at-most-one" and recommended > 1:   # cds-resp-1
            out.append(f"{path}: at most one suggestion may be recommended with at-most-one")
    elif "selectionBehavior" in card and card["selectionBehavior"] not in SELECTION:
        out.append(f"{path}.selectionBehavior: one of {sorted(SELECTION)}")
    for i, reason in enumerate(card.get("overrideReasons") or []):               # cds-resp-4
        out += _coding(reason, f"{path}.overrideReasons[{i}]", display_required=True)
    for i, link in enumerate(card.get("links") or []):
        where = f"{path}.links[{i}]"
        if not isinstance(link, dict):
            out.append(f"{where}: must be an object")
            continue
        out += _string(link, "label", where)
        if not _absolute(link.get("url")):
            out.append(f"{where}.url: required absolute URL")
        if link.get("type") not in LINK_TYPES:
            out.append(f"{where}.type: one of {sorted(LINK_TYPES)}")
        if "appContext" in link and link.get("type") != "smart":                   # cds-resp-3
            out.append(f"{where}.appContext: only for smart links")
    return out


def validate_response(body: Any, ours: bool = True) -> list[str]:
    """A service response: {"cards": [...]} (may be empty), optional non-empty systemActions."""
    if not isinstance(body, dict) or not isinstance(body.get("cards"), list):
        return ["cards: required array"]
    out = empty_values(body, "$", allowed=("$.cards",))
    uuids: list[str] = []
    for i, card in enumerate(body["cards"]):
        out += validate_card(card, f"$.cards[{i}]", ours)
        if isinstance(card, dict):
            uuids += [card["uuid"]] if isinstance(card.get("uuid"), str) else []
            uuids += [s["uuid"] for s in card.get("suggestions") or [] if isinstance(s, dict)
                      and isinstance(s.get("uuid"), str)]
    if len(uuids) != len(set(uuids)):
        out.append("$: card and suggestion uuids must be unique")
    for i, a in enumerate(body.get("systemActions") or []):
        out += _action(a, f"$.systemActions[{i}]", in_suggestion=False, ours=ours)
    return out


def validate_template(template: Any, path: str) -> list[str]:
    """A prefetch template: a relative FHIR read or search, with CDS Hooks 2.0 tokens only."""
    if not isinstance(template, str) or not template:
        return [f"{path}: must be a non-empty string"]
    out = []
    if not RESOURCE_TYPE.match(re.split(r"[/?]", template)[0]) or template.startswith(("http:", "https:", "/")):
        out.append(f"{path}: must be a relative FHIR read or search")
    for token in TOKEN.findall(template):
        if not TOKEN_2_0.match(token.strip()):
            out.append(f"{path}: token {{{{{token}}}}} is not a CDS Hooks 2.0 token")
    return out


def validate_discovery(body: Any, ours: bool = True) -> list[str]:
    if not isinstance(body, dict) or not isinstance(body.get("services"), list):
        return ["services: required array"]
    out = empty_values(body, "$", allowed=("$.services",))
    seen = set()
    for i, s in enumerate(body["services"]):
        path = f"$.services[{i}]"
        if not isinstance(s, dict):
            out.append(f"{path}: must be an object")
            continue
        for key in ("hook", "description", "id"):
            out += _string(s, key, path)
        out += _string(s, "title", path, required=ours)
        if (s.get("id"), s.get("hook")) in seen:
            out.append(f"{path}: duplicate id and hook")
        seen.add((s.get("id"), s.get("hook")))
        if "prefetch" in s:
            if not isinstance(s["prefetch"], dict):
                out.append(f"{path}.prefetch: must be an object")
            elif ours:
                for key, template in s["prefetch"].items():
                    out += validate_template(template, f"{path}.prefetch.{key}")
    return out
