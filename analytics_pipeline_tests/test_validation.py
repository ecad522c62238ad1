"""Field-level validation: each bad value gets the exact quarantine reason and its line."""

from __future__ import annotations

import dataclasses
import json
import string
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics_pipeline.datasets import DatasetSpec, dataset
from analytics_pipeline.datasets.app_events import (
    SIGN_IN_EVENT,
    SIGN_UP_EVENT,
    USERAUTH_SIGN_IN,
    USERAUTH_SIGN_UP,
)
from analytics_pipeline.datasets.spec import INTEGER_RANGES, TableSpec
from analytics_pipeline.lake.parsing.records import ParsedFile, parse_landing_file
from analytics_pipeline.lake.parsing.validation import RecordError, UnroutedRecord, validate_record
from analytics_pipeline_tests.lake_helpers import iot_reading, web_request

START = date(2020, 1, 1)
NOW = datetime(2024, 6, 1, 12, 0)

PRODUCTS = dataset("products")
IOT = dataset("iot_sensor_data")
APP_EVENTS = dataset("app_events")
WEB = dataset("web_requests")


def product(**changes: Any) -> dict[str, Any]:
    return {"id": 1, "date": "2024-05-01", "product": "A", **changes}


def reading(**changes: Any) -> dict[str, Any]:
    return iot_reading(**changes)


def event(attributes: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    return {
        "event_type": SIGN_IN_EVENT,
        "event_timestamp": 1714557600000,  # 2024-05-01T10:00:00Z
        "attributes": {"email": "a@example.com", **(attributes or {})},
        "session": {"session_id": "s1"},
        "endpoint": {"EffectiveDate": "2024-05-01T10:00:00.000Z"},
        **changes,
    }


def request(**changes: Any) -> dict[str, Any]:
    return web_request(**changes)


VALID = {
    "products": product,
    "iot_sensor_data": reading,
    "app_events": event,
    "web_requests": request,
}


def parse(spec: DatasetSpec, *objs: dict[str, Any]) -> ParsedFile:
    if spec.layout == "json":
        (obj,) = objs
        data = json.dumps(obj)
    else:  # a valid record first, so the one under test sits on line 2
        data = "".join(json.dumps(o) + "\n" for o in (VALID[spec.name](), *objs))
    return parse_landing_file(spec, "k", data.encode(), start=START, now=NOW)


def reason(spec: DatasetSpec, obj: dict[str, Any]) -> str:
    """The reason the record under test is quarantined; asserts it is the only rejection."""
    parsed = parse(spec, obj)
    expected_line = 1 if spec.layout == "json" else 2
    assert [r.line for r in parsed.rejections] == [expected_line]
    assert len(parsed.records) == expected_line - 1
    return parsed.rejections[0].reason


def record(spec: DatasetSpec, obj: dict[str, Any]) -> dict[str, Any]:
    parsed = parse(spec, obj)
    assert parsed.rejections == []
    return parsed.records[-1]


# --- presence -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "obj", "expected"),
    [
        (PRODUCTS, {"date": "2024-05-01", "product": "A"}, "missing required field 'id'"),
        (
            IOT,
            {k: v for k, v in reading().items() if k != "rainheight"},
            "missing required field 'rainheight'",
        ),
        (APP_EVENTS, event(session={}), "missing required field 'session.session_id'"),
        (
            APP_EVENTS,
            event(attributes={"email": "a@b.co"}) | {"attributes": {}},
            "missing required field 'attributes.email'",
        ),
        (
            WEB,
            {k: v for k, v in request().items() if k != "timestamp"},
            "missing required field 'timestamp'",
        ),
    ],
    ids=["products", "iot", "app_events_nested", "app_events_email", "web_requests"],
)
def test_missing_required_field(spec: DatasetSpec, obj: dict[str, Any], expected: str) -> None:
    assert reason(spec, obj) == expected


def test_null_required_field() -> None:
    assert reason(PRODUCTS, product(date=None)) == "null required field 'date'"


def test_null_nested_required_field() -> None:
    assert reason(APP_EVENTS, event(endpoint={"EffectiveDate": None})) == (
        "null required field 'endpoint.EffectiveDate'"
    )


