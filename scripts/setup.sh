#!/usr/bin/env bash
# One-shot, idempotent set-up for a fresh Debian 12 machine (run as root, or
# with sudo available). Installs the Debian packages ragmap builds and tests
# against, builds the FAISS C API library from Debian's own faiss source
# package into the build tree. The local S3 server (scripts/s3-local.sh) is
# Debian's Ceph: a monitor, an OSD and the RADOS Gateway.
#
# Fast when everything is there already: each step checks before it works.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=${RAGMAP_BUILD_DIR:-$top/build}

sudo_cmd=""
if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi

packages=(
	build-essential cmake pkg-config dpkg-dev
	libcurl4-openssl-dev libsqlite3-dev libopenblas-dev liblapack-dev
	libfaiss-dev libxml2-dev libmicrohttpd-dev libpoppler-glib-dev
	libutf8proc-dev libstemmer-dev libinih-dev libjansson-dev libssl-dev
	libcmocka-dev curl valgrind groff ghostscript openssl jq sqlite3 time python3 poppler-utils
	python3-torch
	ceph-mon ceph-osd ceph-common radosgw haproxy
	gnuplot-nox chromium fonts-dejavu-core
	clang libclang-rt-14-dev
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing+=("$p")
done
need=()
for p in "${missing[@]}"; do [ -n "$p" ] && need+=("$p"); done
if [ ${#need[@]} -gt 0 ]; then
	echo "setup: installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	$sudo_cmd apt-get update -qq
	$sudo_cmd apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# --- FAISS C API: Debian ships the headers and libfaiss, but not libfaiss_c.
faiss_dir=$build/faiss_c
if [ ! -f "$faiss_dir/libfaiss_c.a" ]; then
	if [ ! -f /etc/apt/sources.list.d/debian-src.sources ]; then
		sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources |
			$sudo_cmd tee /etc/apt/sources.list.d/debian-src.sources >/dev/null
		$sudo_cmd apt-get update -qq
	fi
	mkdir -p "$faiss_dir/src"
	(cd "$faiss_dir/src" && ls faiss_*.dsc >/dev/null 2>&1 ||
		apt-get source --download-only faiss >/dev/null)
	(cd "$faiss_dir/src" && rm -rf tree && mkdir tree &&
		tar -xf faiss_*.orig.tar.* -C tree --strip-components=1)
	echo "setup: building libfaiss_c"
	objs=()
	for f in "$faiss_dir"/src/tree/c_api/*.cpp "$faiss_dir"/src/tree/c_api/*/*.cpp; do
		[ -f "$f" ] || continue
		case "$f" in *gpu*) continue ;; esac
		o=$faiss_dir/obj/$(basename "${f%.cpp}").o
		mkdir -p "$faiss_dir/obj"
		g++ -std=c++17 -O2 -fPIC -fopenmp -I"$faiss_dir/src/tree" -I/usr/include \
			-c "$f" -o "$o" &
		objs+=("$o")
	done
	wait
	ar rcs "$faiss_dir/libfaiss_c.a.tmp" "${objs[@]}"
	mkdir -p "$faiss_dir/include/faiss/c_api"
	(cd "$faiss_dir/src/tree/c_api" && find . -name '*.h' -exec cp --parents {} "$faiss_dir/include/faiss/c_api/" \;)
	mv "$faiss_dir/libfaiss_c.a.tmp" "$faiss_dir/libfaiss_c.a"
	rm -rf "$faiss_dir/src/tree" "$faiss_dir/obj"
fi

echo "setup: ok"
