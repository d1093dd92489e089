#!/bin/bash
# tests/test_compat.sh - placeholder until the test lands.
exit 77