def test_missing_optional_field_is_null() -> None:
    obj = request()
    del obj["product_id"]
    assert record(WEB, obj)["product_id"] is None


def test_extra_fields_are_ignored() -> None:
    assert record(PRODUCTS, product(colour="red"))["id"] == 1


# --- types --------------------------------------------------------------------------------


def test_string_that_is_not_a_number_for_an_int() -> None:
    assert reason(IOT, reading(deviceid="abc")) == (
        "wrong type in field deviceid: expected int, got string 'abc'"
    )


def test_float_for_a_bigint() -> None:
    assert reason(PRODUCTS, product(id=1.5)) == (
        "wrong type in field id: expected bigint, got number 1.5"
    )


def test_integral_float_for_a_bigint_is_still_a_wrong_type() -> None:
    assert reason(PRODUCTS, product(id=1.0)) == (
        "wrong type in field id: expected bigint, got number 1.0"
    )


@pytest.mark.parametrize("value", [True, False])
def test_boolean_does_not_pass_as_an_int(value: bool) -> None:
    assert reason(IOT, reading(deviceid=value)) == (
        f"wrong type in field deviceid: expected int, got boolean {json.dumps(value)}"
    )


def test_boolean_does_not_pass_as_a_bigint() -> None:
    assert reason(PRODUCTS, product(id=True)) == (
        "wrong type in field id: expected bigint, got boolean true"
    )


def test_object_where_a_string_is_expected() -> None:
    assert reason(PRODUCTS, product(product={"name": "A"})) == (
        "wrong type in field product: expected string, got object {'name': 'A'}"
    )


def test_array_where_a_string_is_expected() -> None:
    assert reason(WEB, request(session_id=["s1"])) == (
        "wrong type in field session_id: expected string, got array ['s1']"
    )


def test_number_where_a_string_is_expected() -> None:
    assert reason(WEB, request(user_id=42)) == (
        "wrong type in field user_id: expected string, got number 42"
    )


def test_integer_strings_are_converted() -> None:
    assert record(IOT, reading(deviceid="-12", temperature="+5", humidity=" 7 "))["deviceid"] == -12


def test_json_integers_are_accepted_where_strings_of_digits_are_usual() -> None:
    row = record(IOT, reading(deviceid=12, temperature=-3))
    assert (row["deviceid"], row["temperature"]) == (12, -3)


def test_non_ascii_digits_are_not_an_int() -> None:
    assert reason(IOT, reading(deviceid="\u0661\u0662")) == (
        "wrong type in field deviceid: expected int, got string '\u0661\u0662'"
    )


@pytest.mark.parametrize("value", ["1.0", "1e3", "0x10", "", "12abc", "1_000"])
def test_non_integer_text_is_a_wrong_type(value: str) -> None:
    assert reason(IOT, reading(humidity=value)) == (
        f"wrong type in field humidity: expected smallint, got string {value!r}"
    )


@pytest.mark.parametrize(
    ("field", "value", "kind"),
    [
        ("temperature", "32768", "smallint"),
        ("rainheight", "-32769", "smallint"),
        ("deviceid", "2147483648", "int"),
        ("deviceid", "-2147483649", "int"),
    ],
)
def test_integer_out_of_range(field: str, value: str, kind: str) -> None:
    assert reason(IOT, reading(**{field: value})) == (
        f"value {value} in field {field} is out of range for {kind}"
    )


@pytest.mark.parametrize(("field", "kind"), [("temperature", "smallint"), ("deviceid", "int")])
def test_integer_range_edges_are_accepted(field: str, kind: str) -> None:
    low, high = INTEGER_RANGES[kind]
    assert record(IOT, reading(**{field: str(low)}))[field] == low
    assert record(IOT, reading(**{field: str(high)}))[field] == high


def test_bigint_out_of_range() -> None:
    assert reason(PRODUCTS, product(id=2**63)) == (
        f"value {2**63} in field id is out of range for bigint"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), ("true", True), ("FALSE", False), ("null", None)],
)
def test_boolean_field_accepts_json_and_text_booleans(value: Any, expected: bool | None) -> None:
    assert record(APP_EVENTS, event({"is_test_user": value}))["is_test_user"] is expected


