"""Decision -> CDS Hooks cards. A representation only: every card is an advisory of the core Decision (or its
not-evaluated list); nothing here decides clinical questions again.

* indicator = the advisory's severity; summary = its summary (< 140 characters by construction);
* detail = markdown: the advisory's explanation, the recommended action, what was found in the record, and the
  quoted source passages, each linked to this service's copy of the source;
* source = label, the absolute URL of the rule's page in this service, topic = the rule;
* suggestions where the action is clear (chosen by rule id, filled from the advisory's evidence and the rule's
  parameters): remove a draft order (delete, by resourceId), hold LDN before surgery (update: on-hold with
  statusReason "surg", or, when the hold starts later, the last dose day as the dosage's boundsPeriod.end,
  with the hold-from date in a note), change the LDN dose (update of the draft's doseQuantity);
* overrideReasons from the 3.0 ballot's non-adherence reason codes (display included);
* alert fatigue: info-level advisories are cards only when the request asks for them
  (extension "ldn-cds.include-info-cards": true); order and appointment hooks only show advice about what is
  being ordered or booked; rules that could not run for lack of data (warning or critical ones) are listed on
  one info card, never silently passed.
"""
from __future__ import annotations

import datetime as dt
import functools
import re
import uuid
from typing import Any

from ..core.decision import Advisory, Decision
from ..core.ids import uuid5
from ..core.scope import concerns, counterparts
from ..knowledge.base import KnowledgeBase
from ..knowledge.rules import Citation, Rule
from ..knowledge.units import MG_PER_UNIT
from . import codes, fhir
from .fhir_mapping import Mapped, MedicationItem
from ..web.codesystems import CARD_TOPICS, NOT_EVALUATED, RULES
from ..web.urls import catalogue_page, code_system_url, rule_page, source_page
from .models import Action, Card, Coding, Link, OverrideReason, Source, Suggestion

_NS = uuid.UUID("0f7c1d52-8a4e-4c39-9a51-6d2b7e0c3a14")
NON_ADHERENCE = "http://terminology.hl7.org/CodeSystem/non-adherence-reason-codes"
OVERRIDE_REASONS = (
    OverrideReason(system=NON_ADHERENCE, code="action-completed", display="Recommended action was already completed"),
    OverrideReason(system=NON_ADHERENCE, code="cds-not-applicable", display="PC CDS does not apply to patient"),
    OverrideReason(system=NON_ADHERENCE, code="recipient-disagrees-evidence",
                   display="Recipient disagrees with recommendation because of issues with the evidence"),
    OverrideReason(system=NON_ADHERENCE, code="recipient-concerns-outcomes",
                   display="Recipient has concerns regarding potential health outcomes"),
)
UCUM = "http://unitsofmeasure.org"
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|<>~])")


def md(value: Any) -> str:
    """Caller-supplied text inside our markdown: escaped, so a drug name cannot add links or formatting."""
    text = " ".join(str(value).split())
    return _MD_SPECIAL.sub(r"\\\1", text) if _MD_SPECIAL.search(text) else text     # most names need nothing


def _uuid(*parts: object) -> str:
    return uuid5(_NS, "|".join(map(str, parts)))


def _fmt_mg(value: float) -> str:
    return f"{value:g}"


# --- detail -------------------------------------------------------------------------------------------------------

def _found(a: Advisory) -> list[str]:
    e = a.evidence
    lines = []
    for key, label in (("current_opioids", "Opioid"), ("other_naltrexone", "Other naltrexone product")):
        for med in e.get(key) or []:
            lines.append(f"{label}: {md(med.get('name') or ', '.join(med.get('ingredients') or []))} "
                         f"({md(med.get('status', 'status unknown'))})")
    periop = e.get("periop_procedure")
    if periop:
        name = md(periop["name"]) if periop.get("name") else "Elective procedure"
        lines.append(f"{name} on {periop['date']} ({periop['days_until']} days away); perioperative opioids "
                     f"{periop['opioids_expected_text']}")
    renal = e.get("renal")
    if renal:
        parts = [f"eGFR {renal['egfr']:g} mL/min/1.73m²"] if "egfr" in renal else []
        parts += [f"CKD stage {renal['ckd_stage']}"] if renal.get("ckd_stage") else []
        parts += ["on dialysis"] if renal.get("dialysis") else []
        if parts:
            lines.append("Kidney function: " + "; ".join(parts))
    ldn = e.get("ldn")
    if ldn and ldn.get("status") not in (None, "none"):
        dose = f" {_fmt_mg(ldn['dose_mg'])} mg daily" if ldn.get("dose_mg") is not None else ""
        timing = f", {md(ldn['timing'])}" if ldn.get("timing") else ""
        origin = "being ordered" if ldn.get("source") == "ldn" else "in the medication list"
        lines.append(f"LDN{dose}{timing} ({md(ldn['status'])}, {origin})")
    return lines


