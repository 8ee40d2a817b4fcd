"""HL7 CDS Hooks on the one engine: FHIR R4 in, cards out (../shared/CDS-HOOKS.md is the conformance checklist).

request -> prefetch (absent / null / OperationOutcome, FHIR fetch, 412) -> FHIR-to-facts mapping -> PatientContext
-> Evaluator.evaluate -> Decision -> cards. There is no second rules path: cards are a representation of the
Decision, exactly like the native API's advisories.

| module          | job                                                                                   |
| --------------- | ------------------------------------------------------------------------------------- |
| models.py       | wire types: hook requests (lenient), cards and discovery (strict), feedback           |
| codes.py        | code-system URIs and the protocol codes cards write (clinical codes: knowledge)       |
| services.py     | the four services; prefetch templates (2.0 tokens only) built from the loaded codes   |
| fhir.py         | small, total readers of FHIR JSON (never raise on odd input)                          |
| fhir_mapping.py | pure: hook request + fetched resources -> PatientContext and the hook's scope         |
| prefetch.py     | prefetch interpretation, FHIR server fetches (bearer token, short timeouts), 412      |
| cards.py        | Decision -> cards: indicator, markdown detail with the quoted passages, suggestions   |
| feedback.py     | feedback validation support, idempotent storage (SQLAlchemy), override analytics      |
| security.py     | CDS Hooks JWT verification (iss allow-list, exact aud, ES384/RS384, jti), 401 empty   |
| api.py          | the router: discovery, the four services, feedback; install() wires the middleware    |
"""
