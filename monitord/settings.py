"""What the pipeline's planners take from the config: which channels are on, how incidents
become alerts, dispatch tickets and customer notices. Pure: built again on each reload."""

from __future__ import annotations

from monitord.config import Config
from monitord.store import Store
from notices.alerts import AlertSettings
from notices.dispatch import Dispatcher, DispatchSettings
from notices.plan import PlanSettings


def configured_channels(config: Config) -> frozenset[str]:
    """Notices are queued only for channels that have a notifier: nothing would ever send the rest."""
    n = config.notifiers
    return frozenset(c for c, on in (("sms", n.sms), ("email", n.email), ("ticket", n.tickets), ("alert", n.alertmanager)) if on)


def alert_settings(config: Config) -> AlertSettings | None:
    """How incidents become Alertmanager alerts, or None when no Alertmanager is configured."""
    am = config.notifiers.alertmanager
    return None if am is None else AlertSettings(resend=am.resend, ticket_link=am.ticket_link)


def dispatcher(config: Config, store: Store) -> Dispatcher | None:
    """Faults the field must fix get a ticket of their own (`notifiers.tickets.dispatch`), or not."""
    d = config.notifiers.tickets.dispatch if config.notifiers.tickets else None
    return None if d is None else Dispatcher(DispatchSettings(d.queue, d.delay), store.was_queued)


def plan_settings(config: Config, sms_opted_out: frozenset[str] = frozenset()) -> PlanSettings:
    """`sms_opted_out`: the phones that texted an opt-out (monitord/sms_inbound.py)."""
    sms, email = config.notifiers.sms, config.notifiers.email
    return PlanSettings(
        timezone=config.timezone,
        quiet_hours=sms.quiet_hours if sms else None,
        update_after=sms.update_after if sms else 7200.0,
        confirm_after=sms.confirm_after if sms else None,
        survey=sms.survey if sms else False,
        notify_degradation=sms.notify_degradation if sms else False,
        noc_emails=email.noc if email else (),
        noc_routes=config.notifiers.noc_routes,
        ticket_routes=config.notifiers.ticket_routes,
        cpe_customers=config.notifiers.cpe.customers,
        cpe_ticket=config.notifiers.cpe.ticket,
        cpe_noc=config.notifiers.cpe.noc,
        sms_transliterate=sms.transliterate if sms else False,
        templates=config.templates,
        sms_opted_out=sms_opted_out,
    )
