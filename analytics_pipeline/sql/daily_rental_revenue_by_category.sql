-- Payments and revenue per film category, by day of payment: payment -> rental -> inventory
-- -> film_category -> category. The dimensions are snapshots, so a day reads the films'
-- current categories; a film in two categories counts in both. A payment with no rental (or
-- a film with no category) is kept, under category NULL, so a day's payments all add up.
SELECT
    c.name AS category,
    count(*) AS payments,
    round(sum(p.amount), 2) AS revenue
FROM payment AS p
LEFT JOIN rental AS r ON r.rental_id = p.rental_id
LEFT JOIN inventory AS i ON i.inventory_id = r.inventory_id
LEFT JOIN film_category AS fc ON fc.film_id = i.film_id
LEFT JOIN category AS c ON c.category_id = fc.category_id
WHERE p.dt = '{dt}'
GROUP BY c.name