def test_number_is_not_a_boolean() -> None:
    assert reason(APP_EVENTS, event({"is_test_user": 1})) == (
        "wrong type in field attributes.is_test_user: expected boolean, got number 1"
    )


# --- dates --------------------------------------------------------------------------------


def test_impossible_date() -> None:
    assert reason(PRODUCTS, product(date="2020-02-30")) == (
        "invalid date '2020-02-30' in field date"
    )


@pytest.mark.parametrize("value", ["2024/05/01", "2024-5-1", "20240501", "2024-05-01T00:00:00"])
def test_date_not_in_yyyy_mm_dd_form(value: str) -> None:
    assert reason(PRODUCTS, product(date=value)) == f"invalid date {value!r} in field date"


def test_date_as_a_number_is_a_wrong_type() -> None:
    assert reason(PRODUCTS, product(date=20240501)) == (
        "wrong type in field date: expected date, got number 20240501"
    )


def test_leap_day_is_a_valid_date() -> None:
    assert record(PRODUCTS, product(date="2024-02-29"))["date"] == date(2024, 2, 29)


def test_date_before_the_partition_start() -> None:
    assert reason(PRODUCTS, product(date="2019-12-31")) == (
        "date 2019-12-31 in field date is before the partition start 2020-01-01"
    )


def test_partition_start_itself_is_accepted() -> None:
    assert record(PRODUCTS, product(date="2020-01-01"))["dt"] == "2020-01-01"


def test_date_more_than_a_day_in_the_future() -> None:
    assert reason(PRODUCTS, product(date="2024-06-03")) == (
        "date 2024-06-03 in field date is more than a day in the future "
        "(latest accepted 2024-06-02)"
    )


def test_date_exactly_one_day_ahead_is_accepted() -> None:
    assert record(PRODUCTS, product(date="2024-06-02"))["dt"] == "2024-06-02"


def test_timestamp_more_than_a_day_ahead_names_the_event_time_field() -> None:
    assert reason(IOT, reading(datetime="2024-06-03 00:00:00")) == (
        "date 2024-06-03 in field datetime is more than a day in the future "
        "(latest accepted 2024-06-02)"
    )


# --- domains ------------------------------------------------------------------------------


def test_value_outside_its_domain() -> None:
    assert reason(PRODUCTS, product(product="D")) == (
        "value 'D' in field product is not one of A, B, C"
    )


def test_domain_is_case_sensitive() -> None:
    assert reason(PRODUCTS, product(product="a")) == (
        "value 'a' in field product is not one of A, B, C"
    )


@pytest.mark.parametrize(
    "event_type", [SIGN_UP_EVENT, SIGN_IN_EVENT, USERAUTH_SIGN_UP, USERAUTH_SIGN_IN]
)
def test_custom_and_standard_auth_events_are_accepted(event_type: str) -> None:
    assert record(APP_EVENTS, event(event_type=event_type))["event_type"] == event_type


@pytest.mark.parametrize("event_type", ["PageView", "_userauth.sign_out", "signupevent"])
def test_event_type_no_table_takes_is_unrouted(event_type: str) -> None:
    with pytest.raises(UnroutedRecord) as caught:
        validate_record(APP_EVENTS, event(event_type=event_type), start=START, now=NOW)
    assert str(caught.value) == f"event_type '{event_type}' is not routed to any table"


def test_unrouted_is_decided_before_the_fields_only_tables_need() -> None:
    # A PageView carries no email: it is unrouted, not a record missing a required field.
    page_view = event(event_type="PageView", attributes={})
    del page_view["attributes"]["email"]
    assert reason(APP_EVENTS, page_view) == "event_type 'PageView' is not routed to any table"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"event_type": 7}, "wrong type in field event_type: expected string, got number 7"),
        ({"event_type": None}, "null required field 'event_type'"),
    ],
)
def test_malformed_event_type_is_rejected_not_unrouted(
    changes: dict[str, Any], expected: str
) -> None:
    with pytest.raises(RecordError) as caught:
        validate_record(APP_EVENTS, event(**changes), start=START, now=NOW)
    assert not isinstance(caught.value, UnroutedRecord)
    assert str(caught.value) == expected


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "a b@c.com", "a@@b.com", "@b.com"])
def test_invalid_email(email: str) -> None:
    assert reason(APP_EVENTS, event({"email": email})) == (
        f"invalid email {email!r} in field attributes.email"
    )