def detail(a: Advisory, base: str) -> str:
    parts = [a.detail, f"**What to do:** {a.action}"]
    found = _found(a)
    if found:
        parts.append("**In this patient's record:**\n" + "\n".join(f"- {line}" for line in found))
    parts.append(_sources(base, a.citations))
    return "\n\n".join(parts)


@functools.lru_cache(maxsize=256)      # a rule's quotes are knowledge: the same block on every card (bounded)
def _sources(base: str, citations: tuple[Citation, ...]) -> str:
    quotes = []
    for c in citations:
        stance = " *(this source disagrees)*" if c.stance == "conflicts" else ""
        url = source_page(base, c.source_id, c.quote)       # the passage, highlighted in its source
        quotes.append(f"> “{c.quote}”\n>\n> — [{c.title}]({url}){stance}")
    return "**Sources**\n\n" + "\n\n".join(quotes)


# --- suggestions --------------------------------------------------------------------------------------------------

def r4_medication_request(resource: dict[str, Any], patient_id: str) -> dict[str, Any] | None:
    """A copy of the order as a valid R4 MedicationRequest for an update (the whole resource, with the sandbox's
    quirks repaired), or None when it cannot be one (another resource type, no medication)."""
    if resource.get("resourceType") != "MedicationRequest" or not fhir.text(resource.get("id")):
        return None
    try:
        r = fhir.sendable_copy(resource)
    except fhir.NotSendable:                       # NaN, a 310-digit integer, a lone surrogate: not sent back
        return None
    if not isinstance(r.get("medicationCodeableConcept"), dict) and not isinstance(r.get("medicationReference"),
                                                                                   dict):
        return None
    if "category" in r:
        r["category"] = fhir.objs(r["category"])
        if not r["category"]:
            del r["category"]
    r.pop("text", None)                             # the narrative describes the order before the change
    r.setdefault("status", "draft")
    r.setdefault("intent", "order")
    if not isinstance(r.get("subject"), dict):
        r["subject"] = {"reference": f"Patient/{patient_id}"}
    dosages = fhir.objs(r.get("dosageInstruction"))
    for d in dosages:                               # STU3 doseQuantity -> R4 doseAndRate
        if isinstance(d.get("doseQuantity"), dict):
            d.setdefault("doseAndRate", []).append({"doseQuantity": d.pop("doseQuantity")})
    if "dosageInstruction" in r:
        r["dosageInstruction"] = dosages
    return r


# Timing.repeat.boundsDuration units (UCUM) -> (fewest, most) days: a month is 28-31 days, a year 365-366.
_DURATION_DAYS = {"s": (1 / 86400, 1 / 86400), "min": (1 / 1440, 1 / 1440), "h": (1 / 24, 1 / 24), "d": (1, 1),
                  "wk": (7, 7), "mo": (28, 31), "a": (365, 366)}


def _duration(repeat: dict[str, Any]) -> tuple[float, float, str] | None:
    """(fewest, most days, as written) of a dosage's boundsDuration (or boundsRange.high); None: not readable."""
    q = fhir.obj(repeat.get("boundsDuration")) or fhir.obj(fhir.obj(repeat.get("boundsRange")).get("high"))
    value, unit = fhir.number(q.get("value")), fhir.text(q.get("code")) or fhir.text(q.get("unit"))
    if value is None or value < 0 or unit not in _DURATION_DAYS:
        return None
    low, high = _DURATION_DAYS[unit]
    return value * low, value * high, f"{value:g} {unit}"


