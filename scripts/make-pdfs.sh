#!/usr/bin/env bash
# Regenerate the PDF documents of the sample corpus from their groff -ms sources.
#
#   corpus-src/<folder>/<name>.ms  ->  corpus/<folder>/<name>.pdf
#
# Tools: groff (Debian package "groff": groff -ms, tbl, preconv and the gropdf
# driver); ghostscript's ps2pdf is used only if gropdf is unavailable.
# pdftotext (poppler-utils) is used, when present, to check that text extracts.
#
# The output is deterministic: SOURCE_DATE_EPOCH pins the PDF creation date, so
# running the script twice yields byte-identical files.
#
# Usage: scripts/make-pdfs.sh            regenerate all PDFs in place
#        scripts/make-pdfs.sh --check    regenerate into a temp dir and compare
#                                        with the committed PDFs (exit 1 on diff)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$root/corpus-src"
dst="$root/corpus"
mode="build"
case "${1:-}" in
  "") ;;
  --check) mode="check" ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

# Fixed date (2024-06-01T00:00:00Z) unless the caller pins another one.
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-1717200000}"
export LC_ALL=C.UTF-8
export TZ=UTC

if ! command -v groff >/dev/null 2>&1 || ! command -v gropdf >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "make-pdfs: installing groff" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q groff >/dev/null \
      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q groff >/dev/null; }
  fi
fi
command -v groff >/dev/null 2>&1 || { echo "make-pdfs: groff not found (apt-get install groff)" >&2; exit 1; }

render() { # render <source.ms> <output.pdf>
  local in="$1" out="$2"
  if command -v gropdf >/dev/null 2>&1; then
    groff -k -t -ms -Tpdf "$in" >"$out"
  else
    command -v ps2pdf >/dev/null 2>&1 || { echo "make-pdfs: neither gropdf nor ps2pdf found" >&2; return 1; }
    groff -k -t -ms -Tps "$in" | ps2pdf -dPDFSETTINGS=/default - "$out"
  fi
}

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

count=0
failed=0
while IFS= read -r -d '' ms; do
  rel="${ms#"$src"/}"           # e.g. training/training-storage-throughput.ms
  rel_pdf="${rel%.ms}.pdf"
  out="$tmp/$rel_pdf"
  mkdir -p "$(dirname "$out")"
  render "$ms" "$out"
  if [ ! -s "$out" ]; then
    echo "make-pdfs: empty output for $rel" >&2; exit 1
  fi
  if command -v pdftotext >/dev/null 2>&1; then
    words="$(pdftotext -enc UTF-8 "$out" - | wc -w)"
    if [ "$words" -lt 100 ]; then
      echo "make-pdfs: $rel_pdf: only $words words extract" >&2; exit 1
    fi
  else
    words="?"
  fi
  if [ "$mode" = check ]; then
    if cmp -s "$out" "$dst/$rel_pdf"; then
      echo "ok       corpus/$rel_pdf"
    else
      echo "DIFFERS  corpus/$rel_pdf" >&2; failed=1
    fi
  else
    mkdir -p "$(dirname "$dst/$rel_pdf")"
    mv -f "$out" "$dst/$rel_pdf"
    echo "wrote    corpus/$rel_pdf ($(wc -c <"$dst/$rel_pdf") bytes, $words words)"
  fi
  count=$((count + 1))
done < <(find "$src" -name '*.ms' -type f -print0 | LC_ALL=C sort -z)

[ "$count" -gt 0 ] || { echo "make-pdfs: no .ms sources under corpus-src/" >&2; exit 1; }
exit "$failed"
