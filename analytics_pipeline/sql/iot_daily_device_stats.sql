-- Daily min / avg / max of every measure, per weather-station device.
SELECT
    deviceid,
    count(*) AS readings,
    min(temperature) AS min_temperature,
    avg(temperature) AS avg_temperature,
    max(temperature) AS max_temperature,
    min(humidity) AS min_humidity,
    avg(humidity) AS avg_humidity,
    max(humidity) AS max_humidity,
    min(windintensity) AS min_windintensity,
    avg(windintensity) AS avg_windintensity,
    max(windintensity) AS max_windintensity,
    sum(rainheight) AS total_rainheight
FROM iot_sensor_data
WHERE dt = '{dt}'
GROUP BY deviceid
ORDER BY deviceid
