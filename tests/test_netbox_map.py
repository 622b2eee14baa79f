"""monitord/netbox_map.py: NetBox objects as plain dicts -> the topology and what could not be mapped.

Built by hand here (not from the replay fixtures) so that no case holds only because the
fixtures happen to be shaped one way: NetBox 3.x's `device_role`, a bare status string, an IPv6
primary only, nested regions, a region slug repeated under two parents.
"""

from __future__ import annotations

from typing import Any

import pytest

from monitord.netbox_map import Options, check_roles, map_inventory

REGIONS = [
    {"id": 1, "name": "Türkiye", "slug": "tr", "parent": None},
    {"id": 2, "name": "İstanbul Avrupa", "slug": "ist-avrupa", "parent": {"id": 1, "name": "Türkiye", "slug": "tr"}},
]
SITES = [
    {"id": 10, "name": "Şişli Santrali", "slug": "sisli", "region": {"id": 2, "name": "İstanbul Avrupa", "slug": "ist-avrupa"}},
    {"id": 11, "name": "Depo", "slug": "depo", "region": None},
]


def dev(id: int = 100, name: Any = "sisli-dslam-01", role_slug: str = "dslam", site_id: int = 10, **more: Any) -> dict[str, Any]:
    device = {
        "id": id,
        "name": name,
        "role": {"id": 1, "name": role_slug.upper(), "slug": role_slug},
        "site": {"id": site_id, "name": "x", "slug": "x"},
        "status": {"value": "active", "label": "Active"},
        "primary_ip": {"id": 5, "address": f"10.0.0.{id % 250}/24", "family": {"value": 4}},
        "custom_fields": {},
        "tags": [],
    }
    device.update(more)
    return device


def one(device: dict[str, Any], how: Options = Options()) -> tuple[dict[str, Any] | None, list[str]]:
    result = map_inventory(REGIONS, SITES, [device], how)
    devices = [d for r in result.topology["regions"] for e in r["exchanges"] for d in e["devices"]]
    return (devices[0] if devices else None), [p.message for p in result.problems]


def test_a_device_lands_on_its_sites_exchange_in_the_sites_own_region() -> None:
    result = map_inventory(REGIONS, SITES, [dev()])
    assert result.problems == ()
    assert result.topology == {
        "regions": [
            {
                "id": "ist-avrupa",
                "name": "İstanbul Avrupa",
                "exchanges": [
                    {
                        "id": "sisli",
                        "name": "Şişli Santrali",
                        "devices": [{"id": "sisli-dslam-01", "kind": "dslam", "address": "10.0.0.100"}],
                    }
                ],
            }
        ]
    }


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"role": None, "device_role": {"id": 3, "slug": "olt"}}, {"kind": "olt"}),  # NetBox 3.x
        ({"role": {"slug": "bng"}}, {"kind": "router"}),  # with --role bng=router below
        ({"status": "active"}, {"kind": "dslam"}),  # a choice as a bare string
        ({"primary_ip": None, "primary_ip6": {"address": "2001:db8::7/64"}}, {"address": "2001:db8::7"}),
        ({"primary_ip": None, "primary_ip4": {"address": "192.0.2.9/32"}}, {"address": "192.0.2.9"}),
        ({"name": "  sisli  dslam 01 "}, {"id": "sisli-dslam-01"}),
        (
            {"custom_fields": {"monitord_snmp_auth": "v2", "monitord_profiles": "adsl vdsl2,if-mib"}},
            {"snmp": "v2", "profiles": ["adsl", "vdsl2", "if-mib"]},
        ),
        ({"custom_fields": {"monitord_snmp_auth": "v2", "monitord_profiles": ["adsl"]}}, {"snmp": "v2", "profiles": ["adsl"]}),
        (
            {"tags": [{"slug": "monitord-auth-v3"}, {"slug": "monitord-profile-gpon-axos"}, {"slug": "core"}]},
            {"snmp": "v3", "profiles": ["gpon-axos"]},
        ),
        ({"custom_fields": {"monitord_snmp_auth": "v2"}, "tags": [{"slug": "monitord-auth-v2"}]}, {"snmp": "v2"}),
        ({"custom_fields": {"snmp_auth": "v9", "profiles": "adsl"}}, {"snmp": "v9", "profiles": ["adsl"]}),  # other field names
    ],
)
def test_how_a_device_is_read(changes: dict[str, Any], expected: dict[str, Any]) -> None:
    fields = {"auth_field": "snmp_auth", "profiles_field": "profiles"} if "snmp_auth" in changes.get("custom_fields", {}) else {}
    how = Options(roles={"dslam": "dslam", "olt": "olt", "bng": "router"}, **fields)
    device, problems = one(dev(**changes), how)
    assert problems == []
    assert device is not None and {key: device.get(key) for key in expected} == expected


