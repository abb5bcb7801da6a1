#!/bin/sh
# Installs the built tree into a temporary prefix, then configures, builds and runs the consumer
# app against it, from a folder outside the source tree. Usage: run.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1
here=$2
tmp=$(mktemp -d /tmp/sluice-package-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
cp "$here/CMakeLists.txt" "$here/main.cpp" "$tmp/"
cmake -S "$tmp" -B "$tmp/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$tmp/build" -j2 >/dev/null
"$tmp/build/consumer"
# The pkg-config file describes the same libraries.
PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig:$tmp/prefix/lib64/pkgconfig" pkg-config --cflags --libs sluice
