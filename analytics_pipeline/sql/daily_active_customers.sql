-- Active customers by day: those who rented (by day of rental_date) or paid (by day of
-- payment_date) that day, counted once, with the day's rentals and payments.
SELECT
    count(DISTINCT customer_id) AS active_customers,
    count_if(activity = 'rental') AS rentals,
    count_if(activity = 'payment') AS payments
FROM (
    SELECT customer_id, 'rental' AS activity FROM rental WHERE dt = '{dt}'
    UNION ALL
    SELECT customer_id, 'payment' AS activity FROM payment WHERE dt = '{dt}'
) AS activity
