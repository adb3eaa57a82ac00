/*
 * cmd_cost.c — `ragmap cost --qps N`: what each backing mode costs at a
 * query rate, from traces measured on the current index (the load, then
 * sample queries in each mode), priced by the [cost] table.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commit.h"
#include "lru.h"
#include "manifest.h"
#include "qindex.h"
#include "rag_util.h"
#include "s3.h"

#define SECONDS_PER_MONTH (30.0 * 24 * 3600)
#define SAMPLE_MAX 1000

static const char cost_usage[] =
	"usage: ragmap cost [--config FILE] [--qps N] [--queries FILE] [-k K] [--retriever R]\n"
	"  For each backing mode: the RAM it holds, its storage requests per query\n"
	"  and what they cost per month at N queries/s (default 10), measured on\n"
	"  the newest index version: the index is loaded in each mode and the\n"
	"  sample questions asked (--queries: one per line; default: a built-in\n"
	"  set of 20), each twice, so caches warm as they would. Prices: the [cost]\n"
	"  table (S3 Standard list prices by default). Also the index's storage per\n"
	"  month.\n";

/* Generic questions: request counts depend on k, nprobe and caches more than on words. */
static const char *const builtin[] = {
	"how are checkpoints written to object storage",
	"what is the KV cache",
	"LoRA adapter versioning",
	"IVF lists and nprobe",
	"how does retrieval augmented generation work",
	"batch size and learning rate schedule",
	"evaluation of retrieval quality",
	"tokenizer and vocabulary",
	"fine-tuning a small model",
	"inference latency on a GPU",
	"embedding dimensions and cosine similarity",
	"data loading from S3",
	"mixed precision training",
	"vector index compaction",
	"prompt templates for question answering",
	"sharding a dataset across workers",
	"reranking retrieved passages",
	"quantization of weights",
	"monitoring a training run",
	"chunking documents for search",
};

typedef struct sample {
	char **q;
	size_t n;
} sample;

static bool read_sample(const char *path, sample *s)
{
	FILE *f = fopen(path, "r");
	char line[4096];

	if (!f) {
		cli_error("--queries \"%s\": cannot open", path);
		return false;
	}
	s->q = calloc(SAMPLE_MAX, sizeof(*s->q));
	while (s->q && s->n < SAMPLE_MAX && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] && !(s->q[s->n++] = rag_strdup(line)))
			break;
	}
	fclose(f);
	if (!s->q || s->n == 0) {
		cli_error("--queries \"%s\": no question in it", path);
		return false;
	}
	return true;
}

typedef struct mode_cost {
	uint64_t ram;          /* vectors + text + pointers held */
	s3_counter load;
	double load_usd;
	double per_query_requests, per_query_bytes, per_query_usd, per_query_wall_ms;
} mode_cost;

/* Load the index in mode m and ask every question twice. */
static rag_rc measure(s3_client *s3, const rag_config *cfg, qmode m, const sample *sm, int k,
		      qretriever ret, const s3_prices *pr, mode_cost *out, rag_error *err)
{
	qcaches caches = {0};
	qindex *qi = NULL;
	qindex_status st;
	double reqs = 0, bytes = 0, usd = 0, wall = 0;
	size_t asked = 0;
	rag_rc rc;

	memset(out, 0, sizeof(*out));
	if ((rc = qcaches_open(cfg, m, &caches, err)) ||
	    (rc = qindex_open(s3, cfg, m, &caches, NULL, &qi, err)))
		goto out;
	qindex_status_get(qi, &st);
	out->ram = st.vector_bytes + st.text_bytes + st.pointer_bytes;
	s3_trace_total(&st.load_trace, &out->load);
	out->load_usd = s3_cost_usd(st.load_trace.kind, pr);
	for (int pass = 0; pass < 2 && !rc; pass++)
		for (size_t i = 0; i < sm->n && !rc; i++) {
			qresult r;
			s3_counter c;

			if ((rc = qindex_query(qi, sm->q[i], strlen(sm->q[i]), k, ret, &r, err)))
				break;
			s3_trace_total(&r.trace, &c);
			reqs += (double)c.requests;
			bytes += (double)(c.bytes_in + c.bytes_out);
			usd += r.cost_usd;
			wall += r.storage_wall_ms;
			asked++;
			qresult_release(&r);
		}
	if (!rc && asked) {
		out->per_query_requests = reqs / (double)asked;
		out->per_query_bytes = bytes / (double)asked;
		out->per_query_usd = usd / (double)asked;
		out->per_query_wall_ms = wall / (double)asked;
	}
out:
	qindex_release(qi);
	qcaches_close(&caches);
	return rc;
}