def test_literal_null_in_an_optional_attribute_means_null() -> None:
    row = record(APP_EVENTS, event({"id": "null", "user_type": "null", "is_test_user": "null"}))
    assert (row["id"], row["user_type"], row["is_test_user"]) == (None, None, None)


def test_literal_null_email_is_a_null_required_field() -> None:
    assert reason(APP_EVENTS, event({"email": "null"})) == (
        "null required field 'attributes.email'"
    )


def test_literal_null_outside_attributes_is_a_value() -> None:
    assert record(WEB, request(user_id="null"))["user_id"] == "null"


def test_nested_field_whose_parent_is_not_an_object() -> None:
    assert reason(APP_EVENTS, event(session="s1")) == (
        "field 'session' is string, expected an object holding 'session.session_id'"
    )


def test_nested_field_whose_parent_is_null() -> None:
    assert reason(APP_EVENTS, event(endpoint=None)) == (
        "field 'endpoint' is null, expected an object holding 'endpoint.EffectiveDate'"
    )


def test_first_bad_field_in_spec_order_is_the_reason() -> None:
    assert reason(PRODUCTS, {"id": "x", "product": "D"}) == (
        "wrong type in field id: expected bigint, got string 'x'"
    )


# --- timestamps ---------------------------------------------------------------------------


def test_iot_timestamp_is_parsed_from_its_own_format() -> None:
    row = record(IOT, reading(datetime="2023-02-03 04:05:06"))
    assert row["datetime"] == datetime(2023, 2, 3, 4, 5, 6)
    assert row["dt"] == "2023-02-03"


@pytest.mark.parametrize("value", ["2023-02-03T04:05:06", "2023-02-03", "03/02/2023 04:05:06"])
def test_iot_timestamp_in_another_format_is_invalid(value: str) -> None:
    assert reason(IOT, reading(datetime=value)) == (
        f"invalid timestamp {value!r} in field datetime"
    )


def test_app_event_timestamp_from_epoch_millis_is_utc_naive() -> None:
    row = record(APP_EVENTS, event(event_timestamp=1714557600123))
    assert row["event_timestamp"] == datetime(2024, 5, 1, 10, 0, 0, 123000)
    assert row["event_timestamp"].tzinfo is None


def test_app_event_timestamp_as_digit_string_is_accepted() -> None:
    assert record(APP_EVENTS, event(event_timestamp="1714557600000"))[
        "event_timestamp"
    ] == datetime(2024, 5, 1, 10)


def test_app_event_without_event_timestamp_is_kept() -> None:
    obj = event()
    del obj["event_timestamp"]
    assert record(APP_EVENTS, obj)["event_timestamp"] is None


def test_app_event_timestamp_as_iso_text_is_a_wrong_type() -> None:
    assert reason(APP_EVENTS, event(event_timestamp="2024-05-01T10:00:00Z")) == (
        "wrong type in field event_timestamp: expected epoch milliseconds, "
        "got string '2024-05-01T10:00:00Z'"
    )


def test_app_event_timestamp_beyond_the_calendar_is_invalid() -> None:
    assert reason(APP_EVENTS, event(event_timestamp=10**19)) == (
        f"invalid timestamp {10**19} in field event_timestamp"
    )


def test_app_event_datetime_is_effective_date_iso_with_z_utc_naive() -> None:
    row = record(APP_EVENTS, event(endpoint={"EffectiveDate": "2024-05-01T23:30:00.789Z"}))
    assert row["datetime"] == datetime(2024, 5, 1, 23, 30, 0, 789000)
    assert row["datetime"].tzinfo is None


