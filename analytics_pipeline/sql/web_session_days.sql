-- One row per session per day: the requests it made that day and the products they touched.
-- The API's stats read this rather than web_requests: a request never spans days, so a
-- period's requests are the sum of its days', and its unique sessions an exact distinct
-- count over these rows (a session of two days has a row on each), 4-5x fewer than requests.
SELECT
    client_id,
    reseller_id,
    user_id,
    session_id,
    count(DISTINCT request_id) AS requests,
    count(product_id) AS products
FROM web_requests
WHERE dt = '{dt}'
GROUP BY client_id, reseller_id, user_id, session_id
