# The Airflow image with pricegroups' pinned requirements baked in.
# dags/, plugins/ and sql/ are mounted by docker-compose.yaml, not copied,
# so editing them needs no rebuild.
FROM apache/airflow:3.3.2-python3.11

COPY requirements.txt /requirements.txt
RUN pip install --no-cache-dir -r /requirements.txt