def _bound(dosage: dict[str, Any], n: int, hold_from: dt.date, order_start: dt.date) -> tuple[bool, str | None]:
    """End one dosage by the last dose day (R4 per-1: never an end before its start). (keep it?, why changed)."""
    last = hold_from - dt.timedelta(days=1)
    repeat = dosage.setdefault("timing", {}).setdefault("repeat", {})
    period = fhir.obj(repeat.get("boundsPeriod"))
    start = fhir.parse_date(period.get("start"))
    if start is not None and start >= hold_from:
        return False, (f"Dosage {n} starts on {period['start']}, after the hold begins: left out of this order; "
                       "order it again after the procedure.")
    if "boundsDuration" in repeat or "boundsRange" in repeat:
        since = start or order_start
        duration = _duration(repeat)
        if duration is not None and since + dt.timedelta(days=duration[1]) <= hold_from:
            return True, None                      # it ends before the hold on its own: kept as written
        end = last if duration is None else min(last, since + dt.timedelta(days=int(duration[0])))
        repeat.pop("boundsDuration", None)
        repeat.pop("boundsRange", None)
        repeat["boundsPeriod"] = {"start": since.isoformat(), "end": max(end, since).isoformat()}
        written = duration[2] if duration is not None else "not readable"
        return True, (f"Dosage {n}: its duration ({written}) from {since.isoformat()} would run into the hold, so "
                      f"it is given as a period ending {repeat['boundsPeriod']['end']} (a dosage has one bound).")
    end = fhir.parse_date(period.get("end"))
    if end is None or end > last:
        period["end"] = max(last, start).isoformat() if start else last.isoformat()
    repeat["boundsPeriod"] = period
    return True, None


def _hold(order: MedicationItem, hold_from: dt.date, latest: dt.date, procedure_day: str, today: dt.date,
          patient_id: str) -> Suggestion | None:
    r = r4_medication_request(order.resource, patient_id)
    if r is None:
        return None
    note = (f"Hold LDN from {hold_from.isoformat()} (at the latest from {latest.isoformat()}) before the elective "
            f"procedure on {procedure_day}; resume when perioperative opioids are no longer needed.")
    changes: list[str] = []
    if hold_from <= today:
        r["status"] = "on-hold"
        system, (code, display) = codes.STATUS_REASON_SYSTEM, codes.STATUS_REASON_SURGERY
        r["statusReason"] = {"coding": [{"system": system, "code": code, "display": display}],
                             "text": f"Elective procedure on {procedure_day}"}
        label = f"Put the LDN order on hold now (procedure on {procedure_day})"
        description = "Set the LDN order on hold (status on-hold, reason: scheduled for surgery)."
    else:
        last_dose = (hold_from - dt.timedelta(days=1)).isoformat()
        order_start = fhir.parse_date(r.get("authoredOn")) or today
        kept = []
        for n, d in enumerate(r.get("dosageInstruction") or [{}], 1):   # only dosages in force before the hold
            keep, why = _bound(d, n, hold_from, order_start)
            changes += [why] if why else []
            kept += [d] if keep else []
        if not kept:
            return None                          # the whole order starts after the hold begins: nothing to end
        r["dosageInstruction"] = kept
        label = f"Hold LDN from {hold_from.isoformat()}: last dose on {last_dose}"
        description = f"End the LDN doses on {last_dose} (dosage bounds) and note the hold before the procedure."
    r["note"] = fhir.objs(r.get("note")) + [{"text": " ".join([note, *changes])}]
    return Suggestion(label=label, uuid="-", actions=[Action(type="update", description=description, resource=r)])


def _delete(orders: list[MedicationItem], label: str, what: str) -> Suggestion | None:
    actions = [Action(type="delete", description=f"Remove the draft {what} order: {o.medication.name or 'order'}",
                      resourceId=f"{fhir.resource_type(o.resource)}/{fhir.text(o.resource.get('id'))}")
               for o in orders if fhir.text(o.resource.get("id")) and fhir.resource_type(o.resource)]
    return Suggestion(label=label, uuid="-", actions=actions) if actions else None


def _dose_target(spec: dict, rule: Rule, decision: Decision) -> float | None:
    """The dose a change-dose suggestion proposes (rule data: `to`, `to_when_new_start`)."""
    ldn = decision.facts.fact.get("ldn") or {}
    params = rule.param_values
    previous = ldn.get("previous_dose_mg")
    new_start = ldn.get("status") == "proposed" and not ldn.get("has_previous_dose")
    target = spec.get("to_when_new_start") if new_start and spec.get("to_when_new_start") else spec["to"]
    if target == "previous":
        return previous
    if "param" in target:
        return params.get(target["param"])
    if previous is None:
        return None
    return round(previous + params[target["previous_plus"]], 4)


