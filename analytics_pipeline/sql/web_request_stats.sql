-- Unique sessions, requests per session and products per request, per day,
-- at each level of the tenancy: client > reseller > user.
SELECT
    CASE grouping(reseller_id, user_id)
        WHEN 3 THEN 'client'
        WHEN 1 THEN 'reseller'
        ELSE 'user'
    END AS level,
    client_id,
    reseller_id,
    user_id,
    count(DISTINCT session_id) AS unique_sessions,
    count(DISTINCT request_id) AS requests,
    CAST(count(DISTINCT request_id) AS double) / count(DISTINCT session_id) AS requests_per_session,
    CAST(count(product_id) AS double) / count(DISTINCT request_id) AS products_per_request
FROM web_requests
WHERE dt = '{dt}'
GROUP BY GROUPING SETS ((client_id), (client_id, reseller_id), (client_id, reseller_id, user_id))
ORDER BY level, client_id, reseller_id, user_id
