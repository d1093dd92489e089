#!/bin/bash
# tests/test_stdflib_bucket.sh - placeholder until the test lands.
exit 77
