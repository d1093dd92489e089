#!/bin/bash
# tests/test_stdflib_refs.sh - placeholder until the test lands.
exit 77
