#!/bin/bash
# tests/test_anon_tools.sh - placeholder until the test lands.
exit 77
