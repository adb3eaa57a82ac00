/*
 * The segment formats a query server reads from the store (segment.h):
 * chunks.idx, one chunk record, lists.idx and one list region of
 * lists.bin, the first byte choosing which. What parses must be usable:
 * every id of a pointer table is found by binary search, the record
 * table of a list lies inside the region.
 */
#include "fuzz_common.h"
#include "segment.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p;
	rag_error err = {0};

	if (size < 2)
		return 0;
	p = (const char *)data + 2;
	switch (data[0] % 4) {
	case 0: {
		seg_ptr *ptrs = NULL;
		size_t n = 0;
		if (segment_parse_chunk_idx(p, size - 2, &ptrs, &n, &err) == RAG_OK)
			for (size_t i = 0; i < n; i++)
				FUZZ_CHECK(segment_find_ptr(ptrs, n, ptrs[i].id) == &ptrs[i]);
		free(ptrs);
		break;
	}
	case 1: {
		seg_record rec;
		if (segment_parse_record(p, size - 2, &rec, &err) == RAG_OK)
			FUZZ_CHECK(rec.key && rec.heading && rec.text >= p &&
				   rec.text + rec.text_len == p + (size - 2) && rec.ordinal >= 0);
		seg_record_release(&rec);
		break;
	}
	case 2: {
		seg_lists l;
		if (segment_parse_lists_idx(p, size - 2, &l, &err) == RAG_OK)
			for (int i = 0; i < l.nlist; i++)
				FUZZ_CHECK(l.offsets[i] <= l.offsets[i + 1]);
		seg_lists_release(&l);
		break;
	}
	default: {
		int dims = 1 + data[1] % 16;
		size_t vec_len = 0;
		const char *recs = NULL;
		uint32_t count = 0;
		if (segment_split_list(p, size - 2, dims, &vec_len, &recs, &count, &err) == RAG_OK) {
			FUZZ_CHECK(vec_len <= size - 2 && recs == p + vec_len);
			FUZZ_CHECK((size_t)count * 12 == size - 2 - vec_len);
			for (uint32_t i = 0; i < count; i++) {
				uint64_t off;
				uint32_t len;
				segment_list_record(recs, i, &off, &len);
			}
		}
		break;
	}
	}
	return 0;
}
