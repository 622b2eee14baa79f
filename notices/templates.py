"""What customers, the NOC and the helpdesk read, in Turkish (the default) and English.

Pure: a template is text with `{name}` fields; rendering a template whose field has no value
raises TemplateError naming the template; the planner turns it into that one item's error, so
the item is dead-lettered and the rest go out.

Every SMS must fit in two segments. Turkish letters (ş ğ ı İ ç) force UCS-2 (67 characters a
part), and a Turkish place name does the same to an English text, so SMS texts are kept short
and place names in them are cut to SMS_NAME_MAX characters; tracking numbers are never cut
(a test renders every SMS with TRACKING_MAX characters).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from monitord.model import Language

SMS_NAME_MAX = 24
TRACKING_MAX = 24
LIST_MAX = 200  # subscribers listed by name in one ticket body; the rest are counted


class TemplateError(Exception):
    """A template could not be rendered (unknown name or a field without a value)."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"template {name}: {reason}")
        self.name = name


@dataclass(frozen=True, slots=True)
class Template:
    subject: str
    body: str


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    body: str


def _sms(tr: str, en: str) -> dict[Language, Template]:
    return {"tr": Template("", tr), "en": Template("", en)}


Templates = Mapping[str, Mapping[Language, Template]]

TEMPLATES: Templates = {
    "sms.outage": _sms(
        "Bölgenizde ({area}) internet arızası var, ekiplerimiz çalışıyor. Takip no: {tracking}",
        "There is an internet outage in your area ({area}); our teams are on it. Ref: {tracking}",
    ),
    "sms.update": _sms(
        "{area} arızası sürüyor, ekiplerimiz çalışmaya devam ediyor. Özür dileriz. Takip no: {tracking}",
        "The outage in {area} is still ongoing; our teams are working on it. Sorry. Ref: {tracking}",
    ),
    "sms.restored": _sms(
        "Bölgenizdeki ({area}) arıza giderildi, hizmetiniz yeniden çalışıyor. Takip no: {tracking}",
        "The outage in your area ({area}) is fixed and your service is back. Ref: {tracking}",
    ),
    "sms.merged": _sms(
        "Arıza kaydınız {tracking}, {area} genel arızasına bağlandı. Yeni takip no: {into}",
        "Your fault {tracking} is now part of a wider incident in {area}. New ref: {into}",
    ),
    "sms.degradation": _sms(
        "Bölgenizde ({area}) bağlantı kalitesi düştü, ekiplerimiz çalışıyor. Takip no: {tracking}",
        "Connection quality in your area ({area}) is reduced; our teams are on it. Ref: {tracking}",
    ),
    "sms.maintenance": _sms(
        "{area} bölgesinde {window} arasında planlı bakım var, internetiniz kesilebilir.",
        "Planned maintenance in {area} on {window}; your internet may be interrupted.",
    ),
    "sms.maintenance_done": _sms(
        "{area} bölgesindeki planlı bakım tamamlandı. Anlayışınız için teşekkür ederiz.",
        "The planned maintenance in {area} is complete. Thank you for your patience.",
    ),
    "sms.overrun": _sms(
        "{area} bölgesindeki bakım uzadı, özür dileriz. Ekiplerimiz çalışıyor. Takip no: {tracking}",
        "The maintenance in {area} is taking longer than planned. Sorry. Ref: {tracking}",
    ),
    "email.outage": {
        "tr": Template(
            "İnternet arızası - takip no {tracking}",
            "Sayın {name},\n\n{area} bölgesinde {start} itibarıyla bir internet arızası var. "
            "Ekiplerimiz sorunu gidermek için çalışıyor; hizmetiniz döndüğünde size haber vereceğiz.\n\n"
            "Takip numaranız: {tracking}\n",
        ),
        "en": Template(
            "Internet outage - ref {tracking}",
            "Dear {name},\n\nThere has been an internet outage in {area} since {start}. Our teams are "
            "working on it and we will tell you when your service is back.\n\nReference: {tracking}\n",
        ),
    },
    "email.update": {
        "tr": Template(
            "Arıza sürüyor - takip no {tracking}",
            "Sayın {name},\n\n{area} bölgesinde {start} itibarıyla yaşanan arıza devam ediyor. "
            "Ekiplerimiz çalışmaya devam ediyor; yaşattığımız sorun için özür dileriz.\n\n"
            "Takip numaranız: {tracking}\n",
        ),
        "en": Template(
            "Outage still ongoing - ref {tracking}",
            "Dear {name},\n\nThe outage in {area} that began at {start} is still ongoing. Our teams "
            "are still working on it; we apologise for the trouble.\n\nReference: {tracking}\n",
        ),
    },
    "email.restored": {
        "tr": Template(
            "Arıza giderildi - takip no {tracking}",
            "Sayın {name},\n\n{area} bölgesindeki arıza giderildi ve hizmetiniz yeniden çalışıyor. "
            "Sorun devam ederse lütfen bu takip numarasıyla bize ulaşın.\n\nTakip numaranız: {tracking}\n",
        ),
        "en": Template(
            "Service restored - ref {tracking}",
            "Dear {name},\n\nThe outage in {area} is fixed and your service is back. If you still "
            "have trouble, please contact us quoting this reference.\n\nReference: {tracking}\n",
        ),
    },
    "email.merged": {
        "tr": Template(
            "Arıza kaydınız birleştirildi - yeni takip no {into}",
            "Sayın {name},\n\n{tracking} numaralı arıza kaydınız, {area} bölgesindeki daha geniş bir arızanın "
            "parçası olarak {into} numarasıyla izleniyor. Arıza giderildiğinde bu numarayla bilgilendirileceksiniz."
            "\n\nYeni takip numaranız: {into}\n",
        ),
        "en": Template(
            "Your fault report was merged - new ref {into}",
            "Dear {name},\n\nYour fault report {tracking} is now followed as part of a wider outage in {area} "
            "under {into}. We will tell you under that reference when it is fixed.\n\nNew reference: {into}\n",
        ),
    },
    "email.degradation": {
        "tr": Template(
            "Bağlantı kalitesinde düşüş - takip no {tracking}",
            "Sayın {name},\n\n{area} bölgesinde {start} itibarıyla bağlantı kalitesinde düşüş var; "
            "internetiniz yavaş ya da kesintili olabilir. Ekiplerimiz çalışıyor.\n\n"
            "Takip numaranız: {tracking}\n",
        ),
        "en": Template(
            "Reduced connection quality - ref {tracking}",
            "Dear {name},\n\nConnection quality in {area} has been reduced since {start}; your "
            "internet may be slow or drop out. Our teams are working on it.\n\nReference: {tracking}\n",
        ),
    },
    "email.maintenance": {
        "tr": Template(
            "Planlı bakım: {window}",
            "Sayın {name},\n\n{area} bölgesinde {window} arasında planlı bakım çalışması yapılacak; "
            "bu sürede internetiniz kesilebilir.\n\nÇalışmanın nedeni: {reason}\n",
        ),
        "en": Template(
            "Planned maintenance: {window}",
            "Dear {name},\n\nWe will carry out planned maintenance in {area} on {window}; your "
            "internet may be interrupted during that time.\n\nReason: {reason}\n",
        ),
    },
    "email.maintenance_done": {
        "tr": Template(
            "Planlı bakım tamamlandı",
            "Sayın {name},\n\n{area} bölgesindeki planlı bakım çalışması tamamlandı. " "Anlayışınız için teşekkür ederiz.\n",
        ),
        "en": Template(
            "Planned maintenance complete",
            "Dear {name},\n\nThe planned maintenance in {area} is complete. Thank you for your patience.\n",
        ),
    },
    "email.overrun": {
        "tr": Template(
            "Bakım çalışması uzadı - takip no {tracking}",
            "Sayın {name},\n\n{area} bölgesindeki bakım çalışması planlanandan uzun sürüyor ve "
            "hizmetiniz henüz dönmedi. Özür dileriz; ekiplerimiz çalışıyor.\n\nTakip numaranız: {tracking}\n",
        ),
        "en": Template(
            "Maintenance overrun - ref {tracking}",
            "Dear {name},\n\nThe maintenance in {area} is taking longer than planned and your "
            "service is not back yet. We apologise; our teams are on it.\n\nReference: {tracking}\n",
        ),
    },
    # One line's own fault (its incident is rooted at the line): no "in your area".
    "sms.line_outage": _sms(
        "Hattınızda arıza var ({area}), ekiplerimiz çalışıyor. Takip no: {tracking}",
        "There is a fault on your line ({area}); our teams are on it. Ref: {tracking}",
    ),
    "sms.line_update": _sms(
        "Hattınızdaki arıza ({area}) sürüyor, ekiplerimiz çalışıyor. Özür dileriz. Takip no: {tracking}",
        "The fault on your line ({area}) is still ongoing; our teams are working on it. Sorry. Ref: {tracking}",
    ),
    "sms.line_restored": _sms(
        "Hattınızdaki arıza ({area}) giderildi, hizmetiniz yeniden çalışıyor. Takip no: {tracking}",
        "The fault on your line ({area}) is fixed and your service is back. Ref: {tracking}",
    ),
    # The line is in sync at the head-end but the modem is silent: the customer's side (cpe).
    "sms.modem": _sms(
        "Modeminizden sinyal alamıyoruz, {area} hattınız çalışıyor. Modemin açık, kablolarının takılı olduğunu kontrol edin.",
        "We get no signal from your modem (your {area} line works). Please check it is on and its cables are plugged in.",
    ),
    "email.line_outage": {
        "tr": Template(
            "Hattınızda arıza - takip no {tracking}",
            "Sayın {name},\n\n{start} itibarıyla hattınızda ({area}) bir arıza var. Ekiplerimiz sorunu "
            "gidermek için çalışıyor; hizmetiniz döndüğünde size haber vereceğiz.\n\nTakip numaranız: {tracking}\n",
        ),
        "en": Template(
            "Fault on your line - ref {tracking}",
            "Dear {name},\n\nThere has been a fault on your line ({area}) since {start}. Our teams are "
            "working on it and we will tell you when your service is back.\n\nReference: {tracking}\n",
        ),
    },
    "email.line_update": {
        "tr": Template(
            "Hattınızdaki arıza sürüyor - takip no {tracking}",
            "Sayın {name},\n\n{start} itibarıyla hattınızda ({area}) yaşanan arıza devam ediyor. Ekiplerimiz "
            "çalışmaya devam ediyor; yaşattığımız sorun için özür dileriz.\n\nTakip numaranız: {tracking}\n",
        ),
        "en": Template(
            "Fault on your line still ongoing - ref {tracking}",
            "Dear {name},\n\nThe fault on your line ({area}) that began at {start} is still ongoing. Our teams "
            "are still working on it; we apologise for the trouble.\n\nReference: {tracking}\n",
        ),
    },
    "email.line_restored": {
        "tr": Template(
            "Hattınızdaki arıza giderildi - takip no {tracking}",
            "Sayın {name},\n\nHattınızdaki ({area}) arıza giderildi ve hizmetiniz yeniden çalışıyor. "
            "Sorun devam ederse lütfen bu takip numarasıyla bize ulaşın.\n\nTakip numaranız: {tracking}\n",
        ),
        "en": Template(
            "Fault on your line fixed - ref {tracking}",
            "Dear {name},\n\nThe fault on your line ({area}) is fixed and your service is back. If you still "
            "have trouble, please contact us quoting this reference.\n\nReference: {tracking}\n",
        ),
    },
    "email.modem": {
        "tr": Template(
            "Modeminizden sinyal alamıyoruz",
            "Sayın {name},\n\n{start} itibarıyla modeminizden sinyal alamıyoruz; hattınız ({area}) ise "
            "çalışıyor. Lütfen modeminizin açık olduğunu, elektrik ve telefon kablolarının takılı olduğunu "
            "kontrol edin; gerekirse modemi kapatıp 30 saniye sonra yeniden açın.\n\n"
            "Sorun devam ederse bu numarayla bize ulaşın: {tracking}\n",
        ),
        "en": Template(
            "We get no signal from your modem",
            "Dear {name},\n\nWe have had no signal from your modem since {start}, while your line ({area}) "
            "works. Please check that the modem is switched on and its power and phone cables are plugged in; "
            "if need be, switch it off and on again after 30 seconds.\n\n"
            "If the trouble goes on, contact us quoting: {tracking}\n",
        ),
    },
    "noc.opened": {
        "tr": Template(
            "[{tracking}] AÇILDI {kind}: {place} ({count} abone)",
            "{kind} kaydı açıldı: {tracking}\nYer: {place}\nBölge: {region} / Santral: {exchange}\n"
            "Başlangıç: {start}\nEtkilenen abone: {count}\n\nBulgular:\n{evidence}\n",
        ),
        "en": Template(
            "[{tracking}] OPENED {kind}: {place} ({count} subscribers)",
            "{kind} opened: {tracking}\nPlace: {place}\nRegion: {region} / Exchange: {exchange}\n"
            "Started: {start}\nAffected subscribers: {count}\n\nEvidence:\n{evidence}\n",
        ),
    },
    "noc.reopened": {
        "tr": Template(
            "[{tracking}] YENİDEN AÇILDI {kind}: {place} ({count} abone)",
            "{kind} kaydı yeniden açıldı: {tracking}\nYer: {place}\nBölge: {region} / Santral: {exchange}\n"
            "İlk başlangıç: {start}\nEtkilenen abone: {count}\n\nBulgular:\n{evidence}\n",
        ),
        "en": Template(
            "[{tracking}] REOPENED {kind}: {place} ({count} subscribers)",
            "{kind} reopened: {tracking}\nPlace: {place}\nRegion: {region} / Exchange: {exchange}\n"
            "First started: {start}\nAffected subscribers: {count}\n\nEvidence:\n{evidence}\n",
        ),
    },
    "noc.resolved": {
        "tr": Template(
            "[{tracking}] ÇÖZÜLDÜ {kind}: {place}",
            "{kind} kaydı kapandı: {tracking}\nYer: {place}\nBölge: {region} / Santral: {exchange}\n"
            "Başlangıç: {start}\nBitiş: {end} ({duration})\nEtkilenen abone: {count}\n",
        ),
        "en": Template(
            "[{tracking}] RESOLVED {kind}: {place}",
            "{kind} resolved: {tracking}\nPlace: {place}\nRegion: {region} / Exchange: {exchange}\n"
            "Started: {start}\nEnded: {end} ({duration})\nAffected subscribers: {count}\n",
        ),
    },
    "ticket.create": {
        "tr": Template(
            "[{tracking}] {kind}: {place} - {count} abone",
            "Takip no: {tracking}\nTür: {kind}\nKök düğüm: {root} ({place})\nBölge: {region}\n"
            "Santral: {exchange}\nBaşlangıç: {start}\n\nBulgular:\n{evidence}\n\n"
            "Etkilenen aboneler ({count}):\n{subscribers}\n",
        ),
        "en": Template(
            "[{tracking}] {kind}: {place} - {count} subscribers",
            "Tracking number: {tracking}\nKind: {kind}\nRoot node: {root} ({place})\nRegion: {region}\n"
            "Exchange: {exchange}\nStarted: {start}\n\nEvidence:\n{evidence}\n\n"
            "Affected subscribers ({count}):\n{subscribers}\n",
        ),
    },
    "ticket.grew": {
        "tr": Template("", "Arıza büyüdü: {added_count} abone eklendi, toplam {count}.\n{subscribers}\n"),
        "en": Template("", "Incident grew: {added_count} subscribers added, {count} in all.\n{subscribers}\n"),
    },
    "ticket.shrank": {
        "tr": Template(
            "",
            "{removed_count} abone bu kayıttan çıktı (hattı düzeldi ya da daha geniş bir arızaya "
            "taşındı); etkilenen {count} abone kaldı.\n{subscribers}\n",
        ),
        "en": Template(
            "",
            "{removed_count} subscribers left this incident (recovered, or moved to a wider one); "
            "{count} still affected.\n{subscribers}\n",
        ),
    },
    "ticket.merged": {
        "tr": Template(
            "", "Bu kayıt, daha geniş kapsamlı {into} numaralı arıza kaydıyla birleştirildi; takip o kayıt üzerinden yapılacak.\n"
        ),
        "en": Template("", "Merged into the wider incident {into}; follow that ticket from now on.\n"),
    },
    "ticket.promoted": {
        "tr": Template(
            "",
            "Bu arıza şu kayıtları kapsıyor: {replaces}. Etkilenen abone: {count}.\n"
            "Bu kayıtlarla eklenen aboneler:\n{subscribers}\n",
        ),
        "en": Template(
            "",
            "This incident takes over: {replaces}. Affected subscribers: {count}.\n"
            "Subscribers added with them:\n{subscribers}\n",
        ),
    },
    "ticket.recovering": {
        "tr": Template("", "Hatlar düzeliyor; kalıcı olduğu doğrulanınca kayıt kapanacak. ({at})\n"),
        "en": Template("", "Lines are recovering; the ticket closes once that holds. ({at})\n"),
    },
    "ticket.resolved": {
        "tr": Template("", "Hizmet geri geldi ve doğrulandı: {end} (süre {duration}). Etkilenen abone: {count}.\n"),
        "en": Template("", "Service restored and verified: {end} (lasted {duration}). Affected subscribers: {count}.\n"),
    },
    "ticket.reopened": {
        "tr": Template("", "Arıza yeniden başladı: {at}. Etkilenen abone: {count}.\n\nBulgular:\n{evidence}\n"),
        "en": Template("", "The fault came back: {at}. Affected subscribers: {count}.\n\nEvidence:\n{evidence}\n"),
    },
    "ticket.severity": {
        "tr": Template("", "Arızanın türü değişti: {was} -> {kind} ({at}). Etkilenen abone: {count}.\n\nBulgular:\n{evidence}\n"),
        "en": Template("", "Severity changed: {was} -> {kind} ({at}). Affected subscribers: {count}.\n\nEvidence:\n{evidence}\n"),
    },
    "ticket.closed_removed": {
        "tr": Template("", "Kayıt kapatıldı: ilgili hatlar artık envanterde yok. ({at})\n"),
        "en": Template("", "Closed: the lines involved are no longer in the inventory. ({at})\n"),
    },
    "noc.channel_held": {
        "tr": Template(
            "[monitord] {channel} kanalı durduruldu: {cause}",
            "{channel} kanalı {since} itibarıyla durduruldu: karşı taraf kimlik bilgilerini ya da ayarları reddediyor.\n"
            "Yanıt: {reason}\nBekleyen bildirim: {waiting}\n\nBildirimler silinmiyor; her {probe} bir tanesi "
            "deneniyor. Ayarı düzeltip `systemctl reload monitord` ile yükleyin, bekleyenler hemen gönderilir.\n",
        ),
        "en": Template(
            "[monitord] {channel} channel held: {cause}",
            "The {channel} channel is held since {since}: the peer refuses its credentials or settings.\n"
            "Answer: {reason}\nNotices waiting: {waiting}\n\nNothing is dropped; one notice is tried every "
            "{probe}. Fix the setting and run `systemctl reload monitord`: the waiting notices go out at once.\n",
        ),
    },
    "noc.channel_released": {
        "tr": Template(
            "[monitord] {channel} kanalı yeniden çalışıyor",
            "{channel} kanalı yeniden çalışıyor ({since} itibarıyla durdurulmuştu). Gönderilecek bildirim: {waiting}\n",
        ),
        "en": Template(
            "[monitord] {channel} channel works again",
            "The {channel} channel works again (held since {since}). Notices to send: {waiting}\n",
        ),
    },
}

