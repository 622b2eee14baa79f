"""snmpsim variation module "ramp": a counter or clock whose state lives in the data file.

Record syntax: ``OID|65:ramp|<start>,<rate>,<since>``; the agent answers
``start + rate * (now - since)`` wrapped to the type's width. The stock ``numeric`` module
parses its arguments once per process, so a rate rewritten in the file would be ignored; this
one reads them on every request, which lets the lab change a counter's rate (resyncs, errors)
or reboot a device (sysUpTime) by rewriting fixed-width bytes in place.

snmpsim executes this file itself (``--variation-modules-dir``); lab/snmp.py copies it there.
"""

import time

_MODULUS = {"65": 2**32, "67": 2**32, "70": 2**64}


def init(**context):
    pass


def shutdown(**context):
    pass


def variate(oid, tag, value, **context):
    if context["setFlag"] or (not context["nextFlag"] and not context["exactMatch"]):
        return context["origOid"], tag, context["errorStatus"]
    start, rate, since = value.split(",")
    elapsed = max(0.0, time.time() - float(since))
    return oid, tag, (int(start) + int(float(rate) * elapsed)) % _MODULUS.get(tag, 2**32)
