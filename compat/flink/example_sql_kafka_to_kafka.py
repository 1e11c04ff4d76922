"""Flink SQL, Kafka to Kafka: JSON orders in, per-order totals out (the README's Flink example).

    python example_sql_kafka_to_kafka.py --bootstrap localhost:9092 --input orders --output order-totals \
        --jars /path/to/flink-connector-kafka-4.0.1-2.0.jar /path/to/kafka-clients-3.9.1.jar

Reads the input topic from its first offset up to the latest offsets when the job starts
('scan.bounded.mode' = 'latest-offset'), so the job ends by itself. Run by compat/flink as the
`readme_example` case.
"""

import argparse
import os

from pyflink.table import EnvironmentSettings, TableEnvironment


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", default="localhost:9092")
    ap.add_argument("--input", default="orders")
    ap.add_argument("--output", default="order-totals")
    ap.add_argument("--jars", nargs="+", required=True,
                    help="flink-connector-kafka-4.0.1-2.0.jar and kafka-clients-3.9.1.jar")
    args = ap.parse_args()

    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    t_env.get_config().set("pipeline.jars", ";".join("file://" + os.path.abspath(j) for j in args.jars))
    t_env.get_config().set("parallelism.default", "1")

    t_env.execute_sql(f"""
        CREATE TABLE orders (order_id BIGINT, item STRING, quantity INT, price DOUBLE) WITH (
            'connector' = 'kafka', 'topic' = '{args.input}',
            'properties.bootstrap.servers' = '{args.bootstrap}',
            'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset',
            'format' = 'json')""")
    t_env.execute_sql(f"""
        CREATE TABLE order_totals (order_id BIGINT, item STRING, total DOUBLE) WITH (
            'connector' = 'kafka', 'topic' = '{args.output}',
            'properties.bootstrap.servers' = '{args.bootstrap}', 'format' = 'json')""")
    t_env.execute_sql("""
        INSERT INTO order_totals
        SELECT order_id, item, quantity * price FROM orders WHERE quantity >= 2""").wait()


if __name__ == "__main__":
    main()