HOLD_CAUSES: Mapping[Language, Mapping[str, str]] = {
    "tr": {"credentials": "kimlik bilgileri reddedildi", "forbidden": "yetki yok", "config": "ayar hatası"},
    "en": {"credentials": "credentials refused", "forbidden": "access forbidden", "config": "settings refused"},
}

KIND_NAMES: Mapping[Language, Mapping[str, str]] = {
    "tr": {"outage": "Kesinti", "degradation": "Kalite düşüşü", "overrun": "Bakım uzaması", "cpe": "Modem yanıt vermiyor"},
    "en": {"outage": "Outage", "degradation": "Degradation", "overrun": "Maintenance overrun", "cpe": "Silent modem"},
}


def render(name: str, language: Language, values: Mapping[str, Any], templates: Templates = TEMPLATES) -> Rendered:
    """Fill template `name` in `language`; raise TemplateError if it is unknown or a field is missing."""
    try:
        template = templates[name][language]
    except KeyError:
        raise TemplateError(name, f"no such template in language {language!r}") from None
    try:
        return Rendered(template.subject.format_map(values), template.body.format_map(values))
    except KeyError as e:
        raise TemplateError(name, f"no value for {{{e.args[0]}}}") from None
    except (ValueError, IndexError, AttributeError) as e:
        raise TemplateError(name, str(e)) from None