def _rewrite_instructions(dosage: dict[str, Any], per_dose_mg: float, per_day: float, timing: str | None) -> None:
    """The dosage's free text names the old dose: written again from the new structured dose (a text that only
    repeated the old one would contradict the order the EHR shows)."""
    times = {1: "once a day", 2: "twice a day"}.get(round(per_day, 4)) if per_day > 0 else None
    words = [f"Take {_fmt_mg(per_dose_mg)} mg", times or f"{per_day:g} times a day",
             "at bedtime" if timing == "bedtime" else ""]
    text = " ".join(w for w in words if w) + "."
    for field_ in ("text", "patientInstruction"):
        if field_ in dosage:
            dosage[field_] = text


def _change_dose(order: MedicationItem, target: float, patient_id: str) -> Suggestion | None:
    r = r4_medication_request(order.resource, patient_id)
    dosages = fhir.objs(r.get("dosageInstruction")) if r else []
    quantities = [q for d in dosages for q in (fhir.obj(x.get("doseQuantity")) for x in fhir.objs(d.get("doseAndRate")))
                  if q]
    if r is None or len(dosages) != 1 or len(quantities) != 1 or order.medication.dose_mg is None:
        return None
    q = quantities[0]
    value = fhir.number(q.get("value"))
    unit = (fhir.text(q.get("code")) or fhir.text(q.get("unit")) or "").lower()
    if value is None or value <= 0 or unit not in MG_PER_UNIT:
        return None
    per_day = order.medication.dose_mg / (MG_PER_UNIT[unit] * value)   # administrations
    q.clear()
    q.update(value=round(target / per_day, 4), unit="mg", system=UCUM, code="mg")
    _rewrite_instructions(dosages[0], q["value"], per_day, order.timing)
    return Suggestion(label=f"Change the LDN dose to {_fmt_mg(target)} mg daily", uuid="-",
                      actions=[Action(type="update", description=f"Set the dose to {_fmt_mg(target)} mg daily.",
                                      resource=r)])


_DRAFT_KIND = {"opioid": ("is_opioid", "opioid"), "naltrexone": ("is_other_naltrexone", "naltrexone")}


def suggestions(a: Advisory, mapped: Mapped, decision: Decision, kb: KnowledgeBase,
                patient_id: str, hook_instance: str) -> list[Suggestion]:
    """The rule file says what a card may offer (`suggestions:`); this turns each into valid R4 actions."""
    rule = kb.rules.get(a.rule_id)
    if rule is None:
        return []
    scope, drafts = mapped.drafts.scope, mapped.drafts
    ldn_draft = mapped.ldn_draft if "ldn" in scope else None
    out: list[Suggestion | None] = []
    for spec in rule.raw.get("suggestions") or ():
        kind = spec["kind"]
        if kind == "remove-ldn-draft" and ldn_draft is not None:
            out.append(_delete([ldn_draft], "Remove the draft LDN order", "LDN"))
        elif kind == "remove-counterpart-draft":
            for counterpart in sorted(counterparts(rule)):
                if counterpart in _DRAFT_KIND and counterpart in scope:
                    flag, what = _DRAFT_KIND[counterpart]
                    out.append(_delete(drafts.selected(flag), f"Remove the draft {what} order", what))
        elif kind == "hold-before-procedure" and a.evidence.get("periop_procedure"):
            order = ldn_draft or mapped.ldn_record
            params = rule.param_values
            day = dt.date.fromisoformat(a.evidence["periop_procedure"]["date"])
            if order is not None:
                out.append(_hold(order, day - dt.timedelta(days=params[spec["from"]]),
                                 day - dt.timedelta(days=params[spec["latest"]]), day.isoformat(), decision.as_of,
                                 patient_id))
        elif kind == "change-dose" and ldn_draft is not None:
            target = _dose_target(spec, rule, decision)
            if target is not None and target != ldn_draft.medication.dose_mg:
                out.append(_change_dose(ldn_draft, target, patient_id))
    found = [s for s in out if s is not None]
    # Unique per hook call (feedback names them) and the same for the same call.
    return [s.model_copy(update={"uuid": _uuid(hook_instance, a.id, "suggestion", i, s.label)})
            for i, s in enumerate(found)]


# --- cards --------------------------------------------------------------------------------------------------------

