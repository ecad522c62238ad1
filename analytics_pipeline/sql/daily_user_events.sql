-- Daily sign-ups and sign-ins: events and distinct users (test users counted apart).
SELECT
    'sign_up' AS event,
    count(*) AS events,
    count(DISTINCT email) AS unique_users,
    CAST(0 AS bigint) AS test_user_events
FROM sign_up_events
WHERE dt = '{dt}'
UNION ALL
SELECT
    'sign_in' AS event,
    count(*) AS events,
    count(DISTINCT email) AS unique_users,
    count_if(coalesce(is_test_user, false)) AS test_user_events
FROM sign_in_events
WHERE dt = '{dt}'
