#!/bin/bash
# tests/test_dimapi.sh - placeholder until the test lands.
exit 77
