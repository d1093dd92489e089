#!/bin/bash
# tests/test_mapiinfo.sh - placeholder until the test lands.
exit 77
