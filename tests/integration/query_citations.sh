#!/usr/bin/env bash
# Citations (issue 14 item 7): every hit carries "cite", "page", "page_end"
# and "source_bytes". A PDF hit cites its page ("key#page=N"); a text,
# Markdown or HTML hit cites the byte range of the source object its text
# came from ("key#bytes=S-E", E exclusive), and those bytes of the object
# really hold the text (exactly for text but for the blank lines and
# underlines between paragraphs, in order for Markdown, once tags are
# stripped for HTML). The same for dense hits (from segment records, in
# memory and object modes) and bm25 hits (from the catalog), through the
# server and `ragmap query --json`; `ragmap query` prints "cite: ..." per hit.
. "${RAGMAP_SOURCE_DIR:?}/tests/tools/query-common.sh"

c="$work/corpus"
mkdir -p "$c/docs"
cp "$top/tests/data/parse/sample.pdf" "$c/docs/sample.pdf"
# one paragraph per topic, unique words, so each query's best hit is known
cat >"$c/docs/notes.txt" <<'EOF'
Field Notes
===========

The pangolin ledger records every armadillo sighting near the river delta.

1.2 Weather Log

Monsoon drizzle soaked the theodolite tripod twice before noon.
EOF
cat >"$c/docs/guide.md" <<'EOF'
# Guide

Intro words here.

## Glaciers

The **glacier** calving _front_ retreated [past the moraine](http://example.com/m) each `summer` season.
EOF
cat >"$c/docs/page.html" <<'EOF'
<!doctype html>
<html><head><title>Volcano page</title><style>p { color: red }</style></head>
<body>
<h1>Volcanoes</h1>
<p>The basalt <b>lava</b> flow cooled into
   hexagonal columns at the caldera rim.</p>
<p>Other paragraph about nothing in particular.</p>
</body></html>
EOF

"$bin" s3 put "$c" "$src" >"$work/put.out" 2>&1 || { bad "upload corpus"; cat "$work/put.out"; finish; exit 1; }
# small chunks without overlap: the PDF's two pages give several, the one
# with the quokka starting on page 2
RAGMAP_INGEST_CHUNK_TOKENS=24 RAGMAP_INGEST_CHUNK_OVERLAP=0 "$bin" ingest >"$work/ingest.out" 2>&1 || { bad "ingest"; cat "$work/ingest.out"; finish; exit 1; }
ok "ingest"

# whitespace runs as one space, none at the ends
squeeze() { tr -s ' \n\t' ' ' | sed 's/^ //; s/ $//'; }

# bytes [S, E) of a corpus file
slice() { tail -c +$(($2 + 1)) "$1" | head -c $(($3 - $2)); }

# check_hit NAME JSON KEY-SUFFIX KIND: the first hit is that document, with
# a well-formed citation of that kind (page N, or bytes)
check_hit() {
	local name=$1 json=$2 key="$src$3" kind=$4 s e text file="$c/$3"
	jqtrue "$name-top" "$json" '.results[0].key == $k' --arg k "$key"
	# the shape of every hit's citation
	jqtrue "$name-shape" "$json" '
		all(.results[];
			(.cite | type) == "string" and (.key as $k | .cite | startswith($k)) and
			(if .page != null then
				(.page | type) == "number" and .page >= 1 and .page_end >= .page and
				.source_bytes == null and .cite == .key + "#page=" + (.page | tostring)
			 else
				.page_end == null and (.source_bytes | type) == "array" and
				(.source_bytes | length) == 2 and .source_bytes[0] < .source_bytes[1] and
				.cite == .key + "#bytes=" + (.source_bytes[0] | tostring) + "-" +
					(.source_bytes[1] | tostring)
			 end))'
	case $kind in
	page=*)
		# the hit's pages hold page N (where the query's words are)
		jqtrue "$name-page" "$json" '.results[0].page <= $p and .results[0].page_end >= $p and
			.results[0].cite == $k + "#page=" + (.results[0].page | tostring)' \
			--argjson p "${kind#page=}" --arg k "$key"
		return
		;;
	esac
	s=$(jq '.results[0].source_bytes[0]' "$json")
	e=$(jq '.results[0].source_bytes[1]' "$json")
	[ "$e" -le "$(stat -c %s "$file")" ] && ok "$name-in-object" || bad "$name: range [$s, $e) past the object"
	jq -j '.results[0].text' "$json" >"$work/text"
	slice "$file" "$s" "$e" >"$work/slice"
	case $kind in
	exact)
		# text: the same bytes but for the whitespace between paragraphs
		# and a heading's underline
		if [ "$(grep -Ev '^(=+|-+)$' "$work/slice" | squeeze)" = "$(squeeze <"$work/text")" ]; then
			ok "$name-bytes-exact"
		else
			bad "$name: source bytes [$s, $e) are not the text"; cat "$work/slice"; echo; cat "$work/text"; echo
		fi
		;;
	subseq)
		# Markdown: the text's characters in order, markup between them
		python3 - "$work/text" "$work/slice" <<'PY' && ok "$name-bytes-subsequence" || bad "$name: text not within source bytes [$s, $e)"
import sys
t = [c for c in open(sys.argv[1], 'rb').read() if not chr(c).isspace()]
s = open(sys.argv[2], 'rb').read()
j = 0
for c in t:
    j = s.find(bytes([c]), j)
    if j < 0:
        sys.exit(1)
    j += 1
