/* Unit tests: manifest JSON, LATEST, segment formats, catalog, LRU. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog.h"
#include "lru.h"
#include "manifest.h"
#include "segment.h"

static void fill_manifest(manifest *m)
{
	memset(m, 0, sizeof(*m));
	m->version = 7;
	snprintf(m->index, sizeof(m->index), "main");
	m->created_at = 1700000000;
	snprintf(m->model.name, sizeof(m->model.name), "ragmap-lsa");
	snprintf(m->model.version, sizeof(m->model.version), "0123456789abcdef");
	m->model.key = strdup("models/ragmap-lsa/0123456789abcdef/weights.bin");
	m->model.dims = 256;
	m->catalog.key = strdup("indexes/main/catalog/0000000007.sqlite");
	m->catalog.size = 4096;
	m->nsegments = 1;
	m->segments = calloc(1, sizeof(*m->segments));
	snprintf(m->segments[0].id, sizeof(m->segments[0].id), "v0000000007-n00");
	snprintf(m->segments[0].kind, sizeof(m->segments[0].kind), "ivf");
	m->segments[0].count = 100;
	m->segments[0].first_chunk = 1;
	m->segments[0].last_chunk = 100;
	m->segments[0].nlist = 8;
	m->segments[0].nprobe = 2;
	for (int k = 0; k < MF_NOBJ; k++) {
		char key[128];
		snprintf(key, sizeof(key), "indexes/main/segments/v0000000007-n00/%s", mf_object_names[k]);
		m->segments[0].obj[k].key = strdup(key);
		m->segments[0].obj[k].size = (uint64_t)(k + 1) * 10;
	}
	m->ntombstones = 2;
	m->tombstones = calloc(4, sizeof(int64_t));
	m->tombstones[0] = 5, m->tombstones[1] = 9, m->tombstones[2] = 20, m->tombstones[3] = 20;
	m->documents = 10;
	m->chunks = 94;
	m->source_bytes = 123456;
	m->run.objects_read = 11;
	m->run.bytes_read = 130000;
	m->run.segments_written = 3;
	m->failed_total = 3;
	m->nfailed = 1;
	m->failed = calloc(1, sizeof(*m->failed));
	m->failed[0].key = strdup("source/broken.pdf");
	m->failed[0].error = strdup("\"source/broken.pdf\": corrupt PDF");
	m->failed[0].attempts = 4;
	m->failed[0].retry_at = 1796000000;
}

static void test_manifest_round_trip(void **state)
{
	manifest m, back;
	rag_buf b, b2;
	rag_error err = {0};

	(void)state;
	fill_manifest(&m);
	rag_buf_init(&b, 1 << 20);
	rag_buf_init(&b2, 1 << 20);
	assert_int_equal(manifest_to_json(&m, &b, &err), RAG_OK);
	assert_int_equal(manifest_from_json(b.data, b.len, &back, &err), RAG_OK);
	assert_int_equal(back.version, 7);
	assert_string_equal(back.segments[0].obj[MF_LISTS].key, m.segments[0].obj[MF_LISTS].key);
	assert_int_equal(back.segments[0].nprobe, 2);
	assert_int_equal(back.source_bytes, 123456);
	assert_int_equal(back.run.objects_read, 11);
	assert_int_equal(back.run.bytes_read, 130000);
	assert_int_equal(back.run.segments_written, 3);
	assert_int_equal(back.failed_total, 3);
	assert_int_equal(back.nfailed, 1);
	assert_string_equal(back.failed[0].key, "source/broken.pdf");
	assert_string_equal(back.failed[0].error, "\"source/broken.pdf\": corrupt PDF");
	assert_int_equal(back.failed[0].attempts, 4);
	assert_int_equal(back.failed[0].retry_at, 1796000000);
	assert_true(manifest_is_tombstoned(&back, 5));
	assert_true(manifest_is_tombstoned(&back, 9));
	assert_true(manifest_is_tombstoned(&back, 20));
	assert_false(manifest_is_tombstoned(&back, 10));
	assert_false(manifest_is_tombstoned(&back, 4));
	/* serialisation is deterministic */
	assert_int_equal(manifest_to_json(&back, &b2, &err), RAG_OK);
	assert_int_equal(b.len, b2.len);
	assert_memory_equal(b.data, b2.data, b.len);
	manifest_release(&back);
	manifest_release(&m);
	rag_buf_release(&b);
	rag_buf_release(&b2);
}

