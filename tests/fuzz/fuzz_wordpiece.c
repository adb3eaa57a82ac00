/*
 * BERT's tokenizer (bert.h): any bytes as text, with and without
 * lower-casing, and at several limits. The ids stay in the vocabulary, the
 * sequence is [CLS] ... [SEP] within max_len, and truncation is reported
 * exactly when a longer limit gives more pieces. The first byte, when the
 * input starts with "VOCAB\n", makes the rest a vocab.txt instead.
 */
#include "bert.h"
#include "fuzz_common.h"

static const char vocab[] =
	"[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\nun\n##aff\n##able\nhello\n##s\nworld\n"
	"a\n##b\n##c\nb\nc\n,\n.\n!\ncafe\n\xe4\xb8\xad\n\xe6\x96\x87\n##\xc3\xa9\n"
	"\xe1\x84\x92\n##\xe1\x85\xa1\n##\xe1\x86\xab\n\xf0\x9f\x98\x80\n\xe2\x82\xac\n";

static void check_seq(const bert_vocab *v, const int32_t *ids, size_t n, size_t max)
{
	FUZZ_CHECK(n >= 2 && n <= max);
	FUZZ_CHECK(ids[0] == bert_vocab_id(v, "[CLS]", 5));
	FUZZ_CHECK(ids[n - 1] == bert_vocab_id(v, "[SEP]", 5));
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK(ids[i] >= 0 && (size_t)ids[i] < bert_vocab_size(v));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bert_vocab *v = NULL;
	rag_error err = {0};
	int32_t a[512], b[8];
	size_t na, nb;
	bool ta, tb;

	if (size >= 6 && memcmp(data, "VOCAB\n", 6) == 0) {
		if (bert_vocab_load((const char *)data + 6, size - 6, "vocab.txt", &v, &err) != RAG_OK) {
			FUZZ_CHECK(err.msg[0] && !v);
			return 0;
		}
		for (size_t i = 0; i < bert_vocab_size(v); i++)
			FUZZ_CHECK(bert_vocab_token(v, (int32_t)i));
		FUZZ_CHECK(!bert_vocab_token(v, (int32_t)bert_vocab_size(v)));
		bert_vocab_free(v);
		return 0;
	}
	FUZZ_CHECK(bert_vocab_load(vocab, sizeof(vocab) - 1, "vocab.txt", &v, &err) == RAG_OK);
	for (int lower = 0; lower < 2; lower++) {
		FUZZ_CHECK(bert_tokenize(v, lower, (const char *)data, size, a, 512, &na, &ta, &err) ==
			   RAG_OK);
		check_seq(v, a, na, 512);
		FUZZ_CHECK(bert_tokenize(v, lower, (const char *)data, size, b, 8, &nb, &tb, &err) ==
			   RAG_OK);
		check_seq(v, b, nb, 8);
		/* the short sequence is the long one's start, cut only when it has more */
		FUZZ_CHECK(memcmp(a, b, (nb - 1) * sizeof(*a)) == 0);
		FUZZ_CHECK(tb == (na > 8 || ta));
		FUZZ_CHECK(!tb || nb == 8);
	}
	bert_vocab_free(v);
	return 0;
}
