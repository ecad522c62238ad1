-- Products sold per product per day.
SELECT
    product,
    count(*) AS product_count
FROM products
WHERE dt = '{dt}'
GROUP BY product
ORDER BY product
