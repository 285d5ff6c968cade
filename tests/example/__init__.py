"""The example suite (example_suites/invoice_parser) end to end, with and without xdist."""