static void test_manifest_rejects_bad_fields(void **state)
{
	static const struct {
		const char *from, *to, *field;
	} edits[] = {
		{"\"format\": 1", "\"format\": 2", "format"},
		{"\"kind\": \"ivf\"", "\"kind\": \"hnsw\"", "kind"},
		{"\"nprobe\": 2", "\"nprobe\": 0", "nprobe"},
		{"\"size\": 30", "\"size\": -1", "size"},
		{"20,\n   20", "21,\n   20", "tombstones"},
		{"\"version\": 7", "\"version\": \"7\"", "version"},
		{"\"source_bytes\": 123456", "\"source_bytes\": -5", "source_bytes"},
		{"\"objects_read\": 11", "\"objects_read\": \"x\"", "objects_read"},
		{"\"attempts\": 4", "\"attempts\": -4", "failed.objects[0].attempts"},
		{"\"total\": 3", "\"total\": 0", "failed.objects"},
		{"\"key\": \"source/broken.pdf\"", "\"key\": 5", "failed.objects[0]"},
	};
	manifest m, back;
	rag_buf b;
	rag_error err = {0};

	(void)state;
	fill_manifest(&m);
	rag_buf_init(&b, 1 << 20);
	assert_int_equal(manifest_to_json(&m, &b, &err), RAG_OK);
	for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
		char *s = strdup(b.data), *p = strstr(s, edits[i].from), *t;
		if (!p)
			fail_msg("fixture lacks \"%s\"", edits[i].from);
		t = malloc(strlen(s) + 64);
		snprintf(t, strlen(s) + 64, "%.*s%s%s", (int)(p - s), s, edits[i].to, p + strlen(edits[i].from));
		assert_int_equal(manifest_from_json(t, strlen(t), &back, &err), RAG_ECORRUPT);
		if (!strstr(err.msg, edits[i].field))
			fail_msg("error \"%s\" does not name %s", err.msg, edits[i].field);
		free(s);
		free(t);
	}
	for (size_t cut = 0; cut < b.len; cut += 37)
		assert_int_equal(manifest_from_json(b.data, cut, &back, &err), RAG_ECORRUPT);
	/* a manifest from before the figures were kept still loads (zeros) */
	{
		char *s = strdup(b.data), *p = strstr(s, ",\n  \"run\"");
		char *q = p ? strchr(p, '}') : NULL;
		assert_non_null(q);
		memmove(p, q + 1, strlen(q + 1) + 1);
		p = strstr(s, ",\n  \"source_bytes\"");
		assert_non_null(p);
		q = strchr(p + 2, '\n');
		memmove(p, q, strlen(q) + 1);
		assert_int_equal(manifest_from_json(s, strlen(s), &back, &err), RAG_OK);
		assert_int_equal(back.run.objects_read, 0);
		assert_int_equal(back.source_bytes, 0);
		assert_int_equal(back.documents, 10);
		manifest_release(&back);
		free(s);
	}
	manifest_release(&m);
	rag_buf_release(&b);
}

static void test_latest_and_keys(void **state)
{
	char root[256], key[256], mkey[256];
	int64_t v;
	rag_buf b;
	rag_error err = {0};

	(void)state;
	assert_int_equal(mf_index_root("indexes", "main", root, sizeof(root)), RAG_OK);
	assert_string_equal(root, "indexes/main/");
	assert_int_equal(mf_manifest_key(root, 12, key, sizeof(key)), RAG_OK);
	assert_string_equal(key, "indexes/main/manifests/0000000012.json");
	assert_int_equal(mf_manifest_key(root, 12, key, 10), RAG_ETOOBIG);
	rag_buf_init(&b, 4096);
	assert_int_equal(mf_latest_to_json(12, "indexes/main/manifests/0000000012.json", &b), RAG_OK);
	assert_int_equal(mf_latest_from_json(b.data, b.len, &v, mkey, sizeof(mkey), &err), RAG_OK);
	assert_int_equal(v, 12);
	assert_string_equal(mkey, "indexes/main/manifests/0000000012.json");
	assert_int_equal(mf_latest_from_json("{\"version\":0}", 13, &v, mkey, sizeof(mkey), &err),
			 RAG_ECORRUPT);
	rag_buf_release(&b);
}

