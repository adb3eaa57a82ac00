#!/usr/bin/env bash
# Generate a deterministic corpus of technical-ish English documents.
#
#   bench/gen-corpus.sh OUTDIR COUNT [SEED] [MEAN_BYTES] [SPREAD]
#
# Writes COUNT documents under OUTDIR/dNNN/ (1000 per directory), two thirds
# Markdown (headings, paragraphs, the odd list) and one third plain text.
# Sizes are uniform in MEAN_BYTES * [1 - SPREAD, 1 + SPREAD] (defaults 5000
# and 0.5). Each document draws most words from a shared Zipf-like
# vocabulary and a quarter from its own topic words, so documents differ the
# way real ones do and retrieval has something to find.
#
# Deterministic: the same arguments give byte-identical files on any awk
# (its own Lehmer generator, no srand/rand). Prints "COUNT files, BYTES bytes".
set -euo pipefail
out=${1:?usage: gen-corpus.sh OUTDIR COUNT [SEED] [MEAN_BYTES] [SPREAD]}
count=${2:?usage: gen-corpus.sh OUTDIR COUNT [SEED] [MEAN_BYTES] [SPREAD]}
seed=${3:-1}
mean=${4:-5000}
spread=${5:-0.5}
mkdir -p "$out"

LC_ALL=C awk -v out="$out" -v count="$count" -v seed="$seed" -v mean="$mean" \
	-v spread="$spread" '
function rnd() { # Lehmer / MINSTD: exact in doubles (products < 2^53)
	state = (state * 48271) % 2147483647
	return (state - 1) / 2147483646
}
function irand(n) { return int(rnd() * n) }
function zipf(n,  u) { u = rnd(); return int(n * u * u * u) }
function word(  w) {
	if (rnd() < 0.25) return topic[irand(ntopic)]
	w = V[zipf(nv)]
	if (rnd() < 0.02) w = w "-" (irand(900) + 100)
	return w
}
function sentence(  n, s, i) {
	n = 8 + irand(14)
	s = word()
	s = toupper(substr(s, 1, 1)) substr(s, 2)
	for (i = 1; i < n; i++) {
		s = s " " word()
		if (rnd() < 0.06) s = s ","
	}
	return s (rnd() < 0.1 ? "?" : ".")
}
function paragraph(  n, p, i) {
	n = 2 + irand(5)
	p = sentence()
	for (i = 1; i < n; i++) p = p " " sentence()
	return p
}
function heading(  n, h, i) {
	n = 2 + irand(4)
	h = topic[irand(ntopic)]
	for (i = 1; i < n; i++) h = h " " word()
	return toupper(substr(h, 1, 1)) substr(h, 2)
}
BEGIN {
	state = (seed * 7919 + 12345) % 2147483647
	if (state <= 0) state += 2147483646
	nv = split("object storage bucket prefix key etag version manifest segment index " \
		"vector embedding chunk token model weights checkpoint dataset shard replica " \
		"request latency throughput bandwidth cache tier disk memory network node " \
		"cluster pipeline ingestion query retrieval ranking score document corpus " \
		"batch stream queue worker thread lock commit snapshot catalog schema table " \
		"partition compaction garbage collection retention lifecycle policy region " \
		"endpoint client server upload download multipart range header payload " \
		"checksum integrity consistency durability availability failure retry " \
		"timeout backoff throttle quota budget cost egress ingress transfer copy " \
		"training inference serving fine-tuning adapter gradient optimizer epoch " \
		"step loss evaluation metric recall precision latency percentile tail " \
		"dimension projection matrix similarity cosine product quantization list " \
		"centroid probe search filter metadata tag label owner permission access " \
		"encryption signature credential role audit log trace span counter gauge " \
		"histogram dashboard alert incident operator engineer team service tenant " \
		"workload job scheduler accelerator gpu cpu core socket file system mount " \
		"block volume page buffer allocation heap arena pool handle descriptor " \
		"the a an of to in for on with by from at as is are was be can will " \
		"should must may often usually rarely always never each every most some " \
		"large small fast slow cheap expensive immutable mutable durable fresh stale " \
		"hot cold warm remote local parallel sequential random ranged partial full " \
		"incremental eventual strong weak atomic idempotent deterministic lazy eager " \
		"read write list delete head put get scan load store fetch publish refresh " \
		"merge split rebuild reindex embed chunk parse tokenize normalize rank serve " \
		"measure monitor verify recover restart resume crash kill converge replay " \
		"when where which while because although however therefore instead unless " \
		"this that these those it its their our your between across within without " \
		"before after during until since about above below over under through per " \
		"millisecond second minute hour gigabyte megabyte terabyte percent ratio " \
		"architecture design tradeoff bottleneck overhead amplification locality " \
		"prefetch readahead coalescing fanout fan-in backpressure admission eviction " \
		"lru frequency recency working set footprint resident budget headroom limit", V, " ")
	for (i = 1; i <= nv; i++) V[i - 1] = V[i]
	syl = split("ka lo mi ne ra su ti vo ze an el is or ul ex ion ter str pra gen dat", S, " ")
	total = 0
	for (d = 0; d < count; d++) {
		dir = sprintf("%s/d%03d", out, int(d / 1000))
		if (d % 1000 == 0) system("mkdir -p \"" dir "\"")
		md = (d % 3) != 2
		file = sprintf("%s/doc-%06d.%s", dir, d, md ? "md" : "txt")
		ntopic = 12
		for (t = 0; t < ntopic; t++) {
			if (rnd() < 0.5) { # an invented term: makes the vocabulary grow with the corpus
				w = ""
				n = 2 + irand(2)
				for (k = 0; k < n; k++) w = w S[1 + irand(syl)]
				topic[t] = w
			} else
				topic[t] = V[irand(nv)]
		}
		target = int(mean * (1 - spread + 2 * spread * rnd()))
		if (target < 200) target = 200
		size = 0
		line = md ? "# " heading() : heading()
		print line > file
		size += length(line) + 1
		while (size < target) {
			r = rnd()
			if (r < 0.15) {
				line = (md ? "\n## " : "\n") heading()
			} else if (md && r < 0.22) {
				line = "\n- " sentence() "\n- " sentence() "\n- " sentence()
			} else {
				line = "\n" paragraph()
			}
			print line > file
			size += length(line) + 1
		}
		close(file)
		total += size
	}
	printf "%d files, %d bytes\n", count, total
}'
