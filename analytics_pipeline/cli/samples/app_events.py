"""app_events: Pinpoint events as Kinesis Firehose delivers them, under yyyy/mm/dd/HH/ prefixes."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from analytics_pipeline.cli.samples.common import (
    DAY_MS,
    SampleFiles,
    epoch_millis,
    iso_millis,
    ndjson,
    scaled_count,
    seeded_rng,
)
from analytics_pipeline.datasets.app_events import (
    SIGN_IN_EVENT,
    SIGN_UP_EVENT,
    USERAUTH_SIGN_IN,
    USERAUTH_SIGN_UP,
)

# fmt: off
_FIRST = ("ana", "ben", "chloe", "dev", "elif", "femi", "gita", "hugo", "ines", "jon", "kira",
          "liam", "maya", "noah", "olga", "pablo", "quinn", "rosa", "sami", "tara")
_LAST = ("silva", "okafor", "muller", "tanaka", "novak", "garcia", "smith", "kowalski", "rossi",
         "haddad", "berg", "chen", "dubois")
# fmt: on


@dataclass(frozen=True)
class _User:
    id: str
    email: str
    is_test_user: str
    user_type: str


def _app_users(seed: int, scale: float) -> list[_User]:
    rng = seeded_rng(seed, "app_events", "users")
    users = []
    for n in range(scaled_count(120, scale, 6)):
        test = rng.random() < 0.08
        email = (
            f"qa+{n}@test.example.com"
            if test
            else f"{rng.choice(_FIRST)}.{rng.choice(_LAST)}{n}@example.com"
        )
        users.append(
            _User(
                id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                email=email,
                # Older app builds send no flag at all: Pinpoint writes the string "null".
                is_test_user="true" if test else rng.choices(("false", "null"), (9, 1))[0],
                user_type=rng.choices(("customer", "reseller", "admin", "null"), (14, 4, 1, 1))[0],
            )
        )
    return users


def app_events(window: list[date], seed: int, scale: float) -> SampleFiles:
    ds = SampleFiles("app_events")
    users = _app_users(seed, scale)
    for day in window:
        rng = seeded_rng(seed, ds.name, day)
        by_hour: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for n in range(scaled_count(60, scale, 4)):
            # The event's time is its endpoint's EffectiveDate; the client's clock
            # (event_timestamp) runs a little later, sometimes into the next day.
            millis = epoch_millis(day) + rng.randrange(DAY_MS)
            # Mostly the app's custom events; a few of Amplify's standard auth events.
            standard = n % 8 == 1
            if rng.random() < 0.35:
                first, last = rng.choice(_FIRST), rng.choice(_LAST)
                email = f"{first}.{last}.{day:%Y%m%d}{n}@example.org"
                kind = USERAUTH_SIGN_UP if standard else SIGN_UP_EVENT
                event = _pinpoint_event(rng, kind, millis, {"email": email})
                table = "sign_up_events"
            else:
                user = rng.choice(users)
                attributes = {
                    "email": user.email,
                    "id": user.id,
                    "is_test_user": user.is_test_user,
                    "user_type": user.user_type,
                }
                kind = USERAUTH_SIGN_IN if standard else SIGN_IN_EVENT
                event = _pinpoint_event(rng, kind, millis, attributes)
                table = "sign_in_events"
            by_hour[millis % DAY_MS // 3_600_000].append(event)
            ds.good(table, day)
        for _, events in sorted(by_hour.items()):
            events.sort(key=lambda e: e["event_timestamp"])
            # Firehose names an object by its delivery time.
            ds.add_file(_firehose_key(rng, events[0]["arrival_timestamp"]), ndjson(events))
    end = window[-1]
    rng = seeded_rng(seed, ds.name, end, "bad")
    base = epoch_millis(end) + 23 * 3_600_000
    invalid_email = _pinpoint_event(
        rng, SIGN_UP_EVENT, base + 1_000, {"email": "maria.garcia@example"}
    )
    # Events the app records that no table takes: valid, quarantined as unrouted.
    page_views = [
        _pinpoint_event(rng, "PageView", base + 2_000 + n, {"page": page})
        for n, page in enumerate(("/pricing", "/signup", "/docs"))
    ]
    no_session = _pinpoint_event(
        rng,
        SIGN_IN_EVENT,
        base + 3_000,
        {
            "email": users[0].email,
            "id": users[0].id,
            "is_test_user": users[0].is_test_user,
            "user_type": users[0].user_type,
        },
    )
    del no_session["session"]
    ds.add_file(_firehose_key(rng, base + 1_000), ndjson([invalid_email, *page_views, no_session]))
    ds.bad("invalid email 'maria.garcia@example'")
    ds.unrouted(len(page_views))
    ds.bad("missing required field session.session_id")
    return ds


def _pinpoint_event(
    rng: random.Random, event_type: str, millis: int, attributes: dict[str, str]
) -> dict[str, Any]:
    """An event effective (endpoint.EffectiveDate) at `millis`; the client stamps it later."""
    client_millis = millis + rng.randrange(0, 90_000)
    session_start = millis - rng.randrange(1_000, 120_000)
    platform = rng.choice(("web", "ios", "android"))
    channel = {"web": "IN_APP", "ios": "APNS", "android": "GCM"}[platform]
    return {
        "event_type": event_type,
        "event_timestamp": client_millis,
        "arrival_timestamp": client_millis + rng.randrange(200, 5_000),
        "event_version": "3.1",
        "application": {
            "app_id": "4c5e8a1b2d3f4e5a9b8c7d6e5f4a3b2c",
            "sdk": {"name": "aws-amplify", "version": "6.0.9"},
        },
        "client": {"client_id": str(uuid.UUID(int=rng.getrandbits(128), version=4))},
        "device": {"platform": {"name": platform}},
        "session": {"session_id": f"{rng.getrandbits(64):016x}", "start_timestamp": session_start},
        "attributes": attributes,
        "endpoint": {
            "ChannelType": channel,
            "EffectiveDate": iso_millis(millis),
            "OptOut": "NONE",
        },
        "awsAccountId": "123456789012",
    }


def _firehose_key(rng: random.Random, first_millis: int) -> str:
    # Firehose's default naming: yyyy/MM/dd/HH/<stream>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid>
    stamp = datetime(1970, 1, 1) + timedelta(milliseconds=first_millis)
    name = f"firehose-pinpoint-events-1-{stamp:%Y-%m-%d-%H-%M-%S}-" + str(
        uuid.UUID(int=rng.getrandbits(128), version=4)
    )
    return f"{stamp:%Y/%m/%d/%H}/{name}.json"
