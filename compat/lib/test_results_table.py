"""Unit tests of the results table and the README table generated from it."""

import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import results_table as rt  # noqa: E402


class R:
    def __init__(self, name, version, cases, seconds=1.0):
        self.name, self.version, self.cases, self.seconds = name, version, cases, seconds
        self.passed = sum(s == "PASS" for s, _, _ in cases)
        self.failed = sum(s == "FAIL" for s, _, _ in cases)
        self.xfailed = sum(s == "XFAIL" for s, _, _ in cases)
        self.skipped = sum(s == "SKIP" for s, _, _ in cases)
        self.failures = ["%s %s: %s" % c for c in cases if c[0] in ("FAIL", "XFAIL")]
        self.notes = []


class FeatureTests(unittest.TestCase):
    def test_case_names_map_to_features(self):
        self.assertEqual(rt.feature_of("acks_all"), ["producer"])
        self.assertEqual(rt.feature_of("fetch_mid_batch"), ["consumer"])
        self.assertEqual(rt.feature_of("group_admin"), ["consumer groups", "admin"])
        self.assertEqual(rt.feature_of("metadata_list"), ["admin"])
        self.assertEqual(rt.feature_of("compression_zstd"), ["compression"])
        self.assertEqual(rt.feature_of("something_new"), ["other"])
        self.assertEqual(rt.feature_of("sql_upsert_kafka_compacted"), ["Flink SQL"])
        self.assertEqual(rt.feature_of("group_datastream_source_committed_offsets"), ["consumer groups", "KafkaSource"])
        self.assertEqual(rt.feature_of("datastream_sink_exactly_once_kill_restore"), ["exactly-once KafkaSink"])
        self.assertEqual(rt.feature_of("connect_eos_worker_kill9"), ["Connect exactly-once source"])
        self.assertEqual(rt.feature_of("connect_internal_topics"), ["Connect internal topics"])

    def test_case_line_allowlist_reminder(self):
        m = rt.CASE_LINE.match("PASS connect_eos_file_source (listed in allowlist.txt: consider removing it)")
        self.assertEqual(m.groups()[:2], ("PASS", "connect_eos_file_source"))
        self.assertEqual(rt.CASE_LINE.match("FAIL a_b: x: y").groups(), ("FAIL", "a_b", "x: y"))
        self.assertIsNone(rt.CASE_LINE.match("PASS a_b and more"))

    def test_gaps_are_named(self):
        cases = [("PASS", "compression_gzip", None), ("SKIP", "compression_lz4", "no codec"),
                 ("PASS", "acks_1", None), ("FAIL", "acks_all", "boom"),
                 ("SKIP", "group_consume", "no groups")]
        text = rt.describe_features(cases, "x")
        self.assertIn("producer (not passing: acks_all)", text)
        self.assertIn("compression (gzip; lz4: not run)", text)
        self.assertIn("consumer groups: none passed", text)

    def test_restart_rows_are_one_feature(self):
        cases = [("PASS", "restart_ok", None), ("PASS", "no_offset_reuse", None)]
        self.assertEqual(rt.describe_features(cases, "restart-test"), "kill -9 durability")


class ReadmeTests(unittest.TestCase):
    def test_round_trip_from_results_to_readme(self):
        results = [R("kcat", "kcat 1.7.1 (librdkafka 2.0.2)", [("PASS", "metadata_list", None),
                                                               ("SKIP", "group_balanced_consumer", "no")]),
                   R("java", "kafka-clients 4.3.0", [("PASS", "acks_1", None), ("XFAIL", "acks_all", "known")])]
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "results.md")
            rt.write_results(path, results, "test broker", (2, 0, 1, 1))
            with open(path) as f:
                text = f.read()
        table = rt.readme_table(text)
        rows = [line for line in table if line.startswith("| kcat") or line.startswith("| java")]
        self.assertEqual(rows[0], "| kcat | kcat 1.7.1 (librdkafka 2.0.2) | admin, consumer groups: none passed "
                                  "| 1 / 2 (1 skipped) |")
        self.assertEqual(rows[1], "| java | kafka-clients 4.3.0 | producer (not passing: acks_all) "
                                  "| 1 / 2 (1 xfail) |")
        self.assertIn("Total: 2 passed, 0 failed, 1 xfail (allowlisted), 1 skipped.", table)

    def test_splice_replaces_only_the_section(self):
        readme = "a\n%s\nold\n%s\nb\n" % (rt.BEGIN, rt.END)
        self.assertEqual(rt.splice(readme, ["new"]), "a\n%s\nnew\n%s\nb\n" % (rt.BEGIN, rt.END))
        with self.assertRaises(ValueError):
            rt.splice("no markers", ["x"])


if __name__ == "__main__":
    unittest.main()