def short(text: str, limit: int = SMS_NAME_MAX) -> str:
    """Cut `text` to `limit` characters, marking the cut, so that an SMS keeps its size."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def mask_phone(phone: str | None) -> str:
    """+905321234567 -> +90532***4567: enough for an agent to match a caller, not to copy."""
    if not phone:
        return "-"
    return phone[:-7] + "***" + phone[-4:] if len(phone) > 9 else "***" + phone[-2:]


def format_time(at: float, tz: ZoneInfo, language: Language) -> str:
    """Turkish style 01.12.2026 01:00; English 1 Dec 2026 01:00 (both in the local zone)."""
    local = datetime.fromtimestamp(at, tz)
    return local.strftime("%d.%m.%Y %H:%M") if language == "tr" else f"{local.day} {local:%b %Y %H:%M}"


def format_window(start: float, end: float, tz: ZoneInfo, language: Language) -> str:
    """A maintenance window; the end date is written only when it differs from the start date."""
    begin, finish = datetime.fromtimestamp(start, tz), datetime.fromtimestamp(end, tz)
    if begin.date() == finish.date():
        return f"{format_time(start, tz, language)}-{finish:%H:%M}"
    return f"{format_time(start, tz, language)} - {format_time(end, tz, language)}"


def format_duration(seconds: float, language: Language) -> str:
    """Hours and minutes, e.g. 2 sa 5 dk / 2 h 5 min."""
    minutes = max(0, round(seconds / 60))
    hours, minutes = divmod(minutes, 60)
    h, m = ("sa", "dk") if language == "tr" else ("h", "min")
    return f"{hours} {h} {minutes} {m}" if hours else f"{minutes} {m}"


def subscriber_list(entries: Sequence[tuple[str, str, str | None]], language: Language) -> str:
    """One line per subscriber (id, name, masked phone), at most LIST_MAX, sorted by id."""
    rows = [f"- {sid} {name} {mask_phone(phone)}" for sid, name, phone in sorted(entries)[:LIST_MAX]]
    if len(entries) > LIST_MAX:
        more = len(entries) - LIST_MAX
        rows.append(f"... ve {more} abone daha" if language == "tr" else f"... and {more} more")
    return "\n".join(rows) if rows else "-"


_LEVELS_TR = {"region": "bölge", "exchange": "santral", "cabinet": "kabin", "device": "cihaz", "line": "hat"}
_FAULT_WORDS_TR = {"down": "kesik", "degraded": "kalitesi düşük", "still down after maintenance": "bakımdan sonra hâlâ kesik"}
_NODE = r"(region|exchange|cabinet|device|line):(\S+)"
_EVIDENCE_TR: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (
        re.compile(rf"^(\d+)/(\d+) lines (.+) behind {_NODE}$"),
        lambda m: f"{_LEVELS_TR[m[4]]} {m[5]} arkasında {_FAULT_WORDS_TR.get(m[3], m[3])} hat: {m[1]}/{m[2]}",
    ),
    (
        re.compile(r"^devices (.+?): (.+?)(?: and (\d+) more)?$"),
        lambda m: f"{_FAULT_WORDS_TR.get(m[1], m[1])} cihazlar: {m[2]}" + (f" ve {m[3]} tane daha" if m[3] else ""),
    ),
    (re.compile(r"^merged into (\S+)$"), lambda m: f"{m[1]} kaydına birleştirildi"),
    (re.compile(rf"^{_NODE}: (.*)$"), lambda m: f"{_LEVELS_TR[m[1]]} {m[2]}: {m[3]}"),
)


def evidence_lines(evidence: Sequence[str], language: Language) -> str:
    """The engine's evidence as a ticket's list, in the ticket's language (the engine writes the
    English forms of rules/lifecycle.py `_evidence`; probe answers inside them stay as read)."""
    if language == "tr":
        evidence = [next((say(m) for pattern, say in _EVIDENCE_TR if (m := pattern.match(e))), e) for e in evidence]
    return "\n".join(f"- {e}" for e in evidence) or "-"