static void test_segment_build_and_parse(void **state)
{
	enum { N = 300, D = 16 };
	seg_chunk chunks[N];
	float *vecs = calloc(N * D, sizeof(float));
	char texts[N][32];
	vindex_build_opts o = {.ivf_threshold = 100};
	seg_build b;
	rag_error err = {0};
	seg_ptr *ptrs;
	size_t nptrs;
	seg_lists lists;
	uint64_t seen = 0;

	(void)state;
	for (int i = 0; i < N; i++) {
		float norm = 0;
		snprintf(texts[i], sizeof(texts[i]), "chunk text %d", i);
		chunks[i] = (seg_chunk){.id = 1000 + 2 * i, .key = "source/doc.md", .ordinal = i,
					.off = (uint64_t)i * 10, .len = 10, .heading = "H > I",
					.text = texts[i], .text_len = strlen(texts[i])};
		for (int d = 0; d < D; d++) {
			vecs[i * D + d] = (float)sin(i * 0.37 + d * 1.3);
			norm += vecs[i * D + d] * vecs[i * D + d];
		}
		for (int d = 0; d < D; d++)
			vecs[i * D + d] /= sqrtf(norm);
	}
	assert_int_equal(segment_build(D, chunks, vecs, N, &o, &b, &err), RAG_OK);
	assert_string_equal(b.kind, "ivf");
	assert_int_equal(segment_parse_chunk_idx(b.obj[MF_CHUNKS_IDX].data, b.obj[MF_CHUNKS_IDX].len,
						 &ptrs, &nptrs, &err), RAG_OK);
	assert_int_equal(nptrs, N);
	for (int i = 0; i < N; i++) {
		const seg_ptr *p = segment_find_ptr(ptrs, nptrs, 1000 + 2 * i);
		seg_record r;
		assert_non_null(p);
		assert_int_equal(segment_parse_record(b.obj[MF_CHUNKS].data + p->rec_off, p->rec_len, &r,
						      &err), RAG_OK);
		assert_int_equal(r.id, 1000 + 2 * i);
		assert_int_equal(r.text_len, strlen(texts[i]));
		assert_memory_equal(r.text, texts[i], r.text_len);
		assert_string_equal(r.heading, "H > I");
		seg_record_release(&r);
	}
	assert_null(segment_find_ptr(ptrs, nptrs, 1001));
	/* every list region splits, and its record table points at its members */
	assert_int_equal(segment_parse_lists_idx(b.obj[MF_LISTS_IDX].data, b.obj[MF_LISTS_IDX].len,
						 &lists, &err), RAG_OK);
	assert_int_equal(lists.nlist, b.nlist);
	assert_non_null(lists.centroids);
	for (int l = 0; l < lists.nlist; l++) {
		const char *data = b.obj[MF_LISTS].data + lists.offsets[l], *recs;
		size_t vl;
		uint32_t count;
		assert_int_equal(segment_split_list(data, lists.offsets[l + 1] - lists.offsets[l], D, &vl,
						    &recs, &count, &err), RAG_OK);
		for (uint32_t m = 0; m < count; m++) {
			int64_t id;
			uint64_t off;
			uint32_t len;
			memcpy(&id, data + 4 + (size_t)m * 8, 8);
			segment_list_record(recs, m, &off, &len);
			assert_int_equal(off, segment_find_ptr(ptrs, nptrs, id)->rec_off);
			assert_int_equal(len, segment_find_ptr(ptrs, nptrs, id)->rec_len);
			seen++;
		}
	}
	assert_int_equal(seen, N);
	/* corrupt headers are refused, never read past */
	free(ptrs);
	assert_int_equal(segment_parse_chunk_idx(b.obj[MF_CHUNKS_IDX].data,
						 b.obj[MF_CHUNKS_IDX].len - 1, &ptrs, &nptrs, &err),
			 RAG_ECORRUPT);
	assert_null(ptrs);
	seg_lists_release(&lists);
	assert_int_equal(segment_parse_lists_idx("RMLI", 4, &lists, &err), RAG_ECORRUPT);
	assert_int_equal(segment_parse_record("no newline", 10, &(seg_record){0}, &err), RAG_ECORRUPT);
	seg_lists_release(&lists);
	seg_build_release(&b);
	free(vecs);
}

