#!/bin/bash
# tests/test_mapicommd.sh - placeholder until the test lands.
exit 77
