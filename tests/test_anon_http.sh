#!/bin/bash
# tests/test_anon_http.sh - placeholder until the test lands.
exit 77
