"""Smoke test of the generated Python client (openapi-python-client) against a running API.

Usage: python smoke.py <base-url> <generated-package-parent-dir>
Exits non-zero, saying what differed, when an answer does not parse into the spec's models or
the flow does not behave as documented.
"""

import datetime
import sys
import uuid

sys.path.insert(0, sys.argv[2])

from despacio_client import AuthenticatedClient, Client  # noqa: E402
from despacio_client.api.auth import register  # noqa: E402
from despacio_client.api.me import erase_me, export_my_data, get_me, update_profile  # noqa: E402
from despacio_client.api.reports import report  # noqa: E402
from despacio_client.api.resonances import list_resonances, swipe  # noqa: E402
from despacio_client.models import (  # noqa: E402
    Export,
    Gender,
    Intention,
    Me,
    Problem,
    ProfilePatch,
    Location,
    RegisterRequest,
    Report,
    ReportReason,
    ReportRequest,
    ResonancePage,
    SwipeAction,
    SwipeRequest,
    SwipeResult,
    TokenResponse,
)

BASE = sys.argv[1]


def expect(value, kind, what):
    if not isinstance(value, kind):
        raise SystemExit(f"{what}: expected {kind.__name__}, got {value!r}")
    return value


def person(name):
    anonymous = Client(base_url=BASE)
    email = f"sdk-{uuid.uuid4().hex}@example.com"
    tokens = expect(
        register.sync(client=anonymous, body=RegisterRequest(email=email, password="slow-and-steady-2026")),
        TokenResponse,
        "register",
    )
    client = AuthenticatedClient(base_url=BASE, token=tokens.access_token)
    profile = update_profile.sync(
        client=client,
        body=ProfilePatch(
            display_name=name,
            birthdate=datetime.date(1993, 4, 5),
            gender=Gender.NON_BINARY,
            intentions=[Intention.LONG_TERM],
            location=Location(latitude=48.85, longitude=2.35),
        ),
    )
    if isinstance(profile, Problem) or profile is None:
        raise SystemExit(f"update_profile: {profile!r}")
    me = expect(get_me.sync(client=client), Me, "get_me")
    assert me.email == email and me.profile.display_name == name, me
    assert me.settings.snoozed_until is None, me.settings
    return client, me


ana, ana_me = person("Ana")
max_, max_me = person("Max")
expect(swipe.sync(client=ana, body=SwipeRequest(target_id=max_me.id, action=SwipeAction.LIKE)), SwipeResult, "like")
back = expect(swipe.sync(client=max_, body=SwipeRequest(target_id=ana_me.id, action=SwipeAction.LIKE)), SwipeResult, "like back")
assert back.resonance_created, back
page = expect(list_resonances.sync(client=ana), ResonancePage, "list_resonances")
assert [r.user_id for r in page.items] == [max_me.id], page
filed = expect(
    report.sync(client=ana, body=ReportRequest(user_id=max_me.id, reason=ReportReason.SPAM, details="sdk smoke")),
    Report,
    "report",
)
assert filed.status == "open", filed
export = expect(export_my_data.sync(client=ana), Export, "export_my_data")
assert export.account.id == ana_me.id and export.resonances[0].user_id == max_me.id, export
# A problem parses into the spec's Problem model.
refused = swipe.sync(client=ana, body=SwipeRequest(target_id=ana_me.id, action=SwipeAction.LIKE))
expect(refused, Problem, "swiping oneself")
# `null` clears a field (the bio here), and a null answer parses.
cleared = update_profile.sync(client=ana, body=ProfilePatch(bio=None))
if isinstance(cleared, Problem) or cleared is None or cleared.bio is not None:
    raise SystemExit(f"clearing the bio: {cleared!r}")
gone = erase_me.sync_detailed(client=max_)
assert gone.status_code == 204, gone
after = get_me.sync_detailed(client=max_)
assert after.status_code == 401 and isinstance(after.parsed, Problem), after
print("python sdk: ok")
