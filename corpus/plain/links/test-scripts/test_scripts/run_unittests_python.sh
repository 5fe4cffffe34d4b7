#!/usr/bin/env bash
cd "$1" && python3 -m unittest discover -b