def advisory_card(a: Advisory, hook_instance: str, base: str, sugg: list[Suggestion]) -> Card:
    return Card(uuid=_uuid(hook_instance, a.id), summary=a.summary, indicator=a.severity, detail=detail(a, base),
                source=Source(label=f"LDN decision support: {a.title}", url=rule_page(base, a.rule_id),
                              topic=Coding(system=code_system_url(base, RULES), code=a.rule_id, display=a.title)),
                links=[Link(label="The rule and its sources", url=rule_page(base, a.rule_id), type="absolute")],
                suggestions=sugg or None, selectionBehavior="at-most-one" if sugg else None,
                overrideReasons=list(OVERRIDE_REASONS) if a.severity != "info" else None)


def _unidentified(decision: Decision) -> list[str]:
    """The medications of the record or the order that could not be identified, by their display text."""
    return [u.get("name") or ", ".join(f"{c['system']} {c['code']}" for c in u.get("codes") or ())
            for u in decision.facts.unrecognized]


def not_evaluated_card(decision: Decision, mapped: Mapped, kb: KnowledgeBase, hook_instance: str, base: str,
                       include_info: bool) -> Card | None:
    scope = mapped.drafts.scope
    in_use = bool((decision.facts.fact.get("ldn") or {}).get("in_use"))
    if not ("ldn" in scope or (in_use and (scope & {"chart", "unrecognized"} or include_info))):
        return None
    rules = [n for n in decision.not_evaluated if n.severity != "info" or include_info] \
        if scope & {"ldn", "chart"} else []
    if mapped.ldn_draft is not None and not mapped.ldn_in_record and mapped.context.medications is not None:
        # A new start (no LDN in the record): there is no previous dose, nor a last dose change, to miss.
        rules = [n for n in rules if set(n.missing) - {"ldn.previous_dose_mg", "ldn.last_dose_change"}]
    missing = list(dict.fromkeys(i for n in rules for i in n.missing))
    lines = [f"- {n.reason[0].upper()}{n.reason[1:]}." for n in rules]
    lines += [f"- {mapped.notes[i]}" for i in missing if i in mapped.notes]
    labels = [kb.inputs[i]["short"] for i in missing if i in kb.inputs]
    if "medication_statements" in mapped.notes:
        lines.append(f"- {mapped.notes['medication_statements']}")
        labels.append("patient-reported medications")
    unidentified = _unidentified(decision)
    if unidentified:
        lines += [f"- Not identified, so not checked as an opioid or a naltrexone product: {md(u)}"
                  for u in unidentified]
        labels.append(f"{len(unidentified)} medication(s) not identified")
    lines += [f"- {u}" for u in mapped.unreadable]
    if mapped.unreadable:
        labels.append("unreadable values")
    if not lines:
        return None
    summary = "Not fully checked: " + ", ".join(labels) + "."
    if len(summary) > 139:
        summary = summary[:138].rstrip() + "…"
    text = ("Some checks could not run because the data they need was not available or could not be read. They "
            "were not passed: nothing is known about them.\n\n" + "\n".join(lines)
            + "\n\nProvide the data (prefetch, or FHIR access through fhirAuthorization), or a recognised name or "
              "code, to have them checked.")
    return Card(uuid=_uuid(hook_instance, "not-evaluated", *missing, *unidentified, *mapped.unreadable),
                summary=summary,
                indicator="info", detail=text,
                source=Source(label="LDN decision support: checks not run", url=catalogue_page(base),
                              topic=Coding(system=code_system_url(base, CARD_TOPICS), code=NOT_EVALUATED[0],
                                           display=NOT_EVALUATED[1])))


def render(decision: Decision, mapped: Mapped, kb: KnowledgeBase, *, hook_instance: str, base: str,
           patient_id: str, include_info: bool) -> list[tuple[Card, str, str]]:
    """[(card, rule id or 'not-evaluated', rule version)], most severe first."""
    out: list[tuple[Card, str, str]] = []
    for a in decision.advisories:
        # Order and booking hooks show only advice about what is being ordered or booked.
        if (a.severity == "info" and not include_info) or not concerns(kb.rules[a.rule_id], mapped.drafts.scope):
            continue
        card = advisory_card(a, hook_instance, base, suggestions(a, mapped, decision, kb, patient_id, hook_instance))
        out.append((card, a.rule_id, a.rule_version))
    gap = not_evaluated_card(decision, mapped, kb, hook_instance, base, include_info)
    if gap is not None:
        out.append((gap, "not-evaluated", decision.knowledge_version))
    return out