@pytest.mark.parametrize(
    ("changes", "refusal"),
    [
        ({"primary_ip": None}, "it has no primary IP"),
        ({"role": {"slug": "access-switch"}}, "its role 'access-switch' is not in the role map"),
        ({"role": None}, "it has no role"),
        ({"name": None}, "it has no name"),
        ({"name": "dslam/01"}, "its name is not a monitord id"),
        ({"name": "x" * 65}, "its name is not a monitord id"),
        ({"primary_ip": {"address": "224.0.0.1/32"}}, "its primary IP '224.0.0.1' is not the address of one host"),
        ({"site": {"id": 99, "name": "Gone"}}, "its site 'Gone' is not among NetBox's sites"),
        ({"site": {"id": 11, "name": "Depo"}}, "it has no region"),
        ({"custom_fields": {"monitord_snmp_auth": "a"}, "tags": [{"slug": "monitord-auth-b"}]}, "its SNMP auth is given as a, b"),
        ({"custom_fields": {"monitord_profiles": "adsl"}}, "it has line profiles but no SNMP auth"),
        ({"custom_fields": {"monitord_snmp_auth": {"id": 3}}}, "its custom field monitord_snmp_auth is not text"),
        ({"custom_fields": {"monitord_snmp_auth": "a", "monitord_profiles": {"id": 3}}}, "neither text nor a multiple selection"),
        (
            {
                "custom_fields": {"monitord_snmp_auth": "a", "monitord_profiles": "adsl"},
                "tags": [{"slug": "monitord-profile-vdsl2"}],
            },
            "its profiles differ",
        ),
    ],
)
def test_a_device_that_cannot_be_mapped_is_refused_by_name_and_id(changes: dict[str, Any], refusal: str) -> None:
    result = map_inventory(REGIONS, SITES, [dev(id=42, **changes)])
    assert result.topology == {"regions": []}
    assert result.problems, "refused"
    problem = result.problems[0]
    assert refusal in problem.message
    assert (problem.kind, problem.netbox_id) in {("device", 42), ("site", 10), ("site", 11)}


def test_duplicates_refuse_every_holder_not_the_later_one() -> None:
    """NetBox keeps names unique per site only; monitord's ids and addresses are global."""
    twin = dev(id=101, name="sisli-dslam-01", primary_ip={"address": "10.0.0.9/24"})
    same_address = dev(id=102, name="sisli-dslam-02", primary_ip={"address": "10.0.0.100/24"})
    result = map_inventory(REGIONS, SITES, [dev(), twin, same_address])
    refused = sorted((p.netbox_id, p.message.split(" is also")[0]) for p in result.problems)
    assert refused == [
        (100, "its address '10.0.0.100'"),
        (100, "its id 'sisli-dslam-01'"),
        (101, "its id 'sisli-dslam-01'"),
        (102, "its address '10.0.0.100'"),
    ]
    assert result.devices == 0


def test_skipped_on_purpose_is_counted_not_refused() -> None:
    result = map_inventory(
        REGIONS,
        SITES,
        [dev(status={"value": "planned"}, primary_ip=None), dev(id=7, name="srv", role_slug="server")],
        Options(ignore_roles=frozenset({"server"})),
    )
    assert result.problems == ()
    assert dict(result.skipped) == {"status planned": 1, "role server": 1}


def test_a_region_slug_repeated_under_two_parents_is_refused() -> None:
    regions = [*REGIONS, {"id": 3, "name": "Merkez", "slug": "ist-avrupa", "parent": {"id": 1}}]
    sites = [*SITES, {"id": 12, "name": "Merkez", "slug": "merkez", "region": {"id": 3, "name": "Merkez"}}]
    result = map_inventory(regions, sites, [dev(), dev(id=5, name="merkez-olt", role_slug="olt", site_id=12)])
    assert [(p.kind, p.netbox_id) for p in result.problems] == [("region", 3), ("site", 12)]
    assert [r["id"] for r in result.topology["regions"]] == ["ist-avrupa"]


def test_a_role_map_naming_an_unknown_kind_is_refused() -> None:
    assert check_roles({"dslam": "dslam", "bras": "bng"}) == [
        "role 'bras' maps to 'bng', not one of dslam, olt, cmts, router, switch"
    ]
