"""The README's Spark example: count a topic's records per key and event-time minute, write back.

    spark-submit --packages org.apache.spark:spark-sql-kafka-0-10_2.13:4.0.1 \\
        compat/spark/example_windowed_counts.py --bootstrap localhost:9092 \\
        --input events --output event-counts --checkpoint /tmp/event-counts-ckpt

Reads `--input` from the earliest offset, groups by the record key and a 1-minute window on the
Kafka record timestamp (the producer's CreateTime, or the broker's LogAppendTime on such topics),
with a 30-second watermark, and writes each updated count to `--output` as a record keyed by the
input key, valued `{"window_start": ..., "count": N}`. `--once` processes what is there and stops
(Trigger.AvailableNow); without it the query runs until stopped. The test suite runs this file
(`compat/spark`, case `readme_example`), so the README's example cannot rot.
"""

import argparse

from pyspark.sql import SparkSession
from pyspark.sql.functions import col, struct, to_json, window


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", default="localhost:9092")
    ap.add_argument("--input", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--once", action="store_true", help="Trigger.AvailableNow: stop when caught up")
    args = ap.parse_args()

    spark = SparkSession.builder.appName("rivulet-windowed-counts").getOrCreate()
    events = (spark.readStream.format("kafka")
              .option("kafka.bootstrap.servers", args.bootstrap)
              .option("subscribe", args.input)
              .option("startingOffsets", "earliest")
              .load())
    counts = (events
              .select(col("key").cast("string").alias("key"), col("timestamp"))
              .withWatermark("timestamp", "30 seconds")
              .groupBy(col("key"), window(col("timestamp"), "1 minute"))
              .count())
    out = counts.select(
        col("key"),
        to_json(struct(col("window.start").cast("long").alias("window_start"), col("count"))).alias("value"))
    writer = (out.writeStream.format("kafka")
              .option("kafka.bootstrap.servers", args.bootstrap)
              .option("topic", args.output)
              .option("checkpointLocation", args.checkpoint)
              .outputMode("update"))
    writer = writer.trigger(availableNow=True) if args.once else writer.trigger(processingTime="1 second")
    writer.start().awaitTermination()
    spark.stop()


if __name__ == "__main__":
    main()