static void test_catalog_basics(void **state)
{
	char path[] = "/tmp/ragmap-cat-XXXXXX";
	int fd = mkstemp(path);
	catalog *c;
	rag_error err = {0};
	int64_t doc, id, ids[4], pub, pend;
	double scores[4];
	int n;
	cat_object o = {.key = "source/a.md", .size = 10, .status = OBJ_INDEXED}, f;
	cat_object *objs;
	size_t nobjs;

	(void)state;
	close(fd);
	unlink(path);
	assert_int_equal(catalog_open(path, &c, &err), RAG_OK);
	assert_int_equal(catalog_schema_version(c), 4);
	assert_int_equal(catalog_begin(c, &err), RAG_OK);
	assert_int_equal(catalog_doc_insert(c, &(cat_doc){.key = "source/a.md", .etag = "e", .type = "markdown",
							  .segment_id = "s1", .nchunks = 1}, &doc, &err), RAG_OK);
	assert_int_equal(catalog_chunk_insert(c, &(cat_chunk){.doc_id = doc, .text = "Checkpoints are uploaded",
							      .text_len = 24, .segment_id = "s1", .heading = ""},
					      &id, &err), RAG_OK);
	o.doc_id = doc;
	snprintf(o.etag, sizeof(o.etag), "e");
	assert_int_equal(catalog_object_save(c, &o, &err), RAG_OK);
	assert_int_equal(catalog_segment_insert(c, &(cat_segment){.id = "s1", .version = 1, .nchunks = 1,
								   .first_chunk = id, .last_chunk = id,
								   .kind = "flat", .model_version = "m"}, &err), RAG_OK);
	assert_int_equal(catalog_version_add(c, 1, "m", &err), RAG_OK);
	assert_int_equal(catalog_commit(c, &err), RAG_OK);
	assert_int_equal(catalog_versions(c, &pub, &pend, &err), RAG_OK);
	assert_int_equal(pub, 0);
	assert_int_equal(pend, 1);
	assert_int_equal(catalog_version_publish(c, 1, &err), RAG_OK);
	/* bm25 with the model's stemmer: "checkpoint" finds "Checkpoints"; syntax is inert */
	assert_int_equal(catalog_search_bm25(c, "checkpoint", 4, ids, scores, &n, &err), RAG_OK);
	assert_int_equal(n, 1);
	assert_int_equal(ids[0], id);
	assert_int_equal(catalog_search_bm25(c, "\"* NEAR( OR ) upload", 4, ids, scores, &n, &err), RAG_OK);
	assert_int_equal(n, 1);
	assert_int_equal(catalog_search_bm25(c, "the of and", 4, ids, scores, &n, &err), RAG_OK);
	assert_int_equal(n, 0);
	/* a tombstoned document's chunks are not found */
	assert_int_equal(catalog_doc_tombstone(c, doc, &err), RAG_OK);
	assert_int_equal(catalog_search_bm25(c, "checkpoint", 4, ids, scores, &n, &err), RAG_OK);
	assert_int_equal(n, 0);
	assert_int_equal(catalog_objects_load(c, &objs, &nobjs, &err), RAG_OK);
	assert_int_equal(nobjs, 1);
	assert_int_equal(objs[0].status, OBJ_INDEXED);
	assert_int_equal(objs[0].failed_at, 0);
	cat_objects_free(objs, nobjs);
	/* a failed object keeps its attempts and the time of its next attempt */
	f = (cat_object){.key = "source/b.pdf", .status = OBJ_FAILED, .error = "broken xref",
			 .attempts = 3, .failed_at = 1700000000};
	assert_int_equal(catalog_object_save(c, &f, &err), RAG_OK);
	assert_int_equal(catalog_objects_load(c, &objs, &nobjs, &err), RAG_OK);
	assert_int_equal(nobjs, 2);
	assert_int_equal(objs[1].status, OBJ_FAILED);
	assert_int_equal(objs[1].attempts, 3);
	assert_int_equal(objs[1].failed_at, 1700000000);
	assert_string_equal(objs[1].error, "broken xref");
	cat_objects_free(objs, nobjs);
	catalog_close(c);
	/* reopening keeps the schema version (no migration runs twice) */
	assert_int_equal(catalog_open(path, &c, &err), RAG_OK);
	assert_int_equal(catalog_schema_version(c), 4);
	catalog_close(c);
	unlink(path);
}

static void test_lru_bounded(void **state)
{
	lru *c = lru_new(100);
	char blob[128];
	char *out;
	size_t len;
	lru_stats st;

	(void)state;
	memset(blob, 'x', sizeof(blob));
	lru_put(c, 1, blob, 40);
	lru_put(c, 2, blob, 40);
	assert_true(lru_get(c, 1, &out, &len)); /* 1 is now the most recent */
	free(out);
	lru_put(c, 3, blob, 40);                /* evicts 2 */
	assert_false(lru_get(c, 2, &out, &len));
	assert_true(lru_get(c, 1, &out, &len));
	free(out);
	assert_true(lru_get(c, 3, &out, &len));
	free(out);
	lru_put(c, 4, blob, 101);               /* larger than the cache: not kept */
	assert_false(lru_get(c, 4, &out, &len));
	lru_get_stats(c, &st);
	assert_true(st.bytes <= 100);
	assert_int_equal(st.hits, 3);
	assert_int_equal(st.misses, 2);
	assert_int_equal(st.evictions, 1);
	lru_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_manifest_round_trip),
		cmocka_unit_test(test_manifest_rejects_bad_fields),
		cmocka_unit_test(test_latest_and_keys),
		cmocka_unit_test(test_segment_build_and_parse),
		cmocka_unit_test(test_catalog_basics),
		cmocka_unit_test(test_lru_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
