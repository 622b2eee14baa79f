"""Who is told what, and in which words: pure functions from incident changes to outbox items (no I/O).

`notices.plan` plans the items of an incident change, `notices.maintenance` those of a maintenance
window, `notices.throttle` paces ticket comments and `notices.templates` holds the texts. The
adapters that deliver the items live in `notifiers/`, behind `notifiers/base.py`.
"""