int cmd_cost(cli_env *env, int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'}, {"qps", required_argument, NULL, 'q'},
		{"queries", required_argument, NULL, 'f'}, {"retriever", required_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
	};
	double qps = 10;
	int64_t k = 5;
	const char *qfile = NULL, *rets = "dense";
	qretriever ret;
	sample sm = {(char **)builtin, RAG_ARRAY_LEN(builtin)};
	rag_config cfg;
	s3_client *s3 = NULL;
	s3_prices pr;
	rag_error err = {0};
	int opt, rc = CLI_OK;
	char bytes[32], ram[32];
	bool own_sample = false, have_cfg = false;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "k:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': env->config_path = optarg; break;
		case 'q':
			if (!rag_parse_double(optarg, &qps) || qps < 0 || qps > 1e9) {
				cli_error("cost: bad --qps \"%s\"", optarg);
				return CLI_USAGE;
			}
			break;
		case 'f': qfile = optarg; break;
		case 'k':
			if (!rag_parse_i64(optarg, &k) || k < 1 || k > 1000) {
				cli_error("cost: -k must be in 1..1000");
				return CLI_USAGE;
			}
			break;
		case 'r': rets = optarg; break;
		case 'h': fputs(cost_usage, stdout); return CLI_OK;
		default: fputs(cost_usage, stderr); return CLI_USAGE;
		}
	}
	if (optind != argc || !qretriever_parse(rets, &ret)) {
		fputs(cost_usage, stderr);
		return CLI_USAGE;
	}
	if (qfile) {
		sm = (sample){0};
		own_sample = true;
		if (!read_sample(qfile, &sm)) {
			rc = CLI_USAGE;
			goto out;
		}
	}
	if ((rc = cli_open_s3(env, &cfg, &s3)))
		goto out; /* cfg is released already */
	have_cfg = true;
	s3_prices_from_config(&cfg, &pr);
	printf("prices: $%g per 1,000 GET/HEAD, $%g per 1,000 PUT/POST/LIST, $%g per GB-month\n",
	       pr.get_per_1000, pr.put_per_1000, pr.storage_gb_month);
	printf("at %g queries/s (%.0f per month of 30 days), k=%lld, %s, %zu sample questions asked twice\n\n",
	       qps, qps * SECONDS_PER_MONTH, (long long)k, qretriever_name(ret), sm.n);
	printf("%-8s %10s %10s %12s %12s %14s %14s\n", "mode", "RAM held", "load reqs",
	       "reqs/query", "bytes/query", "wait ms/query", "USD/month");
	for (int m = 0; m < QMODE_COUNT && !rc; m++) {
		mode_cost mc;

		if (measure(s3, &cfg, (qmode)m, &sm, (int)k, ret, &pr, &mc, &err)) {
			rc = cli_fail(&err);
			break;
		}
		printf("%-8s %10s %10" PRIu64 " %12.2f %12s %14.2f %14.2f\n", qmode_name((qmode)m),
		       rag_fmt_bytes(mc.ram, ram, sizeof(ram)), mc.load.requests,
		       mc.per_query_requests,
		       rag_fmt_bytes((uint64_t)mc.per_query_bytes, bytes, sizeof(bytes)),
		       mc.per_query_wall_ms, mc.per_query_usd * qps * SECONDS_PER_MONTH);
	}
	if (!rc) {
		char root[1024];
		manifest mf = {0};

		if (mf_index_root(cfg.index.prefix, cfg.index.name, root, sizeof(root)) ||
		    commit_read_newest(s3, S3_OP("cost", NULL), root, NULL, &mf, &err)) {
			rc = cli_fail(&err);
		} else {
			uint64_t b = manifest_stored_bytes(&mf);
			printf("\nindex version %lld keeps %s in the store (segments, catalog): "
			       "$%.6g per month\n", (long long)mf.version,
			       rag_fmt_bytes(b, bytes, sizeof(bytes)),
			       (double)b / 1e9 * pr.storage_gb_month);
		}
		manifest_release(&mf);
	}
out:
	if (own_sample) {
		for (size_t i = 0; i < sm.n; i++)
			free(sm.q[i]);
		free(sm.q);
	}
	s3_client_free(s3);
	if (have_cfg)
		rag_config_release(&cfg);
	return rc;
}