def test_app_event_datetime_and_dt_come_from_effective_date_not_event_timestamp() -> None:
    obj = event(
        event_timestamp=1714557600000,  # 2024-05-01
        endpoint={"EffectiveDate": "2024-05-03T08:00:00Z"},
    )
    row = record(APP_EVENTS, obj)
    assert row["dt"] == "2024-05-03"
    assert row["datetime"] == datetime(2024, 5, 3, 8)
    assert row["event_timestamp"] == datetime(2024, 5, 1, 10)


def test_app_event_date_range_is_checked_on_effective_date() -> None:
    obj = event(event_timestamp=0, endpoint={"EffectiveDate": "2019-12-31T23:59:59Z"})
    assert reason(APP_EVENTS, obj) == (
        "date 2019-12-31 in field endpoint.EffectiveDate is before the partition start 2020-01-01"
    )


def test_web_request_timestamp_with_offset_is_converted_to_utc() -> None:
    row = record(WEB, request(timestamp="2024-05-02T01:00:00+02:00"))
    assert row["timestamp"] == datetime(2024, 5, 1, 23, 0)
    assert row["timestamp"].tzinfo is None
    assert row["dt"] == "2024-05-01"  # the UTC day, not the local one


def test_web_request_timestamp_without_offset_is_taken_as_utc() -> None:
    assert record(WEB, request(timestamp="2024-05-01T10:00:00"))["timestamp"] == datetime(
        2024, 5, 1, 10
    )


def test_offset_that_leaves_the_calendar_is_an_invalid_timestamp() -> None:
    assert reason(WEB, request(timestamp="0001-01-01T00:00:00+01:00")) == (
        "invalid timestamp '0001-01-01T00:00:00+01:00' in field timestamp"
    )


def test_unparseable_iso_timestamp() -> None:
    assert reason(WEB, request(timestamp="yesterday")) == (
        "invalid timestamp 'yesterday' in field timestamp"
    )


def test_validate_record_rejects_a_non_object_directly() -> None:
    with pytest.raises(RecordError, match="^expected a JSON object, got array$"):
        validate_record(PRODUCTS, [], start=START, now=NOW)


# --- generated valid records round-trip ---------------------------------------------------

LATEST_INSTANT = datetime(2024, 6, 2, 23, 59, 59, 999000)
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

event_instants = st.datetimes(min_value=datetime(2020, 1, 1), max_value=LATEST_INSTANT)
offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
free_text = st.text(max_size=30)  # hypothesis never draws lone surrogates here
email_part = st.text(string.ascii_letters + string.digits + "._%+-", min_size=1, max_size=12)
emails = st.builds(
    lambda local, domain, tld: f"{local}@{domain}.{tld}",
    email_part,
    email_part,
    st.text(string.ascii_lowercase, min_size=2, max_size=6),
)


def iso_text(instant: datetime, offset: timezone, z: bool) -> str:
    """An ISO 8601 rendering of a UTC instant, as a producer in some time zone would write it."""
    if z:
        return instant.isoformat() + "Z"
    return instant.replace(tzinfo=UTC).astimezone(offset).isoformat()


@FUZZ
@given(
    id_=st.integers(*INTEGER_RANGES["bigint"]),
    day=st.dates(min_value=START, max_value=date(2024, 6, 2)),
    name=st.sampled_from(["A", "B", "C"]),
)
def test_generated_products_round_trip(id_: int, day: date, name: str) -> None:
    assert record(PRODUCTS, {"id": id_, "date": day.isoformat(), "product": name}) == {
        "id": id_,
        "date": day,
        "product": name,
        "dt": day.isoformat(),
        "_source_line": 1,
    }


@FUZZ
@given(
    deviceid=st.integers(*INTEGER_RANGES["int"]),
    instant=event_instants.map(lambda d: d.replace(microsecond=0)),
    measures=st.lists(st.integers(*INTEGER_RANGES["smallint"]), min_size=5, max_size=5),
    as_text=st.booleans(),
)
def test_generated_iot_readings_round_trip(
    deviceid: int, instant: datetime, measures: list[int], as_text: bool
) -> None:
    names = ["temperature", "humidity", "winddirection", "windintensity", "rainheight"]
    obj: dict[str, Any] = {
        "deviceid": str(deviceid) if as_text else deviceid,
        "datetime": instant.strftime("%Y-%m-%d %H:%M:%S"),
        **{n: str(v) if as_text else v for n, v in zip(names, measures, strict=True)},
    }
    row = record(IOT, obj)
    assert row["deviceid"] == deviceid
    assert row["datetime"] == instant
    assert [row[n] for n in names] == measures
    assert row["dt"] == instant.date().isoformat()


