#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Packs xrayd into a relocatable xrayd-<version>-linux-<arch>.tar.gz for hosts that are
# not Debian (Amazon Linux 2023 on EC2 and Elastic Beanstalk): bin/xrayd plus, in lib/,
# every shared library it loads except glibc's own, libstdc++ and libgcc_s (the host
# provides those), found through the rpath $ORIGIN/../lib. Fails when a packed file
# needs a newer glibc or libstdc++ than Amazon Linux 2023 has (GLIBC 2.34, GLIBCXX 3.4.29).
#
# Usage: deploy/bundle.sh [--binary PATH] [--out DIR]
#   --binary  an xrayd already built (default: build it with scripts/build)
#   --out     where the .tar.gz goes (default: the current directory)
# Prints the path of the archive. Needs patchelf (scripts/deps.sh, XRAYD_TEST_DEBS).
set -euo pipefail

GLIBC_MAX=2.34
GLIBCXX_MAX=3.4.29
# Libraries the host provides: glibc's (libc6's files) and the compiler's runtimes.
HOST_LIBS='^(libc|libm|libpthread|libdl|librt|libresolv|libutil|libanl|libBrokenLocale|libmvec|libnss_[a-z]+|ld-linux[-a-z0-9_]*|libstdc\+\+|libgcc_s)\.so'

root=$(cd "$(dirname "$0")/.." && pwd)
binary=""
out=$PWD
while [ $# -gt 0 ]; do
    case $1 in
    --binary) binary=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "usage: $0 [--binary PATH] [--out DIR]" >&2; exit 2 ;;
    esac
done
if [ -z "$binary" ]; then
    "$root/scripts/build"
    binary=$root/build/release/daemon/xrayd
fi
command -v patchelf >/dev/null || { echo "patchelf not found: apt-get install -y patchelf" >&2; exit 1; }

version=$("$binary" --version | awk '{print $3}')
case $(readelf -h "$binary" | sed -n 's/^ *Machine: *//p') in
*X86-64*) arch=amd64 ;;
*AArch64*) arch=arm64 ;;
*) arch=$(dpkg --print-architecture) ;;
esac
name=xrayd-$version-linux-$arch
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/$name/bin" "$stage/$name/lib"

install -m 0755 "$binary" "$stage/$name/bin/xrayd"
strip --strip-unneeded "$stage/$name/bin/xrayd"
if ldd "$binary" | grep -q 'not found'; then
    ldd "$binary" | grep 'not found' >&2
    exit 1
fi
# ldd lists the whole closure, transitive libraries included.
ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | while read -r soname path; do
    if [[ ! $soname =~ $HOST_LIBS ]]; then
        install -m 0644 "$path" "$stage/$name/lib/$soname"
    fi
done
# DT_RPATH, not DT_RUNPATH: the executable's RPATH also serves the libraries' own
# dependencies (RUNPATH would serve only its direct ones), so the libraries stay as
# Debian built them.
# shellcheck disable=SC2016 # $ORIGIN is for the loader, not the shell
patchelf --force-rpath --set-rpath '$ORIGIN/../lib' "$stage/$name/bin/xrayd"

# Symbol versions each packed file needs from the host.
newest() { objdump -T "$1" | { grep -o "\b$2_[0-9][0-9.]*" || true; } | sed "s/^$2_//" | sort -uV | tail -1; }
bad=0
for f in "$stage/$name/bin/xrayd" "$stage/$name"/lib/*; do
    for pair in GLIBC:$GLIBC_MAX GLIBCXX:$GLIBCXX_MAX; do
        sym=${pair%%:*} max=${pair#*:}
        v=$(newest "$f" "$sym")
        if [ -n "$v" ] && [ "$(printf '%s\n%s\n' "$v" "$max" | sort -V | tail -1)" != "$max" ]; then
            echo "$(basename "$f") needs ${sym}_$v, above ${sym}_$max: link it statically" >&2
            bad=1
        fi
    done
done
[ $bad -eq 0 ] || exit 1

cat >"$stage/$name/README" <<'TXT'
xrayd, relocatable: unpack anywhere and run bin/xrayd. The libraries in lib/ are
found through the binary's rpath ($ORIGIN/../lib); glibc (2.34 or newer), libstdc++
and libgcc_s come from the host. TLS uses the CA bundle at
/etc/ssl/certs/ca-certificates.crt (on Amazon Linux 2023, link it to
/etc/pki/tls/certs/ca-bundle.crt). The systemd unit, cfg.yaml example and
Elastic Beanstalk extension are in the source repository's deploy/ folder.
TXT
mkdir -p "$out"
tar -C "$stage" --owner=0 --group=0 -czf "$out/$name.tar.gz" "$name"
echo "$out/$name.tar.gz"
