#!/bin/sh
# Prints the success rate flagramp checks. A real check would ask a metrics system.
exec cat "$(dirname "$0")/../metrics/success-rate"
