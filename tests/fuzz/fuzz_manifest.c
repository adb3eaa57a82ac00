/*
 * Manifest JSON and LATEST (manifest.h). A manifest that parses must
 * serialise, parse again and serialise to the same bytes (the round trip
 * is stable); its tombstone lookups must not read outside the ranges.
 */
#include "fuzz_common.h"
#include "manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	manifest m, m2;
	rag_buf a, b;
	rag_error err = {0};
	char key[1024];
	int64_t version;

	rag_buf_init(&a, 64u << 20);
	rag_buf_init(&b, 64u << 20);
	if (manifest_from_json((const char *)data, size, &m, &err) == RAG_OK) {
		FUZZ_CHECK(m.version >= 1 && m.model.key);
		FUZZ_CHECK(manifest_to_json(&m, &a, &err) == RAG_OK);
		FUZZ_CHECK(manifest_from_json(a.data, a.len, &m2, &err) == RAG_OK);
		FUZZ_CHECK(manifest_to_json(&m2, &b, &err) == RAG_OK);
		FUZZ_CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
		for (size_t i = 0; i < m.ntombstones; i++) {
			(void)manifest_is_tombstoned(&m, m.tombstones[2 * i]);
			(void)manifest_is_tombstoned(&m, m.tombstones[2 * i + 1] + 1);
		}
		(void)manifest_is_tombstoned(&m, 0);
		manifest_release(&m2);
	} else {
		FUZZ_CHECK(err.msg[0]);
	}
	manifest_release(&m);
	if (mf_latest_from_json((const char *)data, size, &version, key, sizeof(key), &err) == RAG_OK)
		FUZZ_CHECK(memchr(key, '\0', sizeof(key)));
	rag_buf_release(&a);
	rag_buf_release(&b);
	return 0;
}
