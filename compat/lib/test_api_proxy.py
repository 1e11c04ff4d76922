"""The proxy's API list comes from Rivulet's API table (`rivulet --api-versions`)."""

import os
import unittest

import api_proxy


class ApiTableTest(unittest.TestCase):
    def test_parses_the_table_rivulet_prints(self):
        text = "0 Produce 0 3 13\n18 ApiVersions 0 0 4\n\nnot a row\n"
        self.assertEqual(api_proxy.parse_api_table(text),
                         {0: ("Produce", 0, 3, 13), 18: ("ApiVersions", 0, 0, 4)})

    @unittest.skipUnless(os.access(api_proxy.DEFAULT_RIVULET_BIN, os.X_OK), "no built rivulet binary")
    def test_the_built_binary_serves_the_core_apis(self):
        apis = api_proxy.rivulet_apis()
        for key in (0, 1, 2, 3, 18, 19, 20):
            self.assertIn(key, apis)
        self.assertEqual(apis, sorted(set(apis)))


if __name__ == "__main__":
    unittest.main()
