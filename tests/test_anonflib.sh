#!/bin/bash
# tests/test_anonflib.sh - placeholder until the test lands.
exit 77
