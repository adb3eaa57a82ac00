/*
 * ragmap eval — retrieval quality of the current index version on a test
 * collection, with the same retrievers and modes a user queries with.
 *
 * A result's document id is its source key's file name without extension;
 * documents are ranked by their best chunk.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "metrics.h"
#include "qindex.h"
#include "rag_util.h"

#define EVAL_DOCS 100     /* ranking depth: map@100, recall@100 */
#define EVAL_CHUNKS 500   /* chunks asked for to fill EVAL_DOCS documents */

static const char eval_usage[] =
	"usage: ragmap eval --queries FILE --qrels FILE [--retriever dense|bm25|hybrid]\n"
	"                   [--mode memory|pointer|cached|object] [--json] [--config FILE]\n"
	"  queries: id<TAB>text per line; qrels: TREC (qid 0 docid gain).\n"
	"  Prints ndcg@10, map@100, recall@100, mrr@10, queries (one per line);\n"
	"  --json adds per-query figures. Queries without judgements are skipped.\n";

/* "source/dir/1234.txt" -> "1234" into buf */
static void doc_id_of(const char *key, char *buf, size_t len)
{
	const char *base = strrchr(key, '/'), *dot;
	size_t n;

	base = base ? base + 1 : key;
	dot = strrchr(base, '.');
	n = dot && dot > base ? (size_t)(dot - base) : strlen(base);
	if (n >= len)
		n = len - 1;
	memcpy(buf, base, n);
	buf[n] = '\0';
}

/* Distinct documents in rank order (best chunk first), at most EVAL_DOCS. */
static size_t rank_docs(const qresult *r, char (*ids)[256], const char **ranked)
{
	size_t n = 0;

	for (int i = 0; i < r->n && n < EVAL_DOCS; i++) {
		bool seen = false;
		doc_id_of(r->hits[i].key, ids[n], sizeof(ids[n]));
		for (size_t j = 0; j < n && !seen; j++)
			seen = strcmp(ids[j], ids[n]) == 0;
		if (!seen) {
			ranked[n] = ids[n];
			n++;
		}
	}
	return n;
}

int cmd_eval(cli_env *env, int argc, char **argv)
{
	static const struct option opts[] = {
		{"queries", required_argument, NULL, 'q'}, {"qrels", required_argument, NULL, 'r'},
		{"retriever", required_argument, NULL, 't'}, {"mode", required_argument, NULL, 'm'},
		{"json", no_argument, NULL, 'j'}, {"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
	};
	const char *queries_path = NULL, *qrels_path = NULL, *ret_s = "dense", *mode_s = "memory";
	bool as_json = false;
	int opt, rc = CLI_OK;
	rag_config cfg;
	rag_error err = {0};
	qretriever ret;
	qmode mode;
	eval_queries qs = {0};
	eval_qrels qr = {0};
	eval_run run = {0}, means;
	s3_client *s3 = NULL;
	qindex *qi = NULL;
	qcaches caches = {0};
	json_t *per = json_array();
	char (*ids)[256] = calloc(EVAL_DOCS, sizeof(*ids));
	const char **ranked = calloc(EVAL_DOCS, sizeof(*ranked));
	uint64_t t0;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'q': queries_path = optarg; break;
		case 'r': qrels_path = optarg; break;
		case 't': ret_s = optarg; break;
		case 'm': mode_s = optarg; break;
		case 'j': as_json = true; break;
		case 'c': env->config_path = optarg; break;
		case 'h': fputs(eval_usage, stdout); rc = CLI_OK; goto done_early;
		default: fputs(eval_usage, stderr); rc = CLI_USAGE; goto done_early;
		}
	}
	if (!queries_path || !qrels_path || optind < argc) {
		cli_error("eval: --queries FILE and --qrels FILE are required");
		rc = CLI_USAGE;
		goto done_early;
	}
	if (!qretriever_parse(ret_s, &ret) || !qmode_parse(mode_s, &mode)) {
		cli_error("eval: unknown retriever \"%s\" or mode \"%s\"", ret_s, mode_s);
		rc = CLI_USAGE;
		goto done_early;
	}
	if (!ids || !ranked || !per) {
		cli_error("eval: out of memory");
		rc = CLI_FAIL;
		goto done_early;
	}
	if (eval_queries_load(queries_path, &qs, &err) || eval_qrels_load(qrels_path, &qr, &err)) {
		rc = cli_fail(&err);
		goto done_early;
	}
	if (!cli_load_config(env, &cfg)) {
		rc = CLI_USAGE;
		goto done_early;
	}
	if (!(s3 = s3_client_new(&cfg, &env->log, &err)) || qcaches_open(&cfg, mode, &caches, &err) ||
	    qindex_open(s3, &cfg, mode, &caches, &env->log, &qi, &err)) {
		rc = cli_fail(&err);
		goto out;
	}
	t0 = rag_now_ns();
	for (size_t i = 0; i < qs.n; i++) {
		const eval_qrel *j = eval_qrels_find(&qr, qs.q[i].id);
		qresult r;
		size_t n;

		if (!j || !eval_qrel_scorable(j)) {
			run.skipped++;
			continue;
		}
		if (qindex_query(qi, qs.q[i].text, strlen(qs.q[i].text), EVAL_CHUNKS, ret, &r, &err)) {
			rc = cli_fail(&err);
			goto out;
		}
		n = rank_docs(&r, ids, ranked);
		eval_run_add(&run, j, ranked, n);
		if (as_json)
			json_array_append_new(per, json_pack("{s:s, s:f, s:f, s:f, s:f}", "id", qs.q[i].id,
							     "ndcg@10", eval_ndcg(j, ranked, n, 10),
							     "ap@100", eval_ap(j, ranked, n, 100),
							     "recall@100", eval_recall(j, ranked, n, 100),
							     "rr@10", eval_rr(j, ranked, n, 10)));
		qresult_release(&r);
	}
	eval_run_means(&run, &means);
	if (as_json) {
		json_t *o = json_pack("{s:f, s:f, s:f, s:f, s:I, s:I, s:s, s:s, s:f, s:o}",
				      "ndcg@10", means.ndcg10, "map@100", means.map100,
				      "recall@100", means.recall100, "mrr@10", means.mrr10,
				      "queries", (json_int_t)means.scored,
				      "skipped", (json_int_t)means.skipped, "retriever", ret_s,
				      "mode", mode_s, "seconds", rag_ms_since(t0) / 1e3, "per_query", per);
		char *s = json_dumps(o, JSON_INDENT(1));
		per = NULL;
		puts(s);
		free(s);
		json_decref(o);
	} else {
		printf("ndcg@10 %.4f\nmap@100 %.4f\nrecall@100 %.4f\nmrr@10 %.4f\nqueries %zu\n",
		       means.ndcg10, means.map100, means.recall100, means.mrr10, means.scored);
		if (means.skipped)
			printf("skipped %zu\n", means.skipped);
		fprintf(stderr, "eval: %zu queries, %s retriever, %s mode, %.2f s\n", means.scored,
			ret_s, mode_s, rag_ms_since(t0) / 1e3);
	}
out:
	qindex_release(qi);
	qcaches_close(&caches);
	s3_client_free(s3);
	rag_config_release(&cfg);
done_early:
	eval_queries_release(&qs);
	eval_qrels_release(&qr);
	json_decref(per);
	free(ids);
	free(ranked);
	return rc;
}