b = open(sys.argv[2], 'rb').read().strip()
tt = open(sys.argv[1], 'rb').read().strip()
sys.exit(0 if b[:1] == tt[:1] and b[-1:] == tt[-1:] else 1)
PY
		;;
	tags)
		# HTML: the bytes without tags and whitespace are the text without whitespace
		if [ "$(sed -e 's/<[^>]*>//g' "$work/slice" | tr -d ' \n\t')" = "$(tr -d ' \n\t' <"$work/text")" ]; then
			ok "$name-bytes-tags-stripped"
		else
			bad "$name: source bytes [$s, $e) without tags are not the text"; cat "$work/slice"; echo; cat "$work/text"; echo
		fi
		;;
	esac
}

# query LABEL Q [ragmap query args...]: --json answer in $work/LABEL.json
query() {
	local label=$1 q=$2
	shift 2
	"$bin" query --json -k 3 "$@" "$q" >"$work/$label.json" 2>"$work/$label.err" ||
		{ bad "query $label"; cat "$work/$label.err"; }
}

# pdf_page_holds NAME JSON: the page the first hit cites, as poppler's own
# pdftotext extracts it (-f N -l N), holds the hit's first words
command -v pdftotext >/dev/null || bad "pdftotext is required (scripts/setup.sh installs poppler-utils)"
pdf_page_holds() {
	local n words
	n=$(jq '.results[0].page' "$2")
	words=$(jq -r '.results[0].text' "$2" | tr -s ' \n\t' ' ' | cut -d' ' -f1-6)
	if [ -n "$words" ] && pdftotext -f "$n" -l "$n" "$c/docs/sample.pdf" - 2>/dev/null |
		tr -s ' \n\t' ' ' | grep -qF "$words"; then
		ok "$1-pdftotext-page-$n"
	else
		bad "$1: pdftotext -f $n -l $n does not hold \"$words\""
	fi
}

qpdf='quokka paragraph lives on page two'
qtxt='pangolin ledger armadillo sighting river delta'
qmd='glacier calving front retreated past the moraine'
qhtml='basalt lava flow hexagonal columns caldera'
for r in dense bm25; do
	for m in memory object; do
		[ "$r" = bm25 ] && [ "$m" = object ] && continue
		query "pdf-$r-$m" "$qpdf" --retriever "$r" --mode "$m"
		check_hit "pdf-$r-$m" "$work/pdf-$r-$m.json" docs/sample.pdf page=2
		pdf_page_holds "pdf-$r-$m" "$work/pdf-$r-$m.json"
		query "txt-$r-$m" "$qtxt" --retriever "$r" --mode "$m"
		check_hit "txt-$r-$m" "$work/txt-$r-$m.json" docs/notes.txt exact
		query "md-$r-$m" "$qmd" --retriever "$r" --mode "$m"
		check_hit "md-$r-$m" "$work/md-$r-$m.json" docs/guide.md subseq
		query "html-$r-$m" "$qhtml" --retriever "$r" --mode "$m"
		check_hit "html-$r-$m" "$work/html-$r-$m.json" docs/page.html tags
	done
done
# dense (segment records) and bm25 (catalog) cite the same bytes
for d in pdf txt md html; do
	equal "$d-dense-bm25-same-cite" "$(jq -r '.results[0].cite' "$work/$d-dense-memory.json")" \
		"$(jq -r '.results[0].cite' "$work/$d-bm25-memory.json")"
done
# headings: the text file's numbered heading and the Markdown section
jqtrue txt-heading "$work/txt-dense-memory.json" '.results[0].heading == "Field Notes"'
jqtrue md-heading "$work/md-dense-memory.json" '.results[0].heading == "Guide > Glaciers"'

# the server answers with the same citations
serve mem memory || { finish; exit 1; }
equal server-200 "$(post mem "{\"q\":\"$qtxt\",\"k\":3}")" 200
jqtrue server-same-cite "$work/body" '.results[0].cite == $c' \
	--arg c "$(jq -r '.results[0].cite' "$work/txt-dense-memory.json")"
stop mem

# the CLI prints the citation under each hit
"$bin" query -k 3 "$qpdf" >"$work/cli.out" 2>&1 || bad "cli query"
expect cli-cite-pdf "^    cite: ${src}docs/sample\.pdf#page=2$" "$work/cli.out"
[ "$(grep -c '^    cite: ' "$work/cli.out")" = 3 ] && ok "cli-cite-per-hit" ||
	{ bad "cli: not one cite line per hit"; cat "$work/cli.out"; }
"$bin" query -k 1 "$qmd" >"$work/cli-md.out" 2>&1 || bad "cli query md"
expect cli-cite-md "^    cite: ${src}docs/guide\.md#bytes=[0-9]+-[0-9]+$" "$work/cli-md.out"

# the catalog stores them (schema 4)
latest_manifest >"$work/manifest.json" || bad "read the manifest"
"$bin" s3 get "$(jq -r .catalog.key "$work/manifest.json")" "$work/catalog.sqlite" >/dev/null 2>&1 ||
	bad "get the catalog snapshot"
equal catalog-schema "$(sqlite3 "$work/catalog.sqlite" 'PRAGMA user_version')" 4
equal catalog-pdf-pages "$(sqlite3 "$work/catalog.sqlite" "SELECT min(ch.page) || '-' || max(ch.page_end)
	FROM chunks ch JOIN documents d USING(doc_id) WHERE d.key = '${src}docs/sample.pdf'")" 1-2
equal catalog-pdf-chunk-on-page-2 "$(sqlite3 "$work/catalog.sqlite" "SELECT count(*) > 0
	FROM chunks ch JOIN documents d USING(doc_id) WHERE d.key = '${src}docs/sample.pdf' AND ch.page = 2")" 1
equal catalog-no-missing-range "$(sqlite3 "$work/catalog.sqlite" "SELECT count(*) FROM chunks ch
	JOIN documents d USING(doc_id) WHERE d.type != 'pdf' AND ch.src_end = 0")" 0
finish
