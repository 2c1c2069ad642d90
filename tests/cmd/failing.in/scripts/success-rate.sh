#!/bin/sh
# Stands in for a metrics query: prints the number in metrics/success-rate.
exec cat "$(dirname "$0")/../metrics/success-rate"
