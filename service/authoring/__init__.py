"""A rule author's toolchain (`ldn-rules`): validate, test, explain, diff, replay and lock a knowledge base.

Imports core and knowledge, never the reverse (service.serve runs the rule cases through casetest at start-up).
"""
