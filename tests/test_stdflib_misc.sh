#!/bin/bash
# tests/test_stdflib_misc.sh - placeholder until the test lands.
exit 77