@FUZZ
@given(
    event_type=st.sampled_from([SIGN_UP_EVENT, SIGN_IN_EVENT, USERAUTH_SIGN_UP, USERAUTH_SIGN_IN]),
    millis=st.integers(0, 4102444800000),  # 1970 .. 2100: not range-checked, not the event time
    effective=event_instants,
    offset=offsets,
    z=st.booleans(),
    session_id=free_text,
    email=emails,
    id_=st.one_of(st.just("null"), free_text.filter(lambda t: t != "null")),
    is_test_user=st.sampled_from([True, False, "true", "false", "null"]),
)
def test_generated_app_events_round_trip(
    event_type: str,
    millis: int,
    effective: datetime,
    offset: timezone,
    z: bool,
    session_id: str,
    email: str,
    id_: str,
    is_test_user: bool | str,
) -> None:
    obj = {
        "event_type": event_type,
        "event_timestamp": millis,
        "attributes": {"email": email, "id": id_, "is_test_user": is_test_user},
        "session": {"session_id": session_id},
        "endpoint": {"EffectiveDate": iso_text(effective, offset, z)},
    }
    row = record(APP_EVENTS, obj)
    assert row["event_type"] == event_type
    assert row["event_timestamp"] == datetime(1970, 1, 1) + timedelta(milliseconds=millis)
    assert row["datetime"] == effective
    assert row["dt"] == effective.date().isoformat()
    assert (row["session_id"], row["email"]) == (session_id, email)
    assert row["id"] == (None if id_ == "null" else id_)
    expected_flag = None if is_test_user == "null" else is_test_user in (True, "true")
    assert row["is_test_user"] is expected_flag
    assert row["user_type"] is None


@FUZZ
@given(
    instant=event_instants,
    offset=offsets,
    z=st.booleans(),
    ids=st.lists(free_text, min_size=5, max_size=5),
    product_id=st.none() | free_text,
    path=free_text,
)
def test_generated_web_requests_round_trip(
    instant: datetime,
    offset: timezone,
    z: bool,
    ids: list[str],
    product_id: str | None,
    path: str,
) -> None:
    names = ["session_id", "request_id", "client_id", "reseller_id", "user_id"]
    obj = {
        "timestamp": iso_text(instant, offset, z),
        **dict(zip(names, ids, strict=True)),
        "product_id": product_id,
        "path": path,
    }
    row = record(WEB, obj)
    assert row["timestamp"] == instant
    assert row["dt"] == instant.date().isoformat()
    assert [row[n] for n in names] == ids
    assert (row["product_id"], row["path"]) == (product_id, path)


# --- routing: derived from the tables' sets --------------------------------------------------


def test_routing_is_the_union_of_the_tables_event_types() -> None:
    routing = APP_EVENTS.routing
    assert routing is not None and routing.field == "event_type"
    assert routing.values == {SIGN_UP_EVENT, USERAUTH_SIGN_UP, SIGN_IN_EVENT, USERAUTH_SIGN_IN}


def test_a_table_taking_every_record_means_nothing_is_unrouted() -> None:
    everything = TableSpec("all_events", ("event_type",))
    spec = dataclasses.replace(APP_EVENTS, tables=(*APP_EVENTS.tables, everything))
    assert spec.routing is None
    assert record(spec, event(event_type="PageView"))["event_type"] == "PageView"


def test_tables_routing_by_different_fields_are_refused() -> None:
    by_email = TableSpec("by_email", ("email",), where_in=("email", ("a@example.com",)))
    with pytest.raises(ValueError, match="split rows by"):
        dataclasses.replace(APP_EVENTS, tables=(*APP_EVENTS.tables, by_email))
