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
# The pkg-config file describes the same libraries: an app built with nothing but it links and
# runs (the shared libraries found through the prefix's lib folder).
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig:$tmp/prefix/lib64/pkgconfig"
pkg-config --cflags --libs sluice
g++ -std=c++20 "$tmp/main.cpp" -o "$tmp/consumer-pc" $(pkg-config --cflags --libs sluice) -ldl
libdir=$(pkg-config --variable=libdir sluice)
LD_LIBRARY_PATH="$libdir" "$tmp/consumer-pc"
# The libraries are shared, with a SONAME, and none of them pulls in mimalloc.
for lib in allocators engine nodes; do
  so=$(ls "$libdir"/libsluice_$lib.so.* | head -n 1)
  objdump -p "$so" | grep -q "SONAME *libsluice_$lib.so.0" || { echo "libsluice_$lib: no SONAME" >&2; exit 1; }
  if objdump -p "$so" | grep NEEDED | grep -q mimalloc; then echo "libsluice_$lib links mimalloc" >&2; exit 1; fi
done
# The wire formats' parsers are internal: the installed library exports nothing of sluice::wire
# (mangled names: functions, const members, vtables and typeinfo, guard and local static variables).
so=$(ls "$libdir"/libsluice_nodes.so.* | head -n 1)
wire='^[0-9a-f]+ [A-Za-z] _Z[A-Z]{0,2}NK?6sluice4wire'
if nm -D --defined-only "$so" | grep -Eq "$wire"; then
  echo "libsluice_nodes exports sluice::wire symbols:" >&2
  nm -D --defined-only "$so" | grep -E "$wire" | head -n 5 | c++filt >&2
  exit 1
fi
